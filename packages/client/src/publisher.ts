/**
 * The publish path: partition choice, automatic batching, a bounded window of in-flight batches
 * per partition, retries of retriable failures, and fail-over to the next healthy partition.
 *
 *   publish(events) ─▶ toWireEvent + encodeEvent ─▶ home = partitionOf(event, count)
 *        ─▶ target = home, or the next partition that is not down (unless strictPlacement)
 *        ─▶ lane(target, fsync, ack).queue ─▶ batches of ≤ maxBatchEvents / maxBatchBytes
 *        ─▶ at most maxInFlightBatches StreamPublish calls per lane at a time
 *
 * Batching is "natural": a batch leaves as soon as the window has room, holding whatever queued
 * meanwhile, so a lone publish is sent at once and a burst fills large batches; nothing waits on
 * a timer. When several requests of the window are free, the queue is split evenly across them
 * (down to `spreadMinEvents` per batch) so requests stay pipelined. Backpressure: when the
 * window is full, events queue and their `publish()` promises resolve only once their batch is
 * acknowledged, so a caller that awaits its publishes (or bounds how many it has outstanding)
 * runs at the server's pace.
 *
 * Failures: a retriable error (UNAVAILABLE, DEADLINE_EXCEEDED, storage errors) is retried up to
 * `retry.attempts` times in total with exponential backoff and jitter. When the target partition
 * is unavailable or timed out and `strictPlacement` is off (the default), the events go to the
 * next partition (by number, wrapping) whose connection is not down and that has not refused a
 * publish in the last `retry.maxMs`, at once; with `strictPlacement` they are
 * retried on their own partition only, and finally fail with UNAVAILABLE naming it. A batch that
 * failed may have been stored anyway (e.g. the connection broke after the write): publishing is
 * at-least-once, and a retry can reorder it after later batches of the same partition.
 */
import { HadronError, backoffDelay, isRetriable, sleep } from '@hadron/core';
import { encodeEvent, encodePublishRequest } from '@hadron/proto';
import { toWireEvent, type EventInput, type WireEvent } from './event.js';
import { partitionOf } from './hash.js';
import type { PartitionHealth } from './topology.js';

export type WriteAckMode = 'all' | 'majority' | 'none';
const ACK_CODE: Record<WriteAckMode, number> = { all: 0, majority: 1, none: 2 };

export interface PublishOptions {
  /** Wait until the events are on disk before the ack (default: the client's, true). */
  fsync?: boolean;
  /** How many replicas must hold the batch before the ack (default 'all'). */
  ack?: WriteAckMode;
  /** Fail rather than send to another partition when the key's partition is down. */
  strictPlacement?: boolean;
  /** Aborts waiting: events not yet sent are dropped; sent ones may still be stored. */
  signal?: AbortSignal;
}

/** Where an event was stored. */
export interface PublishAck {
  partition: number;
  offset: number;
}

export interface PublisherOptions {
  /** Most events in one StreamPublish request (default 1000). */
  maxBatchEvents: number;
  /** Most bytes of encoded events in one request (default 1 MiB; the server accepts 64 MiB). */
  maxBatchBytes: number;
  /** Most requests in flight per partition (default 4). */
  maxInFlightBatches: number;
  /**
   * Smallest batch made by spreading (default 64): when several requests of the window are free,
   * the queued events are split evenly across them, but not into batches smaller than this.
   * Set it ≥ `maxBatchEvents` to turn spreading off (one batch as large as the limits allow).
   */
  spreadMinEvents: number;
  fsync: boolean;
  ack: WriteAckMode;
  strictPlacement: boolean;
  retry: { attempts: number; baseMs: number; maxMs: number };
  /** Deadline of one StreamPublish call (default 30 s). */
  timeoutMs: number;
}

export const DEFAULT_PUBLISHER_OPTIONS: Readonly<PublisherOptions> = Object.freeze({
  maxBatchEvents: 1000,
  maxBatchBytes: 1024 * 1024,
  maxInFlightBatches: 4,
  spreadMinEvents: 64,
  fsync: true,
  ack: 'all',
  strictPlacement: false,
  retry: { attempts: 5, baseMs: 100, maxMs: 2000 },
  timeoutMs: 30_000,
});

/** What the publisher needs from the rest of the client; a seam for unit tests. */
export interface PublishTransport {
  /** The Stream's partition count; 0 while unknown. */
  partitionCount(): number;
  /** The health of partition `p`'s connection, undefined when it is not in the topology. */
  health(p: number): PartitionHealth | undefined;
  /** Resolves once the topology is known; rejects with the reason it is not. */
  whenKnown(signal?: AbortSignal): Promise<void>;
  /** Sends one encoded StreamPublishRequest to partition `p`. */
  send(p: number, request: Buffer, timeoutMs: number): Promise<{ offset: number; partition: number }>;
  /** A call to `p` failed as unavailable. */
  markDown(p: number): void;
  /** `host:port` of `p`, for error messages. */
  describe(p: number): string;
}

interface Item {
  events: Uint8Array[];
  bytes: number;
  home: number;
  target: number;
  strict: boolean;
  fsync: boolean;
  ack: number;
  attempts: number;
  settled: boolean;
  resolve: (r: PublishAck) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
}

class Lane {
  readonly queue: Item[] = [];
  /** Events of the items in `queue` (settled ones included until they are dropped from it). */
  queuedEvents = 0;
  inFlight = 0;
  scheduled = false;
  constructor(
    readonly partition: number,
    readonly fsync: boolean,
    readonly ack: number,
  ) {}
}

/** Statistics for tests and benchmarks. */
export interface PublisherStats {
  batches: number;
  events: number;
  retries: number;
  failovers: number;
  maxBatchEvents: number;
}

export class Publisher {
  private readonly lanes = new Map<string, Lane>();
  private closed = false;
  readonly stats: PublisherStats = { batches: 0, events: 0, retries: 0, failovers: 0, maxBatchEvents: 0 };
  private readonly inFlight = new Set<Promise<void>>();
  /**
   * Partitions whose server refused a publish (UNAVAILABLE, e.g. its replicas are missing or it
   * is still recovering; or DEADLINE_EXCEEDED) → until when routing avoids them (`retry.maxMs`
   * after the refusal; a success ends it). Their connection is up, so `markDown` cannot keep
   * them out of routing: it flips back to ready at once, and without this every retry went to
   * the same refusing partition while others could take the events.
   */
  private readonly refused = new Map<number, number>();

  constructor(
    private readonly t: PublishTransport,
    readonly o: PublisherOptions,
  ) {
    if (o.maxBatchEvents < 1 || o.maxInFlightBatches < 1 || o.maxBatchBytes < 1 || !(o.spreadMinEvents >= 1)) {
      throw new RangeError('publisher batch and window limits (maxBatchEvents, maxBatchBytes, maxInFlightBatches, spreadMinEvents) must be ≥ 1');
    }
  }

  /** Publishes one event (→ its ack) or several (→ one ack per event, in order). */
  publish(event: EventInput, opts?: PublishOptions): Promise<PublishAck>;
  publish(events: readonly EventInput[], opts?: PublishOptions): Promise<PublishAck[]>;
  publish(input: EventInput | readonly EventInput[], opts: PublishOptions = {}): Promise<PublishAck | PublishAck[]> {
    try {
      if (this.closed) throw new HadronError('UNAVAILABLE', 'client closed');
      opts.signal?.throwIfAborted();
      const many = Array.isArray(input);
      const wires = many ? (input as readonly EventInput[]).map(toWireEvent) : toWireEvent(input as EventInput);
      if (this.t.partitionCount() === 0) {
        return this.t.whenKnown(opts.signal).then(() => this.admit(wires, many, opts));
      }
      return this.admit(wires, many, opts);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private admit(input: WireEvent | WireEvent[], many: boolean, opts: PublishOptions): Promise<PublishAck | PublishAck[]> {
    const count = this.t.partitionCount();
    if (count === 0) throw new HadronError('NO_PARTITIONS', 'the Stream has no partitions');
    const fsync = opts.fsync ?? this.o.fsync;
    const ack = ACK_CODE[opts.ack ?? this.o.ack];
    const strict = opts.strictPlacement ?? this.o.strictPlacement;
    if (!Array.isArray(input) || input.length === 1) {
      // The one-event call is the hot path of fine-grained publishers: one promise, no grouping.
      const w = Array.isArray(input) ? input[0]! : input;
      const enc = encodeEvent(w);
      return this.enqueueItem([enc], enc.length, partitionOf(w, count), strict, fsync, ack, opts.signal, many);
    }
    const wires = input;
    // Group by partition, keeping input order inside each group; split groups by batch limits.
    const groups = new Map<number, number[]>();
    const encoded = wires.map((w, i) => {
      const home = partitionOf(w, count);
      let g = groups.get(home);
      if (!g) groups.set(home, (g = []));
      g.push(i);
      return encodeEvent(w);
    });
    const acks = new Array<PublishAck>(wires.length);
    const parts: Promise<void>[] = [];
    for (const [home, idxs] of groups) {
      let start = 0;
      while (start < idxs.length) {
        let end = start;
        let bytes = 0;
        while (end < idxs.length && end - start < this.o.maxBatchEvents && (end === start || bytes + encoded[idxs[end]!]!.length <= this.o.maxBatchBytes)) {
          bytes += encoded[idxs[end]!]!.length;
          end++;
        }
        const chunk = idxs.slice(start, end);
        parts.push(
          this.enqueueItem(
            chunk.map((i) => encoded[i]!),
            bytes,
            home,
            strict,
            fsync,
            ack,
            opts.signal,
          ).then((r) => {
            chunk.forEach((i, k) => (acks[i] = { partition: r.partition, offset: r.offset - (chunk.length - 1 - k) }));
          }),
        );
        start = end;
      }
    }
    return Promise.all(parts).then(() => acks);
  }

  /**
   * The partition to send to: `home`, or (unless strict) the next one not known to be down and
   * not refusing publishes; failing that, the next one not down.
   */
  private route(home: number, strict: boolean): number {
    if (strict) return home;
    const n = this.t.partitionCount();
    const now = this.refused.size > 0 ? Date.now() : 0;
    for (const avoidRefusing of now > 0 ? [true, false] : [false]) {
      const usable = (p: number): boolean => {
        const h = this.t.health(p);
        return (h === 'ready' || h === 'connecting') && !(avoidRefusing && (this.refused.get(p) ?? 0) > now);
      };
      if (usable(home)) return home;
      for (let k = 1; k < n; k++) {
        const p = (home + k) % n;
        if (usable(p)) return p;
      }
    }
    return home < n ? home : home % Math.max(1, n);
  }

  private enqueueItem(events: Uint8Array[], bytes: number, home: number, strict: boolean, fsync: boolean, ack: number, signal: AbortSignal | undefined): Promise<PublishAck>;
  /** With `asArray`, the promise resolves to `[ack]` (a one-event array call) without a `then`. */
  private enqueueItem(events: Uint8Array[], bytes: number, home: number, strict: boolean, fsync: boolean, ack: number, signal: AbortSignal | undefined, asArray: boolean): Promise<PublishAck | PublishAck[]>;
  private enqueueItem(events: Uint8Array[], bytes: number, home: number, strict: boolean, fsync: boolean, ack: number, signal: AbortSignal | undefined, asArray = false): Promise<PublishAck | PublishAck[]> {
    return new Promise<PublishAck | PublishAck[]>((outerResolve, reject) => {
      const resolve: (r: PublishAck) => void = asArray ? (r) => outerResolve([r]) : outerResolve;
      const item: Item = { events, bytes, home, target: home, strict, fsync, ack, attempts: 0, settled: false, resolve, reject, signal };
      if (signal) {
        const onAbort = (): void => this.settle(item, signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        const done = (): void => signal.removeEventListener('abort', onAbort);
        item.resolve = (r) => (done(), resolve(r));
        item.reject = (e) => (done(), reject(e));
      }
      this.place(item);
    });
  }

  private place(item: Item): void {
    const target = this.route(item.home, item.strict);
    if (target !== item.home && target !== item.target) this.stats.failovers++;
    item.target = target;
    const key = `${target}:${item.fsync ? 1 : 0}:${item.ack}`;
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = new Lane(target, item.fsync, item.ack)));
    lane.queue.push(item);
    lane.queuedEvents += item.events.length;
    this.schedule(lane);
  }

  private schedule(lane: Lane): void {
    if (lane.scheduled || lane.inFlight >= this.o.maxInFlightBatches) return;
    lane.scheduled = true;
    queueMicrotask(() => {
      lane.scheduled = false;
      this.flush(lane);
    });
  }

  private flush(lane: Lane): void {
    while (lane.inFlight < this.o.maxInFlightBatches && lane.queue.length > 0) {
      // Spread the queue over the free requests of the window: one huge batch followed by idle
      // slots leaves the server with nothing to read while it syncs that batch (the caller with
      // N publishes outstanding then waits a full round trip per N events); equal parts keep
      // requests pipelined. Measured: see docs/client.md#batching-the-window-and-backpressure.
      const free = this.o.maxInFlightBatches - lane.inFlight;
      const cap = Math.min(this.o.maxBatchEvents, Math.max(this.o.spreadMinEvents, Math.ceil(lane.queuedEvents / free)));
      const batch: Item[] = [];
      let events = 0;
      let bytes = 0;
      while (lane.queue.length > 0) {
        const it = lane.queue[0]!;
        if (it.settled) {
          lane.queue.shift();
          lane.queuedEvents -= it.events.length;
          continue;
        }
        if (batch.length > 0 && (events + it.events.length > cap || bytes + it.bytes > this.o.maxBatchBytes)) break;
        lane.queue.shift();
        lane.queuedEvents -= it.events.length;
        batch.push(it);
        events += it.events.length;
        bytes += it.bytes;
      }
      if (batch.length === 0) break;
      lane.inFlight++;
      const p = this.send(lane, batch, events).finally(() => {
        lane.inFlight--;
        this.inFlight.delete(p);
        this.schedule(lane);
      });
      this.inFlight.add(p);
    }
  }

  private async send(lane: Lane, batch: Item[], events: number): Promise<void> {
    // A plain loop: flatMap over a thousand one-event items was a tenth of the client's CPU.
    let all: Uint8Array[];
    if (batch.length === 1) all = batch[0]!.events;
    else {
      all = new Array<Uint8Array>(events);
      let k = 0;
      for (const it of batch) for (const e of it.events) all[k++] = e;
    }
    const req = encodePublishRequest(all, lane.fsync, lane.ack);
    this.stats.batches++;
    this.stats.events += events;
    if (events > this.stats.maxBatchEvents) this.stats.maxBatchEvents = events;
    let res: { offset: number; partition: number };
    try {
      res = await this.t.send(lane.partition, req, this.o.timeoutMs);
    } catch (err) {
      for (const it of batch) this.failed(it, err);
      return;
    }
    if (this.refused.size > 0) this.refused.delete(lane.partition);
    // Offsets are dense within a batch: walk back from the last one.
    let last = res.offset;
    for (let i = batch.length - 1; i >= 0; i--) {
      const it = batch[i]!;
      if (!it.settled) {
        it.settled = true;
        it.resolve({ partition: lane.partition, offset: last });
      }
      last -= it.events.length;
    }
  }

  private failed(item: Item, err: unknown): void {
    if (item.settled) return;
    const unavailable = err instanceof HadronError && (err.code === 'UNAVAILABLE' || err.code === 'NO_PARTITIONS');
    const refusing = unavailable || (err instanceof HadronError && err.code === 'DEADLINE_EXCEEDED');
    if (unavailable) this.t.markDown(item.target);
    if (refusing) this.refused.set(item.target, Date.now() + this.o.retry.maxMs);
    item.attempts++;
    if (!isRetriable(err) || this.closed || item.signal?.aborted || item.attempts >= this.o.retry.attempts) {
      this.settle(item, this.describeFailure(item, err));
      return;
    }
    this.stats.retries++;
    if (!item.strict && refusing && this.route(item.home, false) !== item.target) {
      this.place(item);
      return;
    }
    const delay = backoffDelay(item.attempts, this.o.retry);
    void sleep(delay).then(
      () => (item.settled ? undefined : this.place(item)),
      () => undefined,
    );
  }

  private describeFailure(item: Item, err: unknown): unknown {
    if (!(err instanceof HadronError)) return err;
    if (err.code === 'UNAVAILABLE' && item.strict) {
      return new HadronError(
        'UNAVAILABLE',
        `partition ${item.target} (${this.t.describe(item.target)}) is unavailable and strictPlacement is on, so its events were not sent to another partition: ${err.message}`,
        { cause: err, context: { partition: item.target, attempts: item.attempts } },
      );
    }
    if (err.code === 'UNAVAILABLE') {
      return new HadronError('UNAVAILABLE', `publish failed after ${item.attempts} attempt(s); last tried partition ${item.target} (${this.t.describe(item.target)}): ${err.message}`, {
        cause: err,
        context: { partition: item.target, attempts: item.attempts },
      });
    }
    return err;
  }

  private settle(item: Item, err: unknown): void {
    if (item.settled) return;
    item.settled = true;
    item.reject(err);
  }

  /** Resolves when every batch sent so far has been answered. */
  async flushed(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Refuses new publishes; queued and in-flight batches still complete (or fail). */
  async close(): Promise<void> {
    this.closed = true;
    await this.flushed();
  }
}
