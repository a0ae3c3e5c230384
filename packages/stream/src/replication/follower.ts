/**
 * The replica side for one leader partition held on this pod: a loop that pulls the leader's
 * records after the ones held (`Fetch`), verifies each record's checksum, writes and fsyncs them
 * into `<dataDir>/replicas/<partition>/` (the same storage engine as a partition) and applies
 * the leader's durable-state changes. The next fetch reports what is now durable.
 *
 * A copy the leader says does not continue its log (`diverged`) is moved aside to
 * `replicas/<partition>.diverged-<time>` — never deleted, it may hold the only copy of something
 * — and copying starts again from the leader's first offset.
 *
 * States: new → running (`start`) → stopped (`stop`, idempotent).
 */
import path from 'node:path';
import { GrpcChannel, HadronError, exponentialDelay, type Logger } from '@hadron/core';
import {
  METHOD,
  ReadReplicaRequestSchema,
  ReplicaFetchRequestSchema,
  ReplicaFetchResponseSchema,
  ReplicaStateResponseSchema,
  create,
  fromBinary,
  toBinary,
  type ReadReplicaRequest,
  type ReplicaFetchResponse,
  type ReplicaStateResponse,
} from '@hadron/proto';
import { FileStore, type FileStoreOptions, type MetaOp, type StoredEvent } from '../storage/partition-store.js';
import { recordChecksum } from '../storage/layout.js';
import { nodeStorageFs } from '../storage/file-io.js';
import type { ReplicationMetrics } from './metrics.js';

export const REPLICATION_KEY_HEADER = 'hadron-replication-key';

export interface FollowerOptions {
  /** The leader's partition. */
  leader: number;
  /** This pod's partition number. */
  self: number;
  /** `<dataDir>/replicas/<leader>`. */
  dir: string;
  /** `http://host:port` of the leader's server port. */
  leaderUrl: string;
  key: string;
  logger: Logger;
  store: Omit<FileStoreOptions, 'logger'>;
  metrics: ReplicationMetrics;
  /** Long-poll time of one fetch (ms). */
  pollMs: number;
  /** Most payload bytes per fetch. */
  maxBytes: number;
  /** A fetch that has not answered this long after its long poll is abandoned (a dead connection). */
  fetchTimeoutMs: number;
  maxMessageBytes: number;
}

export class ReplicaFollower {
  private store: FileStore | undefined;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private channel: GrpcChannel;
  private metaEpoch = '';
  private metaSeq = 0n;
  private lastChecksum = 0;
  /** Serializes writes of the copy with reads by a recovering leader. */
  private readonly log: Logger;

  constructor(private readonly o: FollowerOptions) {
    this.log = o.logger.child({ replicaOf: o.leader });
    this.channel = this.newChannel();
  }

  private newChannel(): GrpcChannel {
    return new GrpcChannel(this.o.leaderUrl, { maxMessageBytes: this.o.maxMessageBytes, connectTimeoutMs: 2000 });
  }

  get leader(): number {
    return this.o.leader;
  }

  async start(): Promise<void> {
    if (this.running || this.abort.signal.aborted) return;
    await this.open();
    this.running = this.loop();
  }

  private async open(): Promise<void> {
    this.store = await FileStore.open(this.o.dir, { ...this.o.store, logger: this.log });
    this.lastChecksum = await checksumAt(this.store, this.store.lastOffset);
    this.o.metrics.copiedOffset.set({ leader: String(this.o.leader) }, this.store.lastOffset);
    this.log.info({ dir: this.o.dir, firstOffset: this.store.firstOffset, lastOffset: this.store.lastOffset, leaderUrl: this.o.leaderUrl }, 'replica copy opened');
  }

  private async loop(): Promise<void> {
    let failures = 0;
    let lastError = '';
    while (!this.abort.signal.aborted) {
      try {
        const res = await this.fetchOnce();
        if (failures) this.log.info({ after: failures }, 'replication from the leader resumed');
        failures = 0;
        lastError = '';
        if (res.diverged) await this.setAside(res);
      } catch (err) {
        if (this.abort.signal.aborted) break;
        failures++;
        const msg = err instanceof Error ? err.message : String(err);
        if (msg !== lastError) this.log.warn({ err: msg }, 'replication fetch failed; retrying');
        lastError = msg;
        // The connection may be dead without knowing it (a cut or black-holed path): start afresh.
        const old = this.channel;
        this.channel = this.newChannel();
        void old.close();
        await sleep(exponentialDelay(failures, { baseMs: 50, maxMs: 1000 }), this.abort.signal);
      }
    }
  }

  private async fetchOnce(): Promise<ReplicaFetchResponse> {
    const store = this.store!;
    const req = create(ReplicaFetchRequestSchema, {
      partition: this.o.leader,
      replica: this.o.self,
      afterOffset: BigInt(store.lastOffset),
      afterChecksum: this.lastChecksum,
      maxBytes: this.o.maxBytes,
      waitMs: this.o.pollMs,
      metaEpoch: this.metaEpoch,
      metaSeq: this.metaSeq,
      verbatim: true,
    });
    const buf = await this.channel.unary(METHOD.replicaFetch, toBinary(ReplicaFetchRequestSchema, req), {
      metadata: { [REPLICATION_KEY_HEADER]: this.o.key },
      timeoutMs: this.o.pollMs + this.o.fetchTimeoutMs,
      signal: this.abort.signal,
    });
    const res = fromBinary(ReplicaFetchResponseSchema, buf);
    if (res.diverged) return res;
    if (res.frames.length) {
      // The leader's stored frames (a leader that knows `verbatim`): each frame's CRC is checked
      // and the bytes written unchanged; a bad frame throws naming its offset, nothing stored.
      const frames = Buffer.from(res.frames.buffer, res.frames.byteOffset, res.frames.byteLength);
      // Always fsynced: the next fetch reports these offsets durable, and acks wait for that.
      const r = await store.appendReplicatedFrames(frames, { fsync: true, source: `the leader of partition ${this.o.leader}` });
      this.lastChecksum = r.lastChecksum;
      this.o.metrics.copiedOffset.set({ leader: String(this.o.leader) }, r.last);
    } else if (res.records.length) {
      // An older leader: one message per record.
      const records: StoredEvent[] = res.records.map((r) => {
        const offset = Number(r.offset);
        const timestamp = Number(r.timestampMs);
        const payload = Buffer.from(r.payload);
        if (recordChecksum(offset, timestamp, payload) !== r.checksum) {
          throw new HadronError('DATA_CORRUPTION', `record ${offset} from the leader of partition ${this.o.leader} failed its checksum; not stored`);
        }
        return { offset, timestamp, payload };
      });
      // Always fsynced: the next fetch reports these offsets durable, and acks wait for that.
      await store.appendReplicated(records, { fsync: true });
      const last = records[records.length - 1]!;
      this.lastChecksum = res.records[res.records.length - 1]!.checksum;
      this.o.metrics.copiedOffset.set({ leader: String(this.o.leader) }, last.offset);
    }
    if (res.metaSnapshot || res.meta.length) {
      const ops = res.meta.map((m): MetaOp => (m.delete ? { kind: 'del', key: m.key } : { kind: 'put', key: m.key, value: Buffer.from(m.value) }));
      await store.applyReplicatedMeta(ops, { snapshot: res.metaSnapshot });
      this.metaEpoch = res.metaEpoch;
      this.metaSeq = res.metaSeq;
    }
    return res;
  }

  /** Moves a copy that does not continue the leader's log aside and starts a fresh one. */
  private async setAside(res: ReplicaFetchResponse): Promise<void> {
    const store = this.store!;
    const aside = `${this.o.dir}.diverged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    this.log.error(
      { copyFirst: store.firstOffset, copyLast: store.lastOffset, leaderFirst: Number(res.leaderFirstOffset), leaderLast: Number(res.leaderLastOffset), movedTo: aside },
      'this replica copy does not continue the leader\'s log (the leader lost events it had not taken back); moving it aside and copying again',
    );
    this.o.metrics.divergedCopies.inc({ leader: String(this.o.leader) });
    await store.close();
    this.store = undefined;
    // Through the storage layer like every other name change, and made durable.
    const sfs = this.o.store.fs ?? nodeStorageFs;
    await sfs.rename(this.o.dir, aside);
    await sfs.fsyncDir(path.dirname(this.o.dir));
    this.metaEpoch = '';
    this.metaSeq = 0n;
    await this.open();
  }

  /** What this copy holds (for a starting leader). */
  async state(): Promise<ReplicaStateResponse> {
    const store = this.requireStore();
    return create(ReplicaStateResponseSchema, {
      firstOffset: BigInt(store.firstOffset),
      lastOffset: BigInt(store.lastOffset),
      lastChecksum: await checksumAt(store, store.lastOffset),
      metaKeys: store.metaSnapshot().length,
    });
  }

  /** Records (and optionally the durable state) of this copy, for a recovering leader. */
  async read(req: ReadReplicaRequest): Promise<ReplicaFetchResponse> {
    const store = this.requireStore();
    const records = await store.readFrom(Number(req.fromOffset), { maxEvents: 10_000, maxBytes: Math.max(1, req.maxBytes) });
    return create(ReplicaFetchResponseSchema, {
      leaderFirstOffset: BigInt(store.firstOffset),
      leaderLastOffset: BigInt(store.lastOffset),
      records: records.map((r) => ({ offset: BigInt(r.offset), timestampMs: BigInt(r.timestamp), payload: r.payload, checksum: recordChecksum(r.offset, r.timestamp, r.payload) })),
      metaSnapshot: req.withMeta,
      meta: req.withMeta ? store.metaSnapshot().map(([key, value]) => ({ key, value })) : [],
    });
  }

  private requireStore(): FileStore {
    if (!this.store) throw new HadronError('UNAVAILABLE', `the replica of partition ${this.o.leader} on this pod is not open`);
    return this.store;
  }

  /** Stops copying and closes the copy (its files stay). Idempotent. */
  async stop(): Promise<void> {
    this.abort.abort(new HadronError('UNAVAILABLE', 'replica stopping'));
    await this.running;
    await this.channel.close();
    await this.store?.close();
    this.store = undefined;
  }
}

/** The CRC of the stored record at `offset` (0 when there is none). */
export async function checksumAt(store: FileStore, offset: number): Promise<number> {
  if (offset < 1 || offset < store.firstOffset || offset > store.lastOffset) return 0;
  const [r] = await store.readFrom(offset, { maxEvents: 1 });
  return r && r.offset === offset ? recordChecksum(r.offset, r.timestamp, r.payload) : 0;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export const replicaDir = (dataDir: string, leader: number): string => path.join(dataDir, 'replicas', String(leader));
