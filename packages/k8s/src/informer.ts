/**
 * An informer: a local cache of one resource type (in one namespace, optionally filtered by
 * label/field selectors) kept current by list + watch, as client-go's reflector does
 * (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes).
 *
 * State machine:
 *
 *   listing ──list ok──▶ watching ──watch ends (server timeout)──▶ watching (resume from last RV)
 *      ▲                    │
 *      │                    ├──410 Gone (HTTP or ERROR event)──▶ listing (relist; deletions diffed)
 *      │                    └──other error──▶ backoff (capped, jittered) ──▶ watching
 *      └──────── list error ──▶ backoff ──▶ listing
 *
 * - Bookmarks (`allowWatchBookmarks`) advance the resume point without events.
 * - A relist is diffed against the cache: new objects → `add`, changed → `update`, missing →
 *   `delete`, so a deletion missed while disconnected is still seen (the original never did,
 *   reference §11.16).
 * - Every error except 410 is reported to `onError` (the watcher error metrics) and retried after
 *   a capped exponential backoff; the attempt counter resets once events flow again.
 */
import { EventEmitter } from 'node:events';
import { backoffDelay, sleep, type Logger } from '@hadron/core';
import { KubeApiError, resourcePath, type KubeClient } from './client.js';
import type { KubeList, KubeObject, ResourceType } from './types.js';

export interface InformerOptions {
  client: KubeClient;
  resource: ResourceType;
  namespace: string;
  labelSelector?: string;
  fieldSelector?: string;
  logger: Logger;
  /** Called for every list/watch failure except 410 Gone. */
  onError?: (err: unknown) => void;
  /** Backoff after errors (default 250 ms doubling up to 10 s). */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Server-side watch timeout; the watch is then resumed from the last resourceVersion (default 240–300 s). */
  watchTimeoutSeconds?: number;
  /** Resume point to start watching from without listing first (a stale one is relisted on 410). */
  resumeFrom?: string;
  /** Page size for lists (default 500). */
  pageSize?: number;
}

export type InformerState = 'new' | 'listing' | 'watching' | 'backoff' | 'closed';

type Events<T> = {
  add: [T];
  update: [T, T];
  delete: [T];
  /** After each (re)list has been applied to the cache. */
  sync: [];
};

export class Informer<T extends KubeObject = KubeObject> extends EventEmitter<Events<T>> {
  private readonly cache = new Map<string, T>();
  private readonly abort = new AbortController();
  private resourceVersion: string | undefined;
  private loop: Promise<void> | undefined;
  private syncedOnce = false;
  private readonly syncWaiters: Array<() => void> = [];
  state: InformerState = 'new';
  /** Counters, for tests and diagnostics. */
  readonly stats = { lists: 0, watches: 0, gone: 0, errors: 0 };

  constructor(private readonly o: InformerOptions) {
    super();
  }

  get resource(): ResourceType {
    return this.o.resource;
  }

  /** Starts the list/watch loop. Idempotent. */
  start(): this {
    if (this.loop === undefined) {
      this.resourceVersion = this.o.resumeFrom;
      if (this.resourceVersion !== undefined) this.markSynced();
      this.loop = this.run();
    }
    return this;
  }

  /** Resolves once the first list has been applied (or at once when resuming). */
  synced(signal?: AbortSignal): Promise<void> {
    if (this.syncedOnce) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.syncWaiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  get hasSynced(): boolean {
    return this.syncedOnce;
  }

  get(name: string): T | undefined {
    return this.cache.get(name);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  private markSynced(): void {
    if (this.syncedOnce) return;
    this.syncedOnce = true;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  private get path(): string {
    return resourcePath(this.o.resource, this.o.namespace);
  }

  private selectors(): Record<string, string | undefined> {
    return { labelSelector: this.o.labelSelector, fieldSelector: this.o.fieldSelector };
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let attempt = 0;
    while (!signal.aborted) {
      try {
        if (this.resourceVersion === undefined) {
          this.state = 'listing';
          await this.relist(signal);
          attempt = 0;
        }
        this.state = 'watching';
        this.stats.watches++;
        const timeoutSeconds = this.o.watchTimeoutSeconds ?? 240 + Math.floor(Math.random() * 60);
        const events = this.o.client.watch<T>(this.path, { ...this.selectors(), resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds }, signal);
        for await (const ev of events) {
          attempt = 0;
          const rv = ev.object.metadata?.resourceVersion;
          if (ev.type === 'BOOKMARK') {
            if (rv) this.resourceVersion = rv;
            continue;
          }
          this.apply(ev.type, ev.object);
          if (rv) this.resourceVersion = rv;
        }
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof KubeApiError && err.gone) {
          this.stats.gone++;
          this.o.logger.info({ resource: this.o.resource.plural, resourceVersion: this.resourceVersion }, 'resourceVersion too old (410 Gone); relisting');
          this.resourceVersion = undefined;
          continue;
        }
        this.stats.errors++;
        attempt++;
        this.o.onError?.(err);
        const delay = backoffDelay(attempt, { baseMs: this.o.backoff?.baseMs ?? 250, maxMs: this.o.backoff?.maxMs ?? 10_000 });
        this.o.logger.warn({ err, resource: this.o.resource.plural, attempt, delayMs: delay }, 'list/watch failed; retrying');
        this.state = 'backoff';
        await sleep(delay, signal).catch(() => undefined);
      }
    }
    this.state = 'closed';
  }

  private async relist(signal: AbortSignal): Promise<void> {
    this.stats.lists++;
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    do {
      const page: KubeList<T> = await this.o.client.request<KubeList<T>>('GET', this.path, {
        query: { ...this.selectors(), limit: this.o.pageSize ?? 500, continue: cont },
        signal,
      });
      items.push(...page.items);
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion;
    } while (cont);
    const seen = new Set<string>();
    for (const item of items) {
      seen.add(item.metadata.name);
      this.apply('MODIFIED', item);
    }
    for (const [name, old] of [...this.cache]) {
      if (!seen.has(name)) {
        this.cache.delete(name);
        this.emit('delete', old);
      }
    }
    this.resourceVersion = rv;
    this.markSynced();
    this.emit('sync');
  }

  private apply(type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'ERROR', obj: T): void {
    const name = obj.metadata.name;
    const old = this.cache.get(name);
    if (type === 'DELETED') {
      this.cache.delete(name);
      this.emit('delete', old ?? obj);
      return;
    }
    if (old?.metadata.resourceVersion === obj.metadata.resourceVersion && old !== undefined) return;
    this.cache.set(name, obj);
    if (old === undefined) this.emit('add', obj);
    else this.emit('update', old, obj);
  }

  /** Stops the loop and the open watch. Idempotent. */
  async close(): Promise<void> {
    this.abort.abort(new Error('informer closed'));
    await this.loop;
    this.state = 'closed';
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
