/**
 * Retention: removes events by age (`time` strategy, retentionSeconds from the Stream spec) and,
 * beyond the original, by size (HADRON_RETENTION_MAX_BYTES). `retain` keeps everything (the
 * size bound still applies when set). Runs every `intervalSeconds`; the first run waits only
 * for what is left of the interval since the last recorded run (the original inverted this).
 *
 * Retention never silently drops events that a durable group has not acked: it still drops
 * them (a stream's retention is a promise about disk use), but counts them per group in
 * `hadron_stream_subscriber_skipped_by_retention_total` and logs a warning.
 */
import type { Logger, RetentionStrategy } from '@hadron/core';
import type { PartitionStore } from './storage/partition-store.js';
import type { Subscriptions } from './subscriptions.js';
import type { StreamMetrics } from './metrics.js';

export interface RetentionOptions {
  store: PartitionStore;
  subscriptions: Subscriptions;
  metrics: StreamMetrics;
  logger: Logger;
  policy: () => { strategy: RetentionStrategy; retentionSeconds: number };
  maxBytes: number;
  intervalSeconds: number;
}

export class Retention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  /** What the last run that removed anything removed (inclusive offsets), for inspection. */
  lastRemoved: { from: number; to: number; atMs: number } | undefined;

  constructor(private readonly o: RetentionOptions) {}

  /** The policy in force and the size bound (inspection). */
  describe(): { strategy: RetentionStrategy; retentionSeconds: number; maxBytes: number; lastRunMs: number | undefined } {
    return { ...this.o.policy(), maxBytes: this.o.maxBytes, lastRunMs: this.o.store.lastCompactionAt() };
  }

  /** Delay before the first run, given the last recorded run. */
  static initialDelayMs(lastRunMs: number | undefined, intervalSeconds: number, now = Date.now()): number {
    const interval = intervalSeconds * 1000;
    if (lastRunMs === undefined) return Math.min(interval, 60_000);
    return Math.max(0, Math.min(interval, lastRunMs + interval - now));
  }

  start(): void {
    this.schedule(Retention.initialDelayMs(this.o.store.lastCompactionAt(), this.o.intervalSeconds));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce()
        .catch((err: unknown) => this.o.logger.error({ err }, 'retention run failed'))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.o.intervalSeconds * 1000);
        });
    }, ms);
    this.timer.unref();
  }

  /** One retention pass; returns the first readable offset afterwards. */
  async runOnce(now = Date.now()): Promise<number> {
    const { store, metrics, logger } = this.o;
    const policy = this.o.policy();
    let cut = store.firstOffset;
    if (policy.strategy === 'time') {
      const last = await store.lastOffsetBefore(now - policy.retentionSeconds * 1000);
      cut = Math.max(cut, last + 1);
    }
    if (this.o.maxBytes > 0) cut = Math.max(cut, store.offsetToFitBytes(this.o.maxBytes));
    if (cut > store.firstOffset) {
      for (const g of this.o.subscriptions.durableLaggards(cut)) {
        const skipped = cut - 1 - g.offset;
        metrics.skippedByRetention.inc({ group: g.name }, skipped);
        logger.warn({ group: g.name, ackedOffset: g.offset, newFirstOffset: cut, skipped }, 'retention removed events a durable group had not acked');
      }
      const before = store.firstOffset;
      await store.compactBefore(cut);
      this.lastRemoved = { from: before, to: store.firstOffset - 1, atMs: now };
      logger.info({ from: before, to: store.firstOffset - 1, strategy: policy.strategy }, 'retention removed events');
    }
    await store.recordCompaction(now);
    metrics.firstOffset.set(store.firstOffset);
    metrics.lastCompactedOffset.set(store.firstOffset - 1);
    metrics.storageBytes.set(store.sizeBytes);
    return store.firstOffset;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
