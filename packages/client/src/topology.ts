/**
 * Topology: which partitions the Stream has, where each one lives, and whether its connection is
 * up. Fed by the Metadata stream (`MetadataFollower`), read by the publisher and subscriptions.
 *
 * One long-lived HTTP/2 connection per partition (`PartitionConnection`), connected eagerly and
 * kept connected:
 *
 *   connecting ──connected──▶ ready ──connection lost / call failed UNAVAILABLE──▶ down
 *        ▲                                                                          │
 *        └──────────────────── reconnect with backoff (same address) ◀──────────────┘
 *   any ──removed from Metadata, address changed, or client closed──▶ closed
 *
 * `apply(list)` reconciles a Metadata list: new partition numbers get a connection, missing ones
 * are closed, and a known partition whose address changed gets a new connection (the original
 * client ignored address changes, reference §11.21). `partitionCount` is the highest partition
 * number + 1: keys are hashed over the Stream's partitions by number, not over live connections.
 */
import { EventEmitter } from 'node:events';
import { GrpcChannel, HadronError, backoffDelay, type BackoffOptions, type ChannelState, type ChannelTls, type Logger } from '@hadron/core';

export type PartitionHealth = 'connecting' | 'ready' | 'down' | 'closed';

export interface PartitionInfo {
  partition: number;
  /** `host:port` as announced by the Metadata stream. */
  address: string;
}

export interface PartitionStatus extends PartitionInfo {
  health: PartitionHealth;
}

export interface TopologyChange {
  partitions: PartitionStatus[];
  added: number[];
  removed: number[];
  /** Partitions whose address changed (their connection was replaced). */
  moved: number[];
}

/**
 * Turns an announced `host:port` (or a URL) into the URL a channel connects to. A bare
 * `host:port` takes `scheme`: the client's own (https when it was bootstrapped over TLS).
 */
export function addressUrl(address: string, scheme: 'http' | 'https' = 'http'): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `${scheme}://${address}`;
}

export interface ConnectionOptions {
  connectTimeoutMs: number;
  maxMessageBytes: number;
  reconnect: BackoffOptions;
  logger: Logger;
  /** Scheme for bare `host:port` addresses. */
  scheme?: 'http' | 'https';
  /** TLS material for https:// partitions. */
  tls?: ChannelTls;
  /** Refuse cleartext partitions. */
  requireTls?: boolean;
  /** HTTP/2 PING interval and answer timeout (see `ChannelOptions`). */
  keepaliveMs?: number;
  keepaliveTimeoutMs?: number;
}

export class PartitionConnection extends EventEmitter<{ health: [PartitionHealth] }> {
  readonly channel: GrpcChannel;
  private _health: PartitionHealth = 'connecting';
  private reconnecting = false;
  private readonly stop = new AbortController();

  constructor(
    readonly partition: number,
    readonly address: string,
    private readonly o: ConnectionOptions,
  ) {
    super();
    this.channel = new GrpcChannel(addressUrl(address, o.scheme), {
      connectTimeoutMs: o.connectTimeoutMs,
      maxMessageBytes: o.maxMessageBytes,
      ...(o.tls ? { tls: o.tls } : {}),
      ...(o.requireTls ? { requireTls: true } : {}),
      ...(o.keepaliveMs !== undefined ? { keepaliveMs: o.keepaliveMs } : {}),
      ...(o.keepaliveTimeoutMs !== undefined ? { keepaliveTimeoutMs: o.keepaliveTimeoutMs } : {}),
    });
    this.channel.on('state', (s: ChannelState) => this.onChannelState(s));
    this.reconnect(false);
  }

  get health(): PartitionHealth {
    return this._health;
  }

  private setHealth(h: PartitionHealth): void {
    if (this._health === h || this._health === 'closed') return;
    this.o.logger.debug({ partition: this.partition, address: this.address, from: this._health, to: h }, 'partition connection state');
    this._health = h;
    this.emit('health', h);
  }

  private onChannelState(s: ChannelState): void {
    if (s === 'ready') this.setHealth('ready');
    // The connection went away (process restarted, GOAWAY, network): reconnect eagerly so the
    // next call does not pay for it, and so health reflects reality.
    else if (s === 'idle' && this._health !== 'closed') this.reconnect(true);
  }

  /** A call on this connection failed with UNAVAILABLE: treat the partition as down. */
  markDown(): void {
    if (this._health === 'closed') return;
    this.setHealth('down');
    this.reconnect(true);
  }

  /** Resolves once the connection is ready (or rejects when closed or aborted). */
  async whenReady(signal?: AbortSignal): Promise<void> {
    if (this._health === 'ready') return;
    if (this._health === 'closed') throw new HadronError('UNAVAILABLE', `partition ${this.partition} was removed`);
    await new Promise<void>((resolve, reject) => {
      const onHealth = (h: PartitionHealth): void => {
        if (h === 'ready') done(), resolve();
        else if (h === 'closed') done(), reject(new HadronError('UNAVAILABLE', `partition ${this.partition} was removed`));
      };
      const onAbort = (): void => {
        done();
        reject(signal?.reason);
      };
      const done = (): void => {
        this.off('health', onHealth);
        signal?.removeEventListener('abort', onAbort);
      };
      if (signal?.aborted) return onAbort();
      this.on('health', onHealth);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private reconnect(wasConnected: boolean): void {
    if (this.reconnecting || this._health === 'closed') return;
    this.reconnecting = true;
    void (async () => {
      for (let attempt = 1; !this.stop.signal.aborted; attempt++) {
        if (this.channel.state === 'ready') {
          this.setHealth('ready');
          break;
        }
        try {
          await this.channel.connect(this.stop.signal);
          this.setHealth('ready');
          break;
        } catch (err) {
          if (this.stop.signal.aborted) break;
          if (attempt === 1 || wasConnected) this.o.logger.debug({ partition: this.partition, address: this.address, err: (err as Error).message }, 'partition unreachable');
          this.setHealth('down');
          try {
            await sleepUnref(backoffDelay(attempt, this.o.reconnect), this.stop.signal);
          } catch {
            break;
          }
        }
      }
      this.reconnecting = false;
    })();
  }

  async close(): Promise<void> {
    this.stop.abort();
    this._health = 'closed';
    this.emit('health', 'closed');
    await this.channel.close();
  }
}

/** A sleep that does not keep the process alive (background reconnects must not). */
export function sleepUnref(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    t.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The partitions of one Stream and their connections. */
export class Topology extends EventEmitter<{ change: [TopologyChange]; health: [PartitionStatus] }> {
  private readonly conns = new Map<number, PartitionConnection>();
  private _count = 0;
  private known = false;
  private closed = false;

  constructor(private readonly o: ConnectionOptions) {
    super();
  }

  /** True once a Metadata list has been applied. */
  get isKnown(): boolean {
    return this.known;
  }

  /** The Stream's partition count (highest partition number + 1), 0 while unknown. */
  get partitionCount(): number {
    return this._count;
  }

  get(partition: number): PartitionConnection | undefined {
    return this.conns.get(partition);
  }

  partitions(): PartitionStatus[] {
    return [...this.conns.values()].sort((a, b) => a.partition - b.partition).map((c) => ({ partition: c.partition, address: c.address, health: c.health }));
  }

  /** Addresses to try for the Metadata stream (any partition serves it). */
  addresses(): string[] {
    return [...this.conns.values()].map((c) => c.address);
  }

  /** Reconciles with a Metadata list. Returns what changed. */
  apply(list: readonly PartitionInfo[]): TopologyChange {
    if (this.closed) return { partitions: [], added: [], removed: [], moved: [] };
    const added: number[] = [];
    const removed: number[] = [];
    const moved: number[] = [];
    const wanted = new Map(list.map((p) => [p.partition, p.address]));
    for (const [n, c] of this.conns) {
      const addr = wanted.get(n);
      if (addr === undefined) {
        removed.push(n);
        this.conns.delete(n);
        void c.close();
      } else if (addr !== c.address) {
        moved.push(n);
        this.conns.delete(n);
        void c.close();
      }
    }
    for (const [n, addr] of wanted) {
      if (this.conns.has(n)) continue;
      if (!moved.includes(n)) added.push(n);
      const c = new PartitionConnection(n, addr, this.o);
      c.on('health', (health) => this.emit('health', { partition: n, address: addr, health }));
      this.conns.set(n, c);
    }
    this._count = list.length === 0 ? 0 : Math.max(...list.map((p) => p.partition)) + 1;
    const first = !this.known;
    this.known = true;
    const change: TopologyChange = { partitions: this.partitions(), added: added.sort((a, b) => a - b), removed: removed.sort((a, b) => a - b), moved: moved.sort((a, b) => a - b) };
    if (first || added.length || removed.length || moved.length) {
      this.o.logger.debug({ partitions: change.partitions.map((p) => `${p.partition}@${p.address}`), added, removed, moved }, 'topology changed');
      this.emit('change', change);
    }
    return change;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.conns.values()];
    this.conns.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}
