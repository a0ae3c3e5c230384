/**
 * The leader side of replication for this pod's own partition: answers replicas' fetches with
 * the exact stored records (and durable-state changes), tracks what each replica holds durably,
 * and lets publishes wait until the copies their ack mode asks for exist.
 *
 * Replica progress: a fetch "after offset X whose record has checksum C" means the replica holds
 * X durably (it fsyncs before it asks again) — once C matches the leader's record X. A copy that
 * does not continue the leader's log is told `diverged` and never counts.
 *
 * States: `recovering` (fetches refused with UNAVAILABLE: the leader may still take records back
 * from replicas) → `serving` (after `serve()`), → `closed`.
 */
import { HadronError, type Logger } from '@hadron/core';
import { create, type ReplicaFetchRequest, type ReplicaFetchResponse, ReplicaFetchResponseSchema } from '@hadron/proto';
import type { FileStore } from '../storage/partition-store.js';
import { recordChecksum } from '../storage/layout.js';
import { MetaJournal } from './meta-journal.js';
import type { ReplicationMetrics } from './metrics.js';
import { ackName } from './placement.js';

type State = 'recovering' | 'serving' | 'closed';

interface Progress {
  durable: number;
  lastSeenMs: number;
  metaEpoch: string;
  metaSeq: number;
}

interface Waiter {
  offset: number;
  needed: number;
  done: (err?: HadronError) => void;
}

export interface LeaderOptions {
  store: FileStore;
  partition: number;
  /** Pod name of partition n, for messages. */
  podName: (n: number) => string;
  timeoutMs: number;
  logger: Logger;
  metrics: ReplicationMetrics;
}

export interface ReplicaStatus {
  partition: number;
  durableOffset: number;
  lagEvents: number;
  lagSeconds: number;
  inSync: boolean;
  lastSeenMs: number;
  /** Durable-state changes the replica has not confirmed yet. */
  stateLag: number;
}

export class ReplicationLeader {
  private state: State = 'recovering';
  /** When fetches were first allowed: a replica not seen since is not "unreachable" before the timeout. */
  private servingSince = 0;
  private replicas: number[] = [];
  private readonly progress = new Map<number, Progress>();
  private waiters = new Set<Waiter>();
  readonly journal: MetaJournal;
  private readonly unsubscribe: () => void;

  constructor(private readonly o: LeaderOptions) {
    const store = o.store;
    this.journal = new MetaJournal({ maxEntries: 10_000, snapshot: () => store.metaSnapshot(), lastOffset: () => store.lastOffset, durableOffset: () => store.durableOffset });
    this.unsubscribe = store.onMetaCommitted((ops) => this.journal.add(ops));
  }

  /** Recovery is over: replicas may fetch. */
  serve(): void {
    if (this.state !== 'recovering') return;
    this.state = 'serving';
    this.servingSince = Date.now();
  }

  /** The current replica set (pods by partition number); progress of others is forgotten. */
  setReplicas(replicas: number[]): void {
    this.replicas = [...replicas];
    for (const n of this.progress.keys()) if (!replicas.includes(n)) this.progress.delete(n);
    for (const n of replicas) if (!this.progress.has(n)) this.progress.set(n, { durable: 0, lastSeenMs: 0, metaEpoch: '', metaSeq: 0 });
    this.o.metrics.replicaDurableOffset.reset();
    this.o.metrics.replicaLagEvents.reset();
    this.o.metrics.replicaLagSeconds.reset();
    this.o.metrics.replicaInSync.reset();
    this.o.metrics.replicaStateLag.reset();
    this.check();
  }

  get replicaSet(): readonly number[] {
    return this.replicas;
  }

  /** Handles one replica fetch (a long poll of up to `wait_ms`). */
  async fetch(req: ReplicaFetchRequest, signal: AbortSignal): Promise<ReplicaFetchResponse> {
    if (this.state !== 'serving') throw new HadronError('UNAVAILABLE', `partition ${this.o.partition} is ${this.state === 'closed' ? 'stopping' : 'still recovering'}; fetch again later`);
    const store = this.o.store;
    const after = Number(req.afterOffset);
    const base = { leaderFirstOffset: BigInt(store.firstOffset), leaderLastOffset: BigInt(store.lastOffset), metaEpoch: this.journal.epoch };
    if (!(await this.continuesLog(after, req.afterChecksum))) {
      this.o.logger.error({ replica: req.replica, replicaLast: after, leaderFirst: store.firstOffset, leaderLast: store.lastOffset }, 'a replica copy does not continue this log; telling it to set its copy aside');
      return create(ReplicaFetchResponseSchema, { ...base, diverged: true });
    }
    const p = this.progress.get(req.replica);
    if (p) {
      p.durable = Math.max(p.durable, after);
      p.lastSeenMs = Date.now();
      p.metaEpoch = req.metaEpoch;
      p.metaSeq = Number(req.metaSeq);
      this.check();
    }
    if (after >= store.lastOffset && req.waitMs > 0) await this.waitAppend(after, Math.min(req.waitMs, 10_000), signal);
    const read = { maxEvents: 10_000, maxBytes: Math.max(1, req.maxBytes) };
    // A replica that asks `verbatim` gets the stored frames as they are (no per-record message,
    // no checksum recomputed); one that does not (an older version) gets `records` as before.
    const frames = req.verbatim && after < store.lastOffset ? await store.readFrames(after + 1, read) : undefined;
    const records = !req.verbatim && after < store.lastOffset ? await store.readFrom(after + 1, read) : [];
    const logEnd = frames ? frames.last : records.length ? records[records.length - 1]!.offset : after;
    const meta = this.journal.next(req.metaEpoch, Number(req.metaSeq), logEnd);
    return create(ReplicaFetchResponseSchema, {
      ...base,
      leaderLastOffset: BigInt(store.lastOffset),
      records: records.map((r) => ({ offset: BigInt(r.offset), timestampMs: BigInt(r.timestamp), payload: r.payload, checksum: recordChecksum(r.offset, r.timestamp, r.payload) })),
      ...(frames ? { frames: frames.frames } : {}),
      metaSnapshot: meta.kind === 'snapshot',
      meta:
        meta.kind === 'snapshot'
          ? meta.entries.map(([key, value]) => ({ key, value }))
          : meta.kind === 'ops'
            ? meta.ops.map((op) => (op.kind === 'put' ? { key: op.key, value: op.value } : { key: op.key, delete: true }))
            : [],
      metaSeq: BigInt(meta.seq),
    });
  }

  /** True when a copy ending at `after` with that record checksum is a prefix of this log. */
  private async continuesLog(after: number, checksum: number): Promise<boolean> {
    const store = this.o.store;
    if (after === 0) return true;
    if (after > store.lastOffset) return false;
    // Below the first readable offset the record is gone; a copy ending just before it can continue.
    if (after < store.firstOffset) return after === store.firstOffset - 1;
    // The stored CRC, not a recomputed one (the tail cache keeps it; a disk read checks it).
    const f = await store.readFrames(after, { maxEvents: 1 });
    return f !== undefined && f.first === after && f.lastChecksum === checksum;
  }

  private waitAppend(after: number, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        off();
        signal.removeEventListener('abort', done);
        resolve();
      };
      const off = this.o.store.onAppend((last) => last > after && done());
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Resolves once `needed` replicas (besides the leader) hold `offset` durably; rejects with
   * UNAVAILABLE naming the missing replicas after the replication timeout, at once when too few
   * replicas have been reachable within it, or when `signal` aborts (the call's deadline).
   */
  waitCopies(offset: number, needed: number, ack: number, signal: AbortSignal): Promise<void> {
    if (needed <= 0 || this.have(offset) >= needed) return Promise.resolve();
    const now = Date.now();
    const reachable = this.replicas.filter((n) => {
      const p = this.progress.get(n);
      return p !== undefined && (p.durable >= offset || now - Math.max(p.lastSeenMs, this.servingSince) <= this.o.timeoutMs);
    }).length;
    if (reachable < needed) return Promise.reject(this.unavailable(offset, needed, ack, 'fast'));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        offset,
        needed,
        done: (err) => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          this.waiters.delete(w);
          if (err) reject(err);
          else resolve();
        },
      };
      const onAbort = (): void => w.done(this.unavailable(offset, needed, ack, 'deadline'));
      const timer = setTimeout(() => w.done(this.unavailable(offset, needed, ack, 'timeout')), this.o.timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(w);
    });
  }

  private have(offset: number): number {
    let n = 0;
    for (const r of this.replicas) if ((this.progress.get(r)?.durable ?? 0) >= offset) n++;
    return n;
  }

  private check(): void {
    for (const w of this.waiters) if (this.have(w.offset) >= w.needed) w.done();
  }

  private unavailable(offset: number, needed: number, ack: number, why: 'fast' | 'timeout' | 'deadline'): HadronError {
    this.o.metrics.publishUnreplicated.inc({ ack: ackName(ack) });
    const now = Date.now();
    const missing = this.replicas
      .filter((n) => (this.progress.get(n)?.durable ?? 0) < offset)
      .map((n) => {
        const p = this.progress.get(n);
        const seen = p && p.lastSeenMs ? `last fetch ${((now - p.lastSeenMs) / 1000).toFixed(1)} s ago` : 'not seen since this leader started';
        return `${this.o.podName(n)} (durable offset ${p?.durable ?? 0}, ${seen})`;
      });
    const when = why === 'fast' ? `too few replicas reached this leader within ${this.o.timeoutMs} ms` : why === 'timeout' ? `not within ${this.o.timeoutMs} ms` : 'not before the call\'s deadline';
    return new HadronError(
      'UNAVAILABLE',
      `publish to partition ${this.o.partition} not acknowledged: ack ${ackName(ack)} needs ${needed + 1} of ${this.replicas.length + 1} copies durable up to offset ${offset}, ${when}; missing replicas: ${missing.join(', ')}. The events are stored on the leader and will reach the replicas when they return; a retry may store them twice`,
      { context: { offset, missing: this.replicas.filter((n) => (this.progress.get(n)?.durable ?? 0) < offset) } },
    );
  }

  /** Each replica's state, for inspection and metrics. */
  async status(): Promise<ReplicaStatus[]> {
    const store = this.o.store;
    const now = Date.now();
    const out: ReplicaStatus[] = [];
    for (const n of this.replicas) {
      const p = this.progress.get(n) ?? { durable: 0, lastSeenMs: 0, metaEpoch: '', metaSeq: 0 };
      const lagEvents = Math.max(0, store.lastOffset - Math.max(p.durable, store.firstOffset - 1));
      let lagSeconds = 0;
      if (lagEvents > 0) {
        const [oldest] = await store.readFrom(p.durable + 1, { maxEvents: 1 }).catch(() => []);
        if (oldest) lagSeconds = Math.max(0, (now - oldest.timestamp) / 1000);
      }
      const inSync = lagEvents === 0 && p.lastSeenMs > 0 && now - p.lastSeenMs <= this.o.timeoutMs;
      out.push({ partition: n, durableOffset: p.durable, lagEvents, lagSeconds, inSync, lastSeenMs: p.lastSeenMs, stateLag: this.journal.behind(p.metaEpoch, p.metaSeq) });
    }
    return out;
  }

  /** Refreshes the per-replica gauges (on each metrics scrape). */
  async updateMetrics(): Promise<void> {
    const m = this.o.metrics;
    for (const s of await this.status()) {
      const l = { replica: String(s.partition) };
      m.replicaDurableOffset.set(l, s.durableOffset);
      m.replicaLagEvents.set(l, s.lagEvents);
      m.replicaLagSeconds.set(l, s.lagSeconds);
      m.replicaInSync.set(l, s.inSync ? 1 : 0);
      m.replicaStateLag.set(l, s.stateLag);
    }
  }

  close(): void {
    this.state = 'closed';
    this.unsubscribe();
    for (const w of [...this.waiters]) w.done(new HadronError('UNAVAILABLE', `partition ${this.o.partition} is stopping`));
  }
}
