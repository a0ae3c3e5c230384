/**
 * Replication of one pod (docs/replication.md): the `stream.Replication` service on the server
 * port, the leader side of this pod's own partition, one follower per partition whose replica
 * this pod holds, and start-up recovery. Placement follows the Stream spec live: a change of
 * `replicationFactor` or `partitions` starts followers for new replicas (they catch up from the
 * leader) and stops removed ones (their copy stays on disk, see the docs).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { GrpcServer, HadronError, type CallContext, type ControlPlaneView, type Logger, type MethodDef } from '@hadron/core';
import {
  METHOD,
  ReadReplicaRequestSchema,
  ReplicaFetchRequestSchema,
  ReplicaFetchResponseSchema,
  ReplicaStateRequestSchema,
  ReplicaStateResponseSchema,
  fromBinary,
  toBinary,
  type DescMessage,
  type MessageShape,
} from '@hadron/proto';
import type { Registry } from 'prom-client';
import type { FileStore, FileStoreOptions } from '../storage/partition-store.js';
import { ReplicaFollower, REPLICATION_KEY_HEADER, replicaDir } from './follower.js';
import { ReplicationLeader, type ReplicaStatus } from './leader.js';
import { ReplicationMetrics } from './metrics.js';
import { encodeFetchResponse } from './fetch-codec.js';
import { copiesRequired, effectiveFactor, replicaPartitions, replicatedLeaders } from './placement.js';
import { recoverFromReplicas } from './recovery.js';

export interface ReplicationOptions {
  stream: string;
  partition: number;
  dataDir: string;
  store: FileStore;
  /** Undefined: no key configured (replication calls are all refused; r > 1 is a config error). */
  key: string | undefined;
  /** `host:port` (or URL) of partition n's server port. */
  address: (n: number) => string;
  timeoutMs: number;
  recoveryTimeoutMs: number;
  pollMs: number;
  maxMessageBytes: number;
  storeOptions: Omit<FileStoreOptions, 'logger'>;
  logger: Logger;
  registry: Registry;
}

export class Replication {
  readonly metrics: ReplicationMetrics;
  readonly leader: ReplicationLeader;
  private readonly followers = new Map<number, ReplicaFollower>();
  private factor = 1;
  private partitions = 1;
  private server: GrpcServer | undefined;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly keyDigest: Buffer | undefined;

  constructor(private readonly o: ReplicationOptions) {
    this.metrics = new ReplicationMetrics(o.registry);
    this.keyDigest = o.key === undefined ? undefined : digest(o.key);
    this.leader = new ReplicationLeader({
      store: o.store,
      partition: o.partition,
      podName: (n) => `${o.stream}-${n}`,
      timeoutMs: o.timeoutMs,
      logger: o.logger,
      metrics: this.metrics,
    });
    this.metrics.factor.set(1);
  }

  /** Replication factor in effect. */
  get replicationFactor(): number {
    return this.factor;
  }

  /** Refuses r > 1 without a key (CONFIG_INVALID naming the variable). */
  static checkKey(view: ControlPlaneView, stream: string, key: string | undefined): void {
    const s = view.streams.get(stream);
    if (s && effectiveFactor(s.spec) > 1 && key === undefined) {
      throw new HadronError('CONFIG_INVALID', `invalid configuration: Stream ${stream} has replicationFactor ${effectiveFactor(s.spec)} but HADRON_REPLICATION_KEY is not set (the operator fills it from Secret ${stream}-replication; hadron dev mints one)`, {
        context: { variable: 'HADRON_REPLICATION_KEY' },
      });
    }
  }

  /** Serves `stream.Replication` on the server port. */
  async listen(port: number, host: string): Promise<number> {
    this.server = new GrpcServer({ logger: this.o.logger, maxMessageBytes: this.o.maxMessageBytes, methods: this.methods() });
    return this.server.listen(port, host);
  }

  /** Follows the Stream spec: replica set of this leader, followers on this pod. Serialized. */
  apply(view: ControlPlaneView): Promise<void> {
    this.queue = this.queue.then(() => this.reconcile(view)).catch((err: unknown) => this.o.logger.error({ err }, 'replication reconcile failed'));
    return this.queue;
  }

  private async reconcile(view: ControlPlaneView): Promise<void> {
    if (this.closed) return;
    const s = view.streams.get(this.o.stream);
    if (!s) return;
    const r = this.o.key === undefined ? 1 : effectiveFactor(s.spec);
    if (r !== this.factor || s.spec.partitions !== this.partitions) {
      this.o.logger.info({ replicationFactor: r, partitions: s.spec.partitions, replicas: replicaPartitions(this.o.partition, s.spec.partitions, r) }, 'replication placement');
    }
    this.factor = r;
    this.partitions = s.spec.partitions;
    this.metrics.factor.set(r);
    this.leader.setReplicas(replicaPartitions(this.o.partition, s.spec.partitions, r));
    const wanted = new Set(replicatedLeaders(this.o.partition, s.spec.partitions, r));
    for (const [n, f] of this.followers) {
      if (wanted.has(n)) continue;
      this.followers.delete(n);
      await f.stop();
      this.o.logger.info({ leader: n, dir: replicaDir(this.o.dataDir, n) }, 'no longer a replica of this partition; its copy stays on disk, unchanged');
    }
    for (const n of wanted) {
      if (this.followers.has(n)) continue;
      const f = new ReplicaFollower({
        leader: n,
        self: this.o.partition,
        dir: replicaDir(this.o.dataDir, n),
        leaderUrl: url(this.o.address(n)),
        key: this.o.key!,
        logger: this.o.logger,
        store: this.o.storeOptions,
        metrics: this.metrics,
        pollMs: this.o.pollMs,
        maxBytes: 4 * 1024 * 1024,
        fetchTimeoutMs: Math.max(1000, this.o.timeoutMs),
        maxMessageBytes: this.o.maxMessageBytes,
      });
      this.followers.set(n, f);
      await f.start();
    }
  }

  /** Takes back from the replicas what they hold beyond this log, then lets replicas fetch. */
  async recover(): Promise<void> {
    await this.queue;
    const replicas = [...this.leader.replicaSet];
    if (replicas.length && this.o.key !== undefined) {
      const r = await recoverFromReplicas({
        store: this.o.store,
        partition: this.o.partition,
        replicas,
        url: (n) => url(this.o.address(n)),
        podName: (n) => `${this.o.stream}-${n}`,
        key: this.o.key,
        timeoutMs: this.o.recoveryTimeoutMs,
        maxMessageBytes: this.o.maxMessageBytes,
        logger: this.o.logger,
      });
      this.metrics.recoveredRecords.set(r.tookBack);
      this.o.logger.info({ tookBack: r.tookBack, metaTaken: r.metaTaken, from: r.from, answered: r.answered, lastOffset: this.o.store.lastOffset }, 'replication recovery done');
    }
    this.leader.serve();
  }

  /**
   * Waits until the copies `ack` asks for hold `last` (a no-op with r = 1). `signal` may be a
   * function: it is then called only when there is something to wait for (the gRPC server
   * creates a call's AbortSignal on first use, issue 11).
   */
  waitCopies(last: number, ack: number, signal: AbortSignal | (() => AbortSignal)): Promise<void> {
    if (this.factor <= 1) return Promise.resolve();
    return this.leader.waitCopies(last, copiesRequired(ack, this.factor) - 1, ack, typeof signal === 'function' ? signal() : signal);
  }

  replicaStatus(): Promise<ReplicaStatus[]> {
    return this.leader.status();
  }

  private methods(): Record<string, MethodDef> {
    const unary = <I extends DescMessage, O extends DescMessage>(
      inS: I,
      outS: O,
      fn: (req: MessageShape<I>, ctx: CallContext) => Promise<MessageShape<O>>,
      encode: (res: MessageShape<O>) => Uint8Array = (res) => toBinary(outS, res),
    ): MethodDef => ({
      kind: 'unary',
      handler: async (buf, ctx) => {
        this.authenticate(ctx);
        let req: MessageShape<I>;
        try {
          req = fromBinary(inS, buf);
        } catch (err) {
          throw new HadronError('MALFORMED_MESSAGE', `invalid ${inS.typeName}: ${(err as Error).message}`);
        }
        return encode(await fn(req, ctx));
      },
    });
    return {
      [METHOD.replicaFetch]: unary(
        ReplicaFetchRequestSchema,
        ReplicaFetchResponseSchema,
        (req, ctx) => {
          if (req.partition !== this.o.partition) throw new HadronError('NOT_FOUND', `this pod leads partition ${this.o.partition}, not ${req.partition}`);
          return this.leader.fetch(req, ctx.signal);
        },
        encodeFetchResponse,
      ),
      [METHOD.replicaState]: unary(ReplicaStateRequestSchema, ReplicaStateResponseSchema, (req) => this.follower(req.partition).state()),
      [METHOD.readReplica]: unary(ReadReplicaRequestSchema, ReplicaFetchResponseSchema, (req) => this.follower(req.partition).read(req)),
    };
  }

  private follower(n: number): ReplicaFollower {
    const f = this.followers.get(n);
    if (!f) throw new HadronError('NOT_FOUND', `this pod (partition ${this.o.partition}) holds no replica of partition ${n}`);
    return f;
  }

  /** Constant-time comparison of the presented key with ours; client tokens never pass. */
  private authenticate(ctx: CallContext): void {
    const got = ctx.metadata[REPLICATION_KEY_HEADER];
    const presented = typeof got === 'string' ? got : undefined;
    if (this.keyDigest === undefined || presented === undefined || !timingSafeEqual(digest(presented), this.keyDigest)) {
      throw new HadronError('UNAUTHENTICATED', `replication calls need this Stream's replication key in metadata ${REPLICATION_KEY_HEADER}${this.keyDigest === undefined ? ' (this pod has none: HADRON_REPLICATION_KEY is not set)' : ''}; client tokens are not accepted on the server port`);
    }
  }

  async close(graceMs: number): Promise<void> {
    this.closed = true;
    this.leader.close();
    await this.queue;
    await this.server?.close(graceMs).catch((err: unknown) => this.o.logger.error({ err }, 'closing replication server'));
    await Promise.all([...this.followers.values()].map((f) => f.stop().catch((err: unknown) => this.o.logger.error({ err, leader: f.leader }, 'closing replica'))));
    this.followers.clear();
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function url(address: string): string {
  // The replication port is h2c: the advertise template may carry the client port's scheme.
  return `http://${address.replace(/^[a-z]+:\/\//, '')}`;
}
