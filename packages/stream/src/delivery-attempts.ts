/**
 * Failed deliveries of durable groups (and Triggers, which are durable groups), kept with the
 * group's durable state so that dead-lettering after `maxAttempts` survives a restart
 * (docs/http.md, "Dead-lettering"). Without this a poison event that crashes its consumer, or a
 * server restarted more often than maxAttempts backoffs, would be redelivered forever.
 *
 * Meta keys (storage/layout.ts): `a/{group}` (by batch: `<offset>` is the batch's last offset) and
 * `t/{trigger}` (by event) → JSON `{"<offset>": {"n": failures, "e": lastError}}`.
 *
 * Rules:
 * - Only failures are written (nack, ack deadline, member lost, sink error), never successful
 *   deliveries, so the happy path costs nothing. A delivery cut short by this server's own crash
 *   is not a failure and is not counted.
 * - A record is written once the log is durable up to its highest offset (`afterLog`): never
 *   ahead of the log, so after a power loss no record can name an offset that a different event
 *   takes next. Records at or below the group's acked offset are stale and ignored on load.
 * - `recorded()` returns only after the write: callers redeliver after it, so an attempt number a
 *   consumer has seen is never handed out again after a restart.
 * - Writes per group are serialized and coalesced; entries are dropped (`settled`) once the group
 *   acks past them, which writes only when something was recorded.
 */
import { HadronError, type Logger } from '@hadron/core';
import type { MetaAccess } from './storage/partition-store.js';

export interface FailureRecord {
  /** Failed deliveries so far. */
  attempts: number;
  lastError: string;
}

interface GroupState {
  entries: Map<number, FailureRecord>;
  /** The write in progress (a chain: each write sees the entries as they are when it starts). */
  writing: Promise<void>;
}

export interface DeliveryAttemptsOptions {
  meta: MetaAccess;
  /** The meta key of a consumer's records (metaKeys.groupAttempts or metaKeys.triggerAttempts). */
  keyOf: (consumer: string) => string;
  logger: Logger;
  /** A write failure other than a full volume: the store can no longer be trusted. */
  onFatal: (err: unknown) => void;
}

export class DeliveryAttempts {
  private readonly groups = new Map<string, GroupState>();
  private closed = false;

  constructor(private readonly o: DeliveryAttemptsOptions) {}

  private state(group: string): GroupState {
    let s = this.groups.get(group);
    if (!s) {
      s = { entries: new Map(), writing: Promise.resolve() };
      const raw = this.o.meta.get(this.o.keyOf(group));
      if (raw) {
        try {
          const parsed = JSON.parse(raw.toString('utf8')) as Record<string, { n: number; e: string }>;
          for (const [k, v] of Object.entries(parsed)) s.entries.set(Number(k), { attempts: v.n, lastError: v.e });
        } catch (err) {
          this.o.logger.error({ err, group }, 'stored delivery attempts are unreadable; counting from zero');
        }
      }
      this.groups.set(group, s);
    }
    return s;
  }

  /** Failures recorded for the batch or event ending at `offset` (loaded from the store). */
  get(group: string, offset: number): FailureRecord | undefined {
    return this.state(group).entries.get(offset);
  }

  /** Every stored entry of `group` above `acked` (the batch a restarted group resumes with). */
  pending(group: string, acked: number): Array<[number, FailureRecord]> {
    return [...this.state(group).entries].filter(([o]) => o > acked).sort((a, b) => a[0] - b[0]);
  }

  /**
   * Records that the deliveries of `offset` failed `attempts` times; resolves once stored (or
   * when it cannot be: a full volume keeps it in memory, logged).
   */
  recorded(group: string, offset: number, rec: FailureRecord): Promise<void> {
    const s = this.state(group);
    s.entries.set(offset, { attempts: rec.attempts, lastError: rec.lastError.slice(0, 1024) });
    return this.write(group, s);
  }

  /** Drops the entries at or below `upTo` (the group acked past them); resolves when written. */
  settled(group: string, upTo: number): Promise<void> {
    const s = this.state(group);
    if (s.entries.size === 0) return Promise.resolve();
    let removed = false;
    for (const o of s.entries.keys()) {
      if (o <= upTo) {
        s.entries.delete(o);
        removed = true;
      }
    }
    return removed ? this.write(group, s) : Promise.resolve();
  }

  /** Forgets a deleted or reset group (its key is deleted). */
  forget(group: string): Promise<void> {
    const s = this.state(group);
    s.entries.clear();
    return this.write(group, s);
  }

  private write(group: string, s: GroupState): Promise<void> {
    const next = s.writing.then(async () => {
      if (this.closed) return;
      const key = this.o.keyOf(group);
      const entries = [...s.entries];
      const value: Record<string, { n: number; e: string }> = {};
      for (const [o, r] of entries) value[String(o)] = { n: r.attempts, e: r.lastError };
      const afterLog = Math.max(0, ...entries.map(([o]) => o));
      try {
        await this.o.meta.commit(entries.length ? [{ kind: 'put', key, value: Buffer.from(JSON.stringify(value)) }] : [{ kind: 'del', key }], { sync: true, afterLog });
      } catch (err) {
        if (this.closed) return;
        if (err instanceof HadronError && err.code === 'DISK_FULL') {
          this.o.logger.warn({ err, group }, 'delivery attempts not persisted: the volume is full (they count from the last stored value after a restart)');
          return;
        }
        this.o.onFatal(err);
      }
    });
    s.writing = next;
    return next;
  }

  /** Stops writing (writes running finish; nothing new starts). */
  close(): void {
    this.closed = true;
  }
}
