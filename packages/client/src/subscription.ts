/**
 * The machinery shared by stream subscriptions and pipeline stage handlers: one bidi call per
 * partition, following the topology, each with its own reconnect loop.
 *
 * Per-partition worker states (emitted as `partition` events):
 *
 *   connecting ──first delivery──▶ active ──stream ended / failed (retriable)──▶ backoff ──▶ connecting
 *        │                           │
 *        └──fatal error (bad token, permission, unknown pipeline, unimplemented…)──▶ failed
 *   any ──close() / partition removed──▶ closed
 *
 * Deliveries of one partition are handled one at a time (the server keeps at most one batch in
 * flight per group and partition); partitions run in parallel. The handler's success acks the
 * delivery, a throw nacks it with the error's message. `close()` stops taking deliveries: an
 * idle partition's call is cancelled at once; a partition whose handler is running lets it
 * finish, sends its ack or nack, half-closes, and waits briefly for the server to end the call,
 * so no acknowledged work is lost. A fatal error on any partition fails the whole subscription:
 * `done` rejects with it and every partition stops.
 */
import { EventEmitter } from 'node:events';
import { HadronError, backoffDelay, sleep, type BackoffOptions, type ClientCall, type Logger } from '@hadron/core';
import type { Topology } from './topology.js';

/** How one kind of subscription speaks on the wire. */
export interface SubscriptionProtocol<D, R> {
  /** For logs and errors, e.g. `group "billing"`. */
  readonly description: string;
  readonly method: string;
  /** The first message; `lastAcked` is this partition's last acked offset, if any. */
  setup(lastAcked: number | undefined): Uint8Array;
  decode(msg: Buffer, partition: number): D;
  /** The ack for delivery `d`; it names `d` so the server never applies it to another batch. */
  ack(result: R, d: D): Uint8Array;
  nack(reason: string, d: D): Uint8Array;
  /** Reports what decoding noticed (e.g. undecodable events left out), if anything. */
  onDecoded?(d: D, logger: Logger, partition: number): void;
  /** The offset to resume after once `d` is acked, if the protocol has one. */
  ackedOffset(d: D): number | undefined;
}

export type WorkerState = 'connecting' | 'active' | 'backoff' | 'failed' | 'closed';

export interface PartitionSubscriptionStatus {
  partition: number;
  state: WorkerState;
  /** The last offset acked on this partition by this subscription, if any. */
  lastAcked: number | undefined;
  deliveries: number;
  /** Why the last call ended (backoff / failed). */
  error?: unknown;
}

export interface SubscriptionEngineOptions {
  topology: Topology;
  metadata: Record<string, string>;
  logger: Logger;
  reconnect: BackoffOptions;
  /** How long close() waits for the server to end a call after the final ack (default 2 s). */
  closeGraceMs?: number;
}

/** Errors that retrying cannot fix: the subscription stops and reports them. */
const FATAL = new Set(['UNAUTHENTICATED', 'PERMISSION_DENIED', 'INVALID_ARGUMENT', 'NOT_FOUND', 'UNIMPLEMENTED', 'MALFORMED_MESSAGE', 'PROTOCOL_VIOLATION', 'MESSAGE_TOO_LARGE']);
export const isFatalSubscriptionError = (err: unknown): boolean => err instanceof HadronError && FATAL.has(err.code);

export const errorText = (err: unknown): string => (err instanceof Error ? err.message || err.name : String(err)) || 'handler failed';

class Worker<D, R> {
  state: WorkerState = 'connecting';
  lastAcked: number | undefined;
  deliveries = 0;
  error: unknown;
  private call: ClientCall | undefined;
  private handling = false;
  private stopping = false;
  private readonly stop = new AbortController();
  readonly done: Promise<void>;

  constructor(
    readonly partition: number,
    private readonly sub: Subscription<D, R>,
    private readonly engine: SubscriptionEngineOptions,
    private readonly protocol: SubscriptionProtocol<D, R>,
    private readonly handler: (d: D) => R | Promise<R>,
  ) {
    this.done = this.run();
  }

  private setState(s: WorkerState, error?: unknown): void {
    if (this.state === s && error === undefined) return;
    this.state = s;
    this.error = error;
    this.sub.emitStatus(this.status());
  }

  status(): PartitionSubscriptionStatus {
    return { partition: this.partition, state: this.state, lastAcked: this.lastAcked, deliveries: this.deliveries, ...(this.error !== undefined ? { error: this.error } : {}) };
  }

  private async run(): Promise<void> {
    const log = this.engine.logger;
    let attempt = 0;
    while (!this.stopping) {
      const conn = this.engine.topology.get(this.partition);
      if (!conn) break;
      this.setState('connecting');
      let error: unknown;
      let grace: NodeJS.Timeout | undefined;
      try {
        // Wait for the connection to come back, but try again after the backoff anyway. The
        // timers of a subscription are ref'd: an open subscription keeps the process alive.
        if (conn.health === 'down') {
          const waited = new AbortController();
          const signal = AbortSignal.any([this.stop.signal, waited.signal]);
          try {
            await Promise.race([conn.whenReady(signal), sleep(backoffDelay(attempt + 1, this.engine.reconnect), signal)]);
          } finally {
            waited.abort();
          }
        }
        const call = conn.channel.bidi(this.protocol.method, { metadata: this.engine.metadata });
        this.call = call;
        call.write(this.protocol.setup(this.lastAcked));
        for await (const msg of call.incoming) {
          // After close(): a delivery racing with it is not handled; the server redelivers it
          // to another member once this call ends.
          if (this.stopping) continue;
          attempt = 0;
          if (this.state !== 'active') this.setState('active');
          const d = this.protocol.decode(msg, this.partition);
          this.protocol.onDecoded?.(d, log, this.partition);
          this.deliveries++;
          this.handling = true;
          let reply: Uint8Array;
          let acked = false;
          try {
            reply = this.protocol.ack(await this.handler(d), d);
            acked = true;
          } catch (err) {
            reply = this.protocol.nack(errorText(err), d);
            log.debug({ partition: this.partition, subscription: this.protocol.description, err: errorText(err) }, 'handler failed; delivery nacked');
          }
          this.handling = false;
          call.write(reply);
          if (acked) this.lastAcked = this.protocol.ackedOffset(d) ?? this.lastAcked;
          if (this.stopping) {
            // close() came during the handler: the reply is sent; half-close and let the
            // server end the call (it then knows this member left), or cancel after a grace.
            call.end();
            grace = setTimeout(() => call.cancel(), this.engine.closeGraceMs ?? 2000);
          }
        }
        if (!this.stopping) error = new HadronError('UNAVAILABLE', `partition ${this.partition} ended the subscription`);
      } catch (err) {
        error = err;
      } finally {
        clearTimeout(grace);
        this.handling = false;
        this.call?.cancel();
        this.call = undefined;
      }
      if (this.stopping) break;
      if (isFatalSubscriptionError(error)) {
        this.setState('failed', error);
        this.sub.fail(error, this.partition);
        return;
      }
      attempt++;
      const delay = backoffDelay(attempt, this.engine.reconnect);
      this.setState('backoff', error);
      log.debug({ partition: this.partition, subscription: this.protocol.description, err: errorText(error), delayMs: delay }, 'subscription call ended; reconnecting');
      try {
        await sleep(delay, this.stop.signal);
      } catch {
        break;
      }
    }
    this.setState('closed');
  }

  /** Stops taking deliveries; a running handler finishes and its reply is sent first. */
  close(): Promise<void> {
    this.stopping = true;
    this.stop.abort(new HadronError('CANCELLED', 'subscription closed'));
    if (!this.handling) this.call?.cancel();
    return this.done;
  }
}

/**
 * A running subscription (stream group or pipeline stage) over every partition of the Stream.
 * Events: `partition` (a partition's worker changed state), `closed`.
 */
export class Subscription<D = unknown, R = unknown> extends EventEmitter<{ partition: [PartitionSubscriptionStatus]; closed: [] }> {
  private readonly workers = new Map<number, Worker<D, R>>();
  private state: 'running' | 'closing' | 'closed' | 'failed' = 'running';
  private failure: unknown;
  private resolveDone!: () => void;
  private rejectDone!: (err: unknown) => void;
  /** Resolves after `close()`, rejects with the error that stopped the subscription. */
  readonly done: Promise<void>;
  private readonly onTopology = (): void => this.reconcile();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly engine: SubscriptionEngineOptions,
    readonly protocol: SubscriptionProtocol<D, R>,
    private readonly handler: (d: D) => R | Promise<R>,
    signal?: AbortSignal,
  ) {
    super();
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Observed here so an unobserved failure is not an unhandled rejection; callers still see it.
    this.done.catch(() => undefined);
    engine.topology.on('change', this.onTopology);
    this.reconcile();
    if (signal) {
      if (signal.aborted) void this.close();
      else signal.addEventListener('abort', () => void this.close(), { once: true });
    }
  }

  /** Per-partition status snapshot. */
  partitions(): PartitionSubscriptionStatus[] {
    return [...this.workers.values()].map((w) => w.status()).sort((a, b) => a.partition - b.partition);
  }

  /** @internal */
  emitStatus(s: PartitionSubscriptionStatus): void {
    this.emit('partition', s);
  }

  private reconcile(): void {
    if (this.state !== 'running') return;
    const parts = this.engine.topology.partitions();
    const wanted = new Set(parts.map((p) => p.partition));
    for (const [n, w] of this.workers) {
      // The partition left the topology: stop its worker (it would also end by itself).
      if (!wanted.has(n) || w.state === 'closed') {
        this.workers.delete(n);
        void w.close();
      }
    }
    for (const p of parts) {
      if (this.workers.has(p.partition)) continue;
      // A worker follows its partition's connection by itself (a replaced connection is picked
      // up on the next reconnect) and ends when the partition leaves the topology.
      this.workers.set(p.partition, new Worker(p.partition, this, this.engine, this.protocol, this.handler));
    }
  }

  /** @internal A worker hit an error retrying cannot fix. */
  fail(err: unknown, partition: number): void {
    if (this.state !== 'running') return;
    this.state = 'failed';
    this.failure = err;
    this.engine.logger.debug({ partition, subscription: this.protocol.description, err: errorText(err) }, 'subscription failed');
    void this.shutdown().then(() => this.rejectDone(err));
  }

  private async shutdown(): Promise<void> {
    this.engine.topology.off('change', this.onTopology);
    await Promise.all([...this.workers.values()].map((w) => w.close()));
    this.workers.clear();
    this.emit('closed');
  }

  /** Stops taking deliveries and waits for handlers in flight. Idempotent. */
  close(): Promise<void> {
    if (this.state === 'failed') return this.done.catch(() => undefined);
    this.closing ??= (async () => {
      this.state = 'closing';
      await this.shutdown();
      this.state = 'closed';
      this.resolveDone();
    })();
    return this.closing;
  }

  /** The error that stopped the subscription, if any. */
  get error(): unknown {
    return this.failure;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
