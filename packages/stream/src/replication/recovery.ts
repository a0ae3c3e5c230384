/**
 * A starting leader's recovery from its replicas, before it serves anything
 * (docs/replication.md, "Recovery"):
 *
 * 1. Ask every replica what it holds of this partition (`ReplicaState`), retrying until all
 *    answered or `timeoutMs` passed.
 * 2. If a replica holds records beyond this log's end — the volume was lost, or a power loss
 *    took the unsynced tail — copy them back from the replica holding the most, after checking
 *    that its record at this log's last offset is the same one. No offset then names two
 *    different events: the leader continues after what its replicas hold.
 * 3. If this volume was empty (no events and no durable state), also take the replica's durable
 *    state (groups and their offsets, pipeline instances and outputs, retention start).
 *
 * Nobody answering within the timeout: a volume that held something starts with what it has; an
 * empty volume starts empty (first start of a Stream — or a lost volume while every replica is
 * down too, which is logged as such).
 */
import { GrpcChannel, HadronError, type Logger } from '@hadron/core';
import {
  METHOD,
  ReadReplicaRequestSchema,
  ReplicaFetchResponseSchema,
  ReplicaStateRequestSchema,
  ReplicaStateResponseSchema,
  create,
  fromBinary,
  toBinary,
  type ReplicaStateResponse,
} from '@hadron/proto';
import type { FileStore, MetaOp, StoredEvent } from '../storage/partition-store.js';
import { recordChecksum } from '../storage/layout.js';
import { REPLICATION_KEY_HEADER, checksumAt } from './follower.js';

export interface RecoveryOptions {
  store: FileStore;
  partition: number;
  replicas: number[];
  url: (n: number) => string;
  podName: (n: number) => string;
  key: string;
  timeoutMs: number;
  maxMessageBytes: number;
  logger: Logger;
  signal?: AbortSignal;
}

export interface RecoveryResult {
  tookBack: number;
  metaTaken: boolean;
  from: number | undefined;
  answered: number[];
}

export async function recoverFromReplicas(o: RecoveryOptions): Promise<RecoveryResult> {
  const store = o.store;
  const fresh = store.lastOffset === 0 && store.metaSnapshot().length === 0;
  const channels = new Map(o.replicas.map((n) => [n, new GrpcChannel(o.url(n), { maxMessageBytes: o.maxMessageBytes, connectTimeoutMs: 1000 })]));
  const metadata = { [REPLICATION_KEY_HEADER]: o.key };
  try {
    const deadline = Date.now() + o.timeoutMs;
    const states = new Map<number, ReplicaStateResponse>();
    const ask = async (n: number): Promise<void> => {
      for (let attempt = 0; Date.now() < deadline && !o.signal?.aborted; attempt++) {
        try {
          const buf = await channels.get(n)!.unary(METHOD.replicaState, toBinary(ReplicaStateRequestSchema, create(ReplicaStateRequestSchema, { partition: o.partition })), {
            metadata,
            timeoutMs: Math.max(100, Math.min(2000, deadline - Date.now())),
          });
          states.set(n, fromBinary(ReplicaStateResponseSchema, buf));
          return;
        } catch (err) {
          if (err instanceof HadronError && err.code === 'UNAUTHENTICATED') throw err;
          await new Promise((r) => setTimeout(r, Math.min(200 * (attempt + 1), 1000)));
        }
      }
    };
    await Promise.all(o.replicas.map(ask));
    const answered = [...states.keys()];
    const missing = o.replicas.filter((n) => !states.has(n)).map(o.podName);
    if (missing.length) {
      o.logger[fresh ? 'error' : 'warn'](
        { missing, fresh },
        fresh
          ? 'replicas did not answer: starting with an empty volume (right for a new Stream; if this volume was lost, its events come back only from a replica that answers — restart this pod once they are up)'
          : 'some replicas did not answer; recovering from the others',
      );
    }
    const ordered = [...states].sort((a, b) => Number(b[1].lastOffset - a[1].lastOffset));
    let result: RecoveryResult = { tookBack: 0, metaTaken: false, from: undefined, answered };
    for (const [n, st] of ordered) {
      if (Number(st.lastOffset) <= store.lastOffset && !(fresh && st.metaKeys > 0)) break;
      try {
        result = { ...(await copyBack(o, channels.get(n)!, metadata, fresh)), answered, from: n };
        break;
      } catch (err) {
        o.logger.error({ err, replica: n, replicaPod: o.podName(n) }, 'could not take records back from this replica; trying the next');
      }
    }
    return result;
  } finally {
    await Promise.all([...channels.values()].map((c) => c.close()));
  }
}

async function copyBack(o: RecoveryOptions, ch: GrpcChannel, metadata: Record<string, string>, fresh: boolean): Promise<Omit<RecoveryResult, 'answered' | 'from'>> {
  const store = o.store;
  const startLast = store.lastOffset;
  // The replica's record at our last offset must be ours, or its copy is not a continuation.
  let from = startLast === 0 ? 1 : startLast;
  const ours = await checksumAt(store, startLast);
  let checked = startLast === 0 || startLast < store.firstOffset;
  let tookBack = 0;
  for (;;) {
    const buf = await ch.unary(METHOD.readReplica, toBinary(ReadReplicaRequestSchema, create(ReadReplicaRequestSchema, { partition: o.partition, fromOffset: BigInt(from), maxBytes: 4 * 1024 * 1024 })), { metadata, timeoutMs: 30_000 });
    const res = fromBinary(ReplicaFetchResponseSchema, buf);
    let records: StoredEvent[] = res.records.map((r) => ({ offset: Number(r.offset), timestamp: Number(r.timestampMs), payload: Buffer.from(r.payload) }));
    res.records.forEach((r, i) => {
      const e = records[i]!;
      if (recordChecksum(e.offset, e.timestamp, e.payload) !== r.checksum) throw new HadronError('DATA_CORRUPTION', `record ${e.offset} read back from a replica failed its checksum`);
    });
    if (!checked) {
      const first = res.records[0];
      if (!first || Number(first.offset) !== startLast || first.checksum !== ours) {
        throw new HadronError('DATA_CORRUPTION', `the replica's record at offset ${startLast} is not this partition's; its copy does not continue this log`);
      }
      checked = true;
      records = records.slice(1);
    }
    if (records.length === 0) break;
    await store.appendReplicated(records, { fsync: true });
    tookBack += records.length;
    from = records[records.length - 1]!.offset + 1;
    if (from > Number(res.leaderLastOffset)) break;
  }
  let metaTaken = false;
  if (fresh) {
    const buf = await ch.unary(METHOD.readReplica, toBinary(ReadReplicaRequestSchema, create(ReadReplicaRequestSchema, { partition: o.partition, fromOffset: BigInt(store.lastOffset + 1), maxBytes: 1, withMeta: true })), { metadata, timeoutMs: 30_000 });
    const res = fromBinary(ReplicaFetchResponseSchema, buf);
    const ops = res.meta.map((m): MetaOp => ({ kind: 'put', key: m.key, value: Buffer.from(m.value) }));
    if (ops.length) await store.applyReplicatedMeta(ops, { snapshot: true });
    metaTaken = ops.length > 0;
  }
  if (tookBack || metaTaken) o.logger.warn({ tookBack, metaTaken, from: startLast + 1, to: store.lastOffset }, 'took records and state back from a replica');
  return { tookBack, metaTaken };
}
