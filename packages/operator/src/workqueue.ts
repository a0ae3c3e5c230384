/**
 * A work queue of object keys (client-go's workqueue semantics, simplified):
 * - a key is queued at most once however often it is added (dirty set);
 * - a key is processed by at most one worker at a time; added again while processing, it runs
 *   once more afterwards;
 * - a failed key is retried after a capped exponential backoff (per key), reset on success;
 * - `pause()` stops handing out keys (non-leader), `resume()` restarts; keys stay queued.
 */
import { exponentialDelay, type Logger } from '@hadron/core';

export interface WorkQueueOptions {
  workers: number;
  handler: (key: string) => Promise<void>;
  logger: Logger;
  backoff?: { baseMs?: number; maxMs?: number };
  onError?: (key: string, err: unknown) => void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private active = 0;
  private paused = true;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly o: WorkQueueOptions) {}

  add(key: string): void {
    if (this.closed || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (!this.processing.has(key)) this.queue.push(key);
    this.pump();
  }

  /** Adds `key` after `ms` (replacing an earlier delayed add of the same key). */
  addAfter(key: string, ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timers.get(key));
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    t.unref();
    this.timers.set(key, t);
  }

  get length(): number {
    return this.queue.length;
  }

  /** Keys waiting (ready or delayed for a retry) plus keys being processed. */
  get pending(): number {
    return this.queue.length + this.active + this.timers.size;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  private pump(): void {
    while (!this.paused && !this.closed && this.active < this.o.workers && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.dirty.delete(key);
      this.processing.add(key);
      this.active++;
      void this.process(key);
    }
    if (this.active === 0 && (this.queue.length === 0 || this.paused)) for (const w of this.idleWaiters.splice(0)) w();
  }

  private async process(key: string): Promise<void> {
    try {
      await this.o.handler(key);
      this.failures.delete(key);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = exponentialDelay(n, { baseMs: this.o.backoff?.baseMs ?? 500, maxMs: this.o.backoff?.maxMs ?? 30_000 });
      this.o.onError?.(key, err);
      this.o.logger.warn({ err, key, attempt: n, retryInMs: delay }, 'reconcile failed; will retry');
      this.addAfter(key, delay);
    } finally {
      this.processing.delete(key);
      this.active--;
      if (this.dirty.has(key)) this.queue.push(key);
      this.pump();
    }
  }

  /** Resolves when no key is being processed and none is ready (or the queue is paused). */
  idle(): Promise<void> {
    if (this.active === 0 && (this.queue.length === 0 || this.paused)) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Stops handing out keys and waits for the running ones. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.queue.length = 0;
    this.dirty.clear();
    if (this.active > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }
}
