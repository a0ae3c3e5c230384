/**
 * `createClient()`: the Hadron client (reference §5, DESIGN.md "Topology-aware clients").
 *
 *   const client = createClient({ url: 'http://127.0.0.1:7000', token });
 *   await client.publish({ source: 'shop', type: 'order.created', data: { id: 42 } });
 *   const sub = client.subscribe({ group: 'billing' }, async (d) => { ... });
 *   await client.close();
 *
 * The client opens the Metadata stream on `url` (any partition's address, or a Service in
 * front of them), keeps one HTTP/2 connection per partition and follows the topology live.
 *
 * Client states (`state` events, `client.state`):
 *   connecting ──first partition list──▶ ready ──metadata stream lost──▶ reconnecting ──list──▶ ready
 *   any ──close()──▶ closed
 * While reconnecting, the last known topology stays in use: publishing and subscriptions go on.
 */
import { EventEmitter } from 'node:events';
import { AsyncQueue, GrpcChannel, HadronError, checkGroupName, silentLogger, type BackoffOptions, type ChannelTls, type Logger } from '@hadron/core';
import { PipelineStatusRequestSchema, PipelineStatusResponseSchema, create, decodePublishResponse, fromBinary, toBinary, METHOD, type WireEvent } from '@hadron/proto';
import type { EventInput } from './event.js';
import { MetadataFollower, grpcMetadataOpener, type MetadataState } from './metadata.js';
import { pipelineProtocol, type PipelineStageOptions, type StageDelivery, type StageHandler } from './pipeline-stage.js';
import { DEFAULT_PUBLISHER_OPTIONS, Publisher, type PublishAck, type PublishOptions, type PublisherOptions } from './publisher.js';
import { streamProtocol, type Delivery, type DeliveryHandler, type SubscribeOptions } from './stream-subscription.js';
import { Subscription } from './subscription.js';
import { Topology, addressUrl, type PartitionStatus, type TopologyChange } from './topology.js';
import { clientTls, type ClientTlsOptions } from './tls.js';
import {
  aggregate,
  decodeDelete,
  decodeReset,
  deleteRequest,
  partitionInfos,
  readEvents,
  resetRequest,
  type GroupAdminOptions,
  type GroupInfo,
  type PartitionCaller,
  type ReadOptions,
  type ReadResult,
  type ResetResult,
  type ResetTarget,
  type StreamInfo,
} from './inspect.js';
import { listPipelines, listTokens, type PipelineSpecInfo, type TokenInfo } from './inspect-specs.js';

export const PUBLISH_METHOD = METHOD.publish;
export const PIPELINE_STATUS_METHOD = METHOD.pipelineStatus;

/** A stage of a pipeline instance; `output` is a done stage's stored output (active instances, at most 64 KiB). */
export interface PipelineStageState {
  name: string;
  state: string;
  attempts: number;
  output?: WireEvent;
  /** Size of the stored output (0: none). */
  outputBytes?: number;
}

/** One partition's answer to `pipelineStatus()`. */
export type PipelinePartitionStatus =
  | {
      partition: number;
      lastOffsetProcessed: number;
      maxParallel: number;
      instances: Array<{ offset: number; rootEventId: string; stages: PipelineStageState[] }>;
      /** Recently completed instances, newest first (bounded; since the partition started). */
      completed: Array<{ offset: number; rootEventId: string; completedAtMs: number; stages: Array<{ name: string; state: string; attempts: number }> }>;
    }
  | { partition: number; error: string; code: string };

export type ClientState = 'connecting' | 'ready' | 'reconnecting' | 'closed';

export interface ClientOptions extends ClientTlsOptions {
  /**
   * Bootstrap address: `http://host:port` or `host:port` (cleartext h2c), or `https://host:port`
   * (TLS; the server certificate is verified — see `ca`/`caFile` — and every partition is then
   * reached over TLS too, never in cleartext), of any partition or a Service in front of them.
   */
  url: string;
  /** JWT of a Hadron Token, sent as `authorization: bearer <token>`. */
  token?: string;
  /**
   * Which partition addresses from Metadata to connect to: `'internal'` (default; in-cluster
   * names) or `'external'` (the addresses a Stream with `spec.external` announces, for clients
   * outside the cluster; `url` is then an external address too, e.g. a node port).
   */
  mode?: 'internal' | 'external';
  /** Structured logger (default: silent). */
  logger?: Logger;
  /** Give up connecting to one address after this long (default 5000 ms). */
  connectTimeoutMs?: number;
  /** How long `publish` and `ready()` wait for the first partition list (default 10000 ms). */
  readyTimeoutMs?: number;
  /** Backoff between reconnects of the Metadata stream, partitions and subscriptions (default 100 ms … 2 s). */
  reconnect?: BackoffOptions;
  /** Largest gRPC message accepted (default 64 MiB). */
  maxMessageBytes?: number;
  /**
   * HTTP/2 PING on every connection this often (default 10000 ms; 0 disables): a partition whose
   * pod vanished without closing its connections (replaced behind the same Service address) is
   * detected and reconnected instead of holding calls until their deadlines.
   */
  keepaliveMs?: number;
  /** A PING not answered within this long closes the connection (default 5000 ms). */
  keepaliveTimeoutMs?: number;
  /** Publishing: batching, window, defaults for fsync/ack/strictPlacement, retries. */
  publish?: Partial<PublisherOptions>;
}

/** Everything observable about a client, as yielded by `client.watch()`. */
export type ClientEvent =
  | { type: 'state'; state: ClientState }
  | { type: 'topology'; change: TopologyChange }
  | { type: 'partition'; status: PartitionStatus };

export class HadronClient extends EventEmitter<{ state: [ClientState]; topology: [TopologyChange]; partition: [PartitionStatus] }> implements AsyncDisposable {
  private _state: ClientState = 'connecting';
  private readonly topology: Topology;
  private readonly follower: MetadataFollower;
  private readonly publisher: Publisher;
  private readonly subscriptions = new Set<Subscription<never, never>>();
  /** The shared wait for the first partition list (see whenKnown). */
  private known: Promise<void> | undefined;
  private readonly auth: Record<string, string>;
  private readonly log: Logger;
  private readonly reconnect: BackoffOptions;
  private bootstrapChannel: GrpcChannel | undefined;
  private readonly scheme: 'http' | 'https';
  private readonly tls: ChannelTls | undefined;
  private closing: Promise<void> | undefined;
  readonly url: string;

  constructor(private readonly opts: ClientOptions) {
    super();
    if (typeof opts.url !== 'string' || opts.url === '') throw new HadronError('INVALID_ARGUMENT', 'createClient: `url` is required (the bootstrap address, e.g. http://127.0.0.1:7000)');
    this.url = addressUrl(opts.url);
    let protocol: string;
    try {
      protocol = new URL(this.url).protocol;
    } catch {
      throw new HadronError('INVALID_ARGUMENT', `createClient: \`url\` ${JSON.stringify(opts.url)} is not a valid URL`);
    }
    if (protocol !== 'http:' && protocol !== 'https:') {
      throw new HadronError('INVALID_ARGUMENT', `createClient: \`url\` ${JSON.stringify(opts.url)} has the unsupported scheme ${protocol.slice(0, -1)}; use http:// or https://`);
    }
    this.scheme = protocol === 'https:' ? 'https' : 'http';
    this.tls = clientTls(opts, this.scheme);
    // The server judges the token; only what cannot travel in an HTTP/2 header is refused here.
    if (opts.token !== undefined && !/^[\x21-\x7e]+$/.test(opts.token.trim())) {
      throw new HadronError('UNAUTHENTICATED', 'createClient: the token must be a non-empty string of visible ASCII characters (a JWT)');
    }
    this.auth = opts.token !== undefined ? { authorization: `bearer ${opts.token.trim()}` } : {};
    this.log = opts.logger ?? silentLogger;
    this.reconnect = { baseMs: 100, maxMs: 2000, ...opts.reconnect };
    const connOpts = {
      connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
      maxMessageBytes: opts.maxMessageBytes ?? 64 * 1024 * 1024,
      reconnect: this.reconnect,
      logger: this.log,
      scheme: this.scheme,
      ...(this.tls ? { tls: this.tls } : {}),
      requireTls: this.scheme === 'https',
      ...(opts.keepaliveMs !== undefined ? { keepaliveMs: opts.keepaliveMs } : {}),
      ...(opts.keepaliveTimeoutMs !== undefined ? { keepaliveTimeoutMs: opts.keepaliveTimeoutMs } : {}),
    };
    this.topology = new Topology(connOpts);
    this.topology.on('change', (c) => this.emit('topology', c));
    this.topology.on('health', (s) => this.emit('partition', s));
    this.follower = new MetadataFollower({
      bootstrap: this.url,
      open: grpcMetadataOpener((address) => this.metadataChannel(address), this.auth, opts.mode ?? 'internal'),
      knownAddresses: () => this.topology.addresses().map((a) => addressUrl(a, this.scheme)),
      onList: (list) => this.topology.apply(this.refuseCleartext(list)),
      backoff: this.reconnect,
      logger: this.log,
    });
    this.follower.on('state', (s) => this.onMetadataState(s));
    const pub: PublisherOptions = { ...DEFAULT_PUBLISHER_OPTIONS, ...opts.publish, retry: { ...DEFAULT_PUBLISHER_OPTIONS.retry, ...opts.publish?.retry } };
    this.publisher = new Publisher(
      {
        partitionCount: () => this.topology.partitionCount,
        health: (p) => this.topology.get(p)?.health,
        whenKnown: (signal) => this.ready({ ...(signal ? { signal } : {}) }),
        send: async (p, req, timeoutMs) => {
          const conn = this.topology.get(p);
          if (!conn) throw new HadronError('UNAVAILABLE', `partition ${p} is not part of the stream (it has ${this.topology.partitionCount} partitions)`);
          const res = decodePublishResponse(await conn.channel.unary(PUBLISH_METHOD, req, { metadata: this.auth, timeoutMs }));
          return { offset: res.offset, partition: p };
        },
        markDown: (p) => this.topology.get(p)?.markDown(),
        describe: (p) => this.topology.get(p)?.address ?? 'not in the topology',
      },
      pub,
    );
    this.follower.start();
  }

  /** The connection for a Metadata stream: a partition's own connection when it is one. */
  private metadataChannel(url: string): GrpcChannel {
    for (const p of this.topology.partitions()) {
      if (addressUrl(p.address, this.scheme) === url) {
        const c = this.topology.get(p.partition);
        if (c) return c.channel;
      }
    }
    if (!this.bootstrapChannel || this.bootstrapChannel.url !== url || this.bootstrapChannel.state === 'closed') {
      void this.bootstrapChannel?.close();
      this.bootstrapChannel = new GrpcChannel(url, {
        connectTimeoutMs: this.opts.connectTimeoutMs ?? 5000,
        ...(this.tls ? { tls: this.tls } : {}),
        requireTls: this.scheme === 'https',
        ...(this.opts.keepaliveMs !== undefined ? { keepaliveMs: this.opts.keepaliveMs } : {}),
        ...(this.opts.keepaliveTimeoutMs !== undefined ? { keepaliveTimeoutMs: this.opts.keepaliveTimeoutMs } : {}),
      });
    }
    return this.bootstrapChannel;
  }

  /**
   * A client bootstrapped over https:// never follows Metadata to a cleartext http:// address
   * (a misconfigured or hostile announcement must not downgrade it): such partitions are left out.
   */
  private refuseCleartext<T extends { address: string }>(list: T[]): T[] {
    if (this.scheme !== 'https') return list;
    return list.filter((p) => {
      if (!addressUrl(p.address, 'https').startsWith('http://')) return true;
      this.log.error({ address: p.address }, 'refusing a partition announced with a cleartext http:// address: this client uses TLS');
      return false;
    });
  }

  private onMetadataState(s: MetadataState): void {
    if (this._state === 'closed') return;
    if (s.kind === 'streaming') this.setState('ready');
    else if (s.kind === 'backoff' && this._state === 'ready') this.setState('reconnecting');
  }

  private setState(s: ClientState): void {
    if (this._state === s) return;
    this.log.debug({ from: this._state, to: s }, 'client state');
    this._state = s;
    this.emit('state', s);
  }

  get state(): ClientState {
    return this._state;
  }

  /**
   * Status of a pipeline on every partition (`stream.Inspection/PipelineStatus`): scan position
   * and the active instances with each stage's state. A partition that cannot answer is
   * reported with its error instead of failing the whole call.
   */
  async pipelineStatus(pipeline: string, opts: { timeoutMs?: number } = {}): Promise<PipelinePartitionStatus[]> {
    await this.ready();
    const req = toBinary(PipelineStatusRequestSchema, create(PipelineStatusRequestSchema, { pipeline }));
    return Promise.all(
      this.topology.partitions().map(async ({ partition }): Promise<PipelinePartitionStatus> => {
        const conn = this.topology.get(partition);
        try {
          if (!conn) throw new HadronError('UNAVAILABLE', `partition ${partition} has no connection`);
          const res = fromBinary(
            PipelineStatusResponseSchema,
            await conn.channel.unary(PIPELINE_STATUS_METHOD, req, { metadata: this.auth, timeoutMs: opts.timeoutMs ?? 5000 }),
          );
          return {
            partition,
            lastOffsetProcessed: Number(res.lastOffsetProcessed),
            maxParallel: res.maxParallel,
            instances: res.instances.map((i) => ({
              offset: Number(i.offset),
              rootEventId: i.rootEventId,
              stages: i.stages.map((st) => ({
                name: st.name,
                state: st.state,
                attempts: st.attempts,
                outputBytes: Number(st.outputBytes),
                ...(st.output ? { output: { id: st.output.id, source: st.output.source, specversion: st.output.specversion, type: st.output.type, optattrs: { ...st.output.optattrs }, data: st.output.data } } : {}),
              })),
            })),
            completed: res.completed.map((i) => ({
              offset: Number(i.offset),
              rootEventId: i.rootEventId,
              completedAtMs: Number(i.completedAtMs),
              stages: i.stages.map((st) => ({ name: st.name, state: st.state, attempts: st.attempts })),
            })),
          };
        } catch (err) {
          return { partition, error: err instanceof Error ? err.message : String(err), code: err instanceof HadronError ? err.code : 'INTERNAL' };
        }
      }),
    );
  }

  /** Calls one unary method on one partition's connection. */
  private callPartition: PartitionCaller = async (partition, method, req, timeoutMs) => {
    const conn = this.topology.get(partition);
    if (!conn) {
      const known = this.topology.partitions().map((p) => p.partition);
      throw new HadronError('NOT_FOUND', `partition ${partition} does not exist (the stream has partitions ${known.join(', ') || 'none'})`);
    }
    return conn.channel.unary(method, req, { metadata: this.auth, timeoutMs });
  };

  /**
   * What the stream holds (\`stream.Inspection/PartitionInfo\` on every partition): per partition
   * offsets, size, segments and retention; per group the lag summed over partitions. A
   * partition that cannot answer is listed in \`failures\`.
   */
  async streamInfo(opts: { timeoutMs?: number } = {}): Promise<StreamInfo> {
    await this.ready();
    return aggregate(await partitionInfos(this.callPartition, this.topology.partitions(), opts.timeoutMs ?? 5000), '');
  }

  /** The Pipelines whose source is this stream, with their stage graph (specs only). */
  async pipelines(opts: { timeoutMs?: number } = {}): Promise<PipelineSpecInfo[]> {
    await this.ready();
    return listPipelines(this.callPartition, this.topology.partitions().map((p) => p.partition), opts.timeoutMs ?? 5000);
  }

  /** The Tokens the cluster knows: names and permissions, never keys or JWTs. Needs \`all: true\`. */
  async tokens(opts: { timeoutMs?: number } = {}): Promise<TokenInfo[]> {
    await this.ready();
    return listTokens(this.callPartition, this.topology.partitions().map((p) => p.partition), opts.timeoutMs ?? 5000);
  }

  /** Consumer groups over all partitions (as in \`streamInfo().groups\`). */
  async groups(opts: { timeoutMs?: number } = {}): Promise<GroupInfo[]> {
    return (await this.streamInfo(opts)).groups;
  }

  /** Reads events of one partition by offset without joining a group (nothing is acked). */
  async read(opts: ReadOptions): Promise<ReadResult> {
    await this.ready();
    return readEvents(this.callPartition, opts);
  }

  /**
   * Moves a durable group's acked offset on every partition (or \`opts.partition\`). Needs a token
   * with \`all: true\`; refused with GROUP_BUSY while members are connected unless \`force\`.
   */
  async resetGroup(group: string, target: ResetTarget, opts: GroupAdminOptions = {}): Promise<ResetResult[]> {
    await this.ready();
    checkGroupName(group);
    const req = resetRequest(group, target, opts.force ?? false);
    const parts = await this.adminPartitions(group, 'reset', opts);
    return Promise.all(parts.map(async (p) => decodeReset(await this.callPartition(p, METHOD.resetGroup, req, opts.timeoutMs ?? 10_000))));
  }

  /** Deletes a group on every partition (or \`opts.partition\`); same permission and refusal as \`resetGroup\`. */
  async deleteGroup(group: string, opts: GroupAdminOptions = {}): Promise<Array<{ partition: number; deleted: boolean; membersDisconnected: number }>> {
    await this.ready();
    checkGroupName(group);
    const req = deleteRequest(group, opts.force ?? false);
    const parts = await this.adminPartitions(group, 'delete', opts).catch((err: unknown) => {
      // Deleting what does not exist is not an error: report it per partition.
      if (err instanceof HadronError && err.code === 'NOT_FOUND' && /^group /.test(err.message)) return [];
      throw err;
    });
    if (parts.length === 0) return this.topology.partitions().filter((p) => opts.partition === undefined || p.partition === opts.partition).map((p) => ({ partition: p.partition, deleted: false, membersDisconnected: 0 }));
    return Promise.all(parts.map(async (p) => decodeDelete(await this.callPartition(p, METHOD.deleteGroup, req, opts.timeoutMs ?? 10_000))));
  }

  /**
   * The partitions a group operation goes to: where the group exists (or \`opts.partition\`).
   * Without \`force\`, refuses before touching any partition when members are connected on any
   * of them, so a refusal never leaves the group moved on some partitions only (each partition
   * still checks again, for members that join meanwhile).
   */
  private async adminPartitions(group: string, verb: string, opts: GroupAdminOptions): Promise<number[]> {
    const all = this.topology.partitions().map((p) => p.partition);
    if (opts.partition !== undefined && !all.includes(opts.partition)) {
      throw new HadronError('NOT_FOUND', `partition ${opts.partition} does not exist (the stream has partitions ${all.join(', ') || 'none'})`);
    }
    const info = await this.streamInfo({ timeoutMs: opts.timeoutMs ?? 10_000 });
    const g = info.groups.find((x) => x.name === group);
    const on = (g?.partitions ?? []).filter((p) => opts.partition === undefined || p.partition === opts.partition);
    if (on.length === 0) throw new HadronError('NOT_FOUND', `group '${group}' does not exist${opts.partition !== undefined ? ` on partition ${opts.partition}` : ''}`);
    const members = on.reduce((n, p) => n + p.members, 0);
    if (members > 0 && !opts.force) {
      throw new HadronError('GROUP_BUSY', `cannot ${verb} group '${group}': ${members} member(s) connected; stop them first or use --force`);
    }
    return on.map((p) => p.partition);
  }

  /** The partitions as last announced, with the health of each connection. */
  partitions(): PartitionStatus[] {
    return this.topology.partitions();
  }

  /** The Stream's partition count (0 while unknown). */
  get partitionCount(): number {
    return this.topology.partitionCount;
  }

  /**
   * Resolves once the partition list is known. Rejects after `timeoutMs` (default
   * `readyTimeoutMs`) with NO_PARTITIONS, at once with the error when the server refused the
   * credentials, or with the signal's reason.
   */
  async ready(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    if (this._state === 'closed') throw new HadronError('UNAVAILABLE', 'client closed');
    if (this.topology.isKnown) return;
    if (isCredentialError(this.follower.lastError)) throw this.follower.lastError;
    const timeoutMs = opts.timeoutMs ?? this.opts.readyTimeoutMs ?? 10_000;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = (): void => settle(() => reject(opts.signal?.reason));
      const timer = setTimeout(() => {
        const last = this.follower.lastError;
        settle(() =>
          reject(
            new HadronError('NO_PARTITIONS', `no partition list from ${this.url} within ${timeoutMs} ms${last instanceof Error ? `: ${last.message}` : ''}`, {
              ...(last !== undefined ? { cause: last } : {}),
            }),
          ),
        );
      }, timeoutMs);
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.whenKnown().then(
        () => settle(resolve),
        (err: unknown) => settle(() => reject(err)),
      );
    });
  }

  /**
   * One set of listeners for every caller waiting for the partition list: many publishes before
   * the client is ready used to add three listeners each (MaxListenersExceededWarning past 10).
   */
  private whenKnown(): Promise<void> {
    this.known ??= new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        this.topology.off('change', onChange);
        this.follower.off('state', onState);
        this.off('state', onClose);
        this.known = undefined;
      };
      const onChange = (): void => (cleanup(), resolve());
      const onState = (s: MetadataState): void => {
        if (s.kind === 'backoff' && isCredentialError(s.error)) {
          cleanup();
          reject(s.error);
        }
      };
      const onClose = (s: ClientState): void => {
        if (s === 'closed') cleanup(), reject(new HadronError('UNAVAILABLE', 'client closed'));
      };
      this.topology.on('change', onChange);
      this.follower.on('state', onState);
      this.on('state', onClose);
    });
    return this.known;
  }

  /**
   * Publishes one event or several. Resolves with where each was stored once acknowledged (with
   * `fsync`, on disk). Events are CloudEvents: `cloudevents` SDK objects, flat attribute
   * objects, or the wire shape (see event.ts). Several events may go to several partitions.
   */
  publish(event: EventInput, opts?: PublishOptions): Promise<PublishAck>;
  publish(events: readonly EventInput[], opts?: PublishOptions): Promise<PublishAck[]>;
  publish(input: EventInput | readonly EventInput[], opts?: PublishOptions): Promise<PublishAck | PublishAck[]> {
    return this.publisher.publish(input as EventInput, opts);
  }

  /** Publishing statistics (batches, events, retries, fail-overs). */
  get publishStats(): Publisher['stats'] {
    return this.publisher.stats;
  }

  /** Resolves once every publish sent so far has been answered. */
  flush(): Promise<void> {
    return this.publisher.flushed();
  }

  /**
   * Joins consumer group `opts.group` on every partition; `handler` gets each delivery. A
   * handler that returns acks the delivery; one that throws nacks it (redelivered later).
   */
  subscribe(opts: SubscribeOptions, handler: DeliveryHandler): Subscription<Delivery, void> {
    if (this._state === 'closed') throw new HadronError('UNAVAILABLE', 'client closed');
    if (!opts.group) throw new HadronError('INVALID_ARGUMENT', 'subscribe: `group` is required');
    checkGroupName(opts.group);
    return this.track(new Subscription(this.engine(), streamProtocol(opts), handler, opts.signal));
  }

  /**
   * Serves stage `stage` of pipeline `pipeline` on every partition: `handler` gets the root event
   * and its dependencies' outputs and returns the stage's output event.
   */
  pipelineStage(pipeline: string, stage: string, handler: StageHandler, opts: PipelineStageOptions = {}): Subscription<StageDelivery, EventInput> {
    if (this._state === 'closed') throw new HadronError('UNAVAILABLE', 'client closed');
    return this.track(new Subscription(this.engine(), pipelineProtocol(pipeline, stage), handler, opts.signal));
  }

  private engine(): ConstructorParameters<typeof Subscription>[0] {
    return { topology: this.topology, metadata: this.auth, logger: this.log, reconnect: this.reconnect };
  }

  private track<D, R>(s: Subscription<D, R>): Subscription<D, R> {
    const any = s as unknown as Subscription<never, never>;
    this.subscriptions.add(any);
    s.once('closed', () => this.subscriptions.delete(any));
    return s;
  }

  /** Every state, topology and partition event from now on, until `signal` aborts or the client closes. */
  watch(signal?: AbortSignal): AsyncIterableIterator<ClientEvent> {
    const q = new AsyncQueue<ClientEvent>();
    const onState = (state: ClientState): void => {
      q.push({ type: 'state', state });
      if (state === 'closed') stop();
    };
    const onTopology = (change: TopologyChange): void => q.push({ type: 'topology', change });
    const onPartition = (status: PartitionStatus): void => q.push({ type: 'partition', status });
    const stop = (): void => {
      this.off('state', onState);
      this.off('topology', onTopology);
      this.off('partition', onPartition);
      q.end();
    };
    this.on('state', onState);
    this.on('topology', onTopology);
    this.on('partition', onPartition);
    if (this._state === 'closed') stop();
    if (signal) {
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
    }
    return q;
  }

  /**
   * Closes everything: new publishes are refused, queued and in-flight ones complete, every
   * subscription closes (handlers in flight finish and are acked), connections close.
   * Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.subscriptions].map((s) => s.close()));
      await this.publisher.close();
      await this.follower.close();
      await this.topology.close();
      await this.bootstrapChannel?.close();
      this.setState('closed');
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Errors waiting cannot fix (credentials, a server certificate that does not verify, mode
 * 'external' against a Stream without external addresses): reported at once.
 */
const isCredentialError = (e: unknown): e is HadronError =>
  e instanceof HadronError && (e.code === 'UNAUTHENTICATED' || e.code === 'PERMISSION_DENIED' || e.code === 'TLS_HANDSHAKE_FAILED' || e.code === 'CONFIG_INVALID');

/** Creates a client and starts following the topology in the background (see `HadronClient`). */
export function createClient(opts: ClientOptions): HadronClient {
  return new HadronClient(opts);
}
