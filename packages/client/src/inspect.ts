/**
 * Inspection and group administration over every partition (`stream.Inspection`,
 * `stream.GroupAdmin`; docs/inspection.md): the shapes `client.streamInfo()`, `client.groups()`,
 * `client.read()`, `client.resetGroup()` and `client.deleteGroup()` return, and their decoding.
 * Offsets and sizes are JS numbers (safe up to 2^53, far beyond any partition's life).
 */
import { HadronError } from '@hadron/core';
import {
  DeleteGroupRequestSchema,
  DeleteGroupResponseSchema,
  PartitionInfoRequestSchema,
  PartitionInfoResponseSchema,
  ReadEventsRequestSchema,
  ReadEventsResponseSchema,
  ResetGroupRequestSchema,
  ResetGroupResponseSchema,
  METHOD,
  create,
  fromBinary,
  toBinary,
  type PartitionInfoResponse,
} from '@hadron/proto';
import type { ReceivedEvent } from './event.js';

/** Calls one unary method on one partition (the client's connection to it). */
export type PartitionCaller = (partition: number, method: string, req: Uint8Array, timeoutMs: number) => Promise<Buffer>;

/** A partition that could not answer: reported instead of failing the whole call. */
export interface PartitionFailure {
  partition: number;
  error: string;
  code: string;
}

export interface RetentionInfo {
  strategy: string;
  retentionSeconds: number;
  maxBytes: number;
  /** Unix ms of the last retention run (undefined = never). */
  lastRunMs: number | undefined;
  /** Offsets the last removing run removed (inclusive), if any since the server started. */
  lastRemoved: { from: number; to: number } | undefined;
}

export interface GroupPartitionInfo {
  partition: number;
  durable: boolean;
  maxBatchSize: number;
  ackedOffset: number;
  lag: number;
  /** Append time (Unix ms) of the oldest unacked event (undefined when lag is 0). */
  oldestUnackedTimeMs: number | undefined;
  members: number;
  /** Last offset of the batch in flight, and its attempt (undefined = nothing in flight). */
  inflight: { lastOffset: number; attempt: number } | undefined;
  redeliveries: number;
}

export interface PartitionDetails {
  partition: number;
  address: string;
  firstOffset: number;
  lastOffset: number;
  /** Events readable (lastOffset - firstOffset + 1). */
  events: number;
  sizeBytes: number;
  segments: number;
  lastEventTimeMs: number | undefined;
  retention: RetentionInfo;
  /** spec.replicationFactor in effect (1 = no replicas). */
  replicationFactor: number;
  /** This partition's replicas as its leader sees them (docs/replication.md). */
  replicas: ReplicaInfo[];
}

/** One replica of a partition, as its leader sees it. */
export interface ReplicaInfo {
  /** The partition (pod) number holding the copy. */
  partition: number;
  durableOffset: number;
  lagEvents: number;
  lagSeconds: number;
  inSync: boolean;
  /** Unix ms of its last fetch (undefined = not since the leader started). */
  lastSeenMs: number | undefined;
}

/** A consumer group over all partitions. */
export interface GroupInfo {
  name: string;
  durable: boolean;
  /** Summed over partitions. */
  lag: number;
  members: number;
  redeliveries: number;
  /** Oldest unacked event over all partitions (Unix ms), if any. */
  oldestUnackedTimeMs: number | undefined;
  partitions: GroupPartitionInfo[];
}

export interface StreamInfo {
  stream: string;
  partitions: PartitionDetails[];
  totals: { events: number; sizeBytes: number; segments: number };
  groups: GroupInfo[];
  /** Partitions that did not answer. */
  failures: PartitionFailure[];
}

export interface ReadOptions {
  partition: number;
  /** First offset (default: the first readable one). */
  offset?: number;
  /** How many events (default 1, at most 1000). */
  count?: number;
  timeoutMs?: number;
}

export interface StoredEvent {
  partition: number;
  offset: number;
  /** Append time, Unix ms. */
  timeMs: number;
  /** Undefined when the stored bytes are not an Event (written before validation). */
  event: ReceivedEvent | undefined;
  undecodable?: Uint8Array;
}

export interface ReadResult {
  partition: number;
  firstOffset: number;
  lastOffset: number;
  events: StoredEvent[];
}

export type ResetTarget = { to: 'beginning' } | { to: 'latest' } | { to: 'offset'; offset: number } | { to: 'time'; time: Date | number };

export interface GroupAdminOptions {
  /** Disconnect connected members first instead of refusing with GROUP_BUSY. */
  force?: boolean;
  /** Only this partition (default: all). */
  partition?: number;
  timeoutMs?: number;
}

export interface ResetResult {
  partition: number;
  previousAckedOffset: number;
  ackedOffset: number;
  membersDisconnected: number;
}

const num = (v: bigint): number => Number(v);
const optTime = (v: bigint): number | undefined => (v === 0n ? undefined : Number(v));

function failure(partition: number, err: unknown): PartitionFailure {
  return { partition, error: err instanceof Error ? err.message : String(err), code: err instanceof HadronError ? err.code : 'INTERNAL' };
}

/** Raw PartitionInfo answers of the given partitions. */
export async function partitionInfos(
  call: PartitionCaller,
  partitions: ReadonlyArray<{ partition: number; address: string }>,
  timeoutMs: number,
): Promise<Array<{ partition: number; address: string; info: PartitionInfoResponse } | PartitionFailure>> {
  const req = toBinary(PartitionInfoRequestSchema, create(PartitionInfoRequestSchema, {}));
  return Promise.all(
    partitions.map(async ({ partition, address }) => {
      try {
        return { partition, address, info: fromBinary(PartitionInfoResponseSchema, await call(partition, METHOD.partitionInfo, req, timeoutMs)) };
      } catch (err) {
        return failure(partition, err);
      }
    }),
  );
}

/** Aggregates per-partition answers into a stream's view. */
export function aggregate(answers: Awaited<ReturnType<typeof partitionInfos>>, stream: string): StreamInfo {
  const partitions: PartitionDetails[] = [];
  const failures: PartitionFailure[] = [];
  const groups = new Map<string, GroupInfo>();
  let name = stream;
  for (const a of answers) {
    if ('error' in a) {
      failures.push(a);
      continue;
    }
    const i = a.info;
    if (i.stream) name = i.stream;
    const first = num(i.firstOffset);
    const last = num(i.lastOffset);
    const r = i.retention;
    partitions.push({
      partition: i.partition,
      address: a.address,
      firstOffset: first,
      lastOffset: last,
      events: Math.max(0, last - first + 1),
      sizeBytes: num(i.sizeBytes),
      segments: i.segments,
      lastEventTimeMs: optTime(i.lastEventTimeMs),
      retention: {
        strategy: r?.strategy ?? '',
        retentionSeconds: num(r?.retentionSeconds ?? 0n),
        maxBytes: num(r?.maxBytes ?? 0n),
        lastRunMs: optTime(r?.lastRunMs ?? 0n),
        lastRemoved: r && r.lastRemovedTo > 0n ? { from: num(r.lastRemovedFrom), to: num(r.lastRemovedTo) } : undefined,
      },
      replicationFactor: Math.max(1, i.replicationFactor),
      replicas: i.replicas.map((x) => ({ partition: x.partition, durableOffset: num(x.durableOffset), lagEvents: num(x.lagEvents), lagSeconds: x.lagSeconds, inSync: x.inSync, lastSeenMs: optTime(x.lastSeenMs) })),
    });
    for (const g of i.groups) {
      let agg = groups.get(g.name);
      if (!agg) groups.set(g.name, (agg = { name: g.name, durable: g.durable, lag: 0, members: 0, redeliveries: 0, oldestUnackedTimeMs: undefined, partitions: [] }));
      const oldest = optTime(g.oldestUnackedTimeMs);
      const p: GroupPartitionInfo = {
        partition: i.partition,
        durable: g.durable,
        maxBatchSize: g.maxBatchSize,
        ackedOffset: num(g.ackedOffset),
        lag: num(g.lag),
        oldestUnackedTimeMs: oldest,
        members: g.members,
        inflight: g.inflightLastOffset > 0n ? { lastOffset: num(g.inflightLastOffset), attempt: g.inflightAttempt } : undefined,
        redeliveries: num(g.redeliveries),
      };
      agg.partitions.push(p);
      agg.lag += p.lag;
      agg.members += p.members;
      agg.redeliveries += p.redeliveries;
      if (oldest !== undefined && (agg.oldestUnackedTimeMs === undefined || oldest < agg.oldestUnackedTimeMs)) agg.oldestUnackedTimeMs = oldest;
    }
  }
  partitions.sort((a, b) => a.partition - b.partition);
  const sorted = [...groups.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const g of sorted) g.partitions.sort((a, b) => a.partition - b.partition);
  return {
    stream: name,
    partitions,
    totals: {
      events: partitions.reduce((n, p) => n + p.events, 0),
      sizeBytes: partitions.reduce((n, p) => n + p.sizeBytes, 0),
      segments: partitions.reduce((n, p) => n + p.segments, 0),
    },
    groups: sorted,
    failures,
  };
}

export async function readEvents(call: PartitionCaller, o: ReadOptions): Promise<ReadResult> {
  const count = o.count ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > 1000) throw new HadronError('INVALID_ARGUMENT', `count must be an integer from 1 to 1000, got ${count}`);
  if (o.offset !== undefined && (!Number.isSafeInteger(o.offset) || o.offset < 0)) throw new HadronError('INVALID_ARGUMENT', `offset must be a non-negative integer, got ${o.offset}`);
  const req = toBinary(ReadEventsRequestSchema, create(ReadEventsRequestSchema, { offset: BigInt(o.offset ?? 0), count }));
  const res = fromBinary(ReadEventsResponseSchema, await call(o.partition, METHOD.readEvents, req, o.timeoutMs ?? 5000));
  return {
    partition: res.partition,
    firstOffset: num(res.firstOffset),
    lastOffset: num(res.lastOffset),
    events: res.events.map((e) => ({
      partition: res.partition,
      offset: num(e.offset),
      timeMs: num(e.timeMs),
      event: e.event
        ? { id: e.event.id, source: e.event.source, specversion: e.event.specversion, type: e.event.type, optattrs: { ...e.event.optattrs }, data: e.event.data, partition: res.partition, offset: num(e.offset) }
        : undefined,
      ...(e.undecodable.length > 0 ? { undecodable: e.undecodable } : {}),
    })),
  };
}

export function resetRequest(group: string, target: ResetTarget, force: boolean): Uint8Array {
  let to;
  switch (target.to) {
    case 'beginning':
      to = { case: 'beginning' as const, value: {} };
      break;
    case 'latest':
      to = { case: 'latest' as const, value: {} };
      break;
    case 'offset':
      if (!Number.isSafeInteger(target.offset) || target.offset < 1) throw new HadronError('INVALID_ARGUMENT', `reset offset must be an integer ≥ 1, got ${target.offset}`);
      to = { case: 'offset' as const, value: BigInt(target.offset) };
      break;
    case 'time': {
      const ms = target.time instanceof Date ? target.time.getTime() : target.time;
      if (!Number.isFinite(ms)) throw new HadronError('INVALID_ARGUMENT', 'reset time is not a valid date');
      to = { case: 'timeMs' as const, value: BigInt(Math.trunc(ms)) };
      break;
    }
  }
  return toBinary(ResetGroupRequestSchema, create(ResetGroupRequestSchema, { group, force, to }));
}

export function decodeReset(buf: Buffer): ResetResult {
  const r = fromBinary(ResetGroupResponseSchema, buf);
  return { partition: r.partition, previousAckedOffset: num(r.previousAckedOffset), ackedOffset: num(r.ackedOffset), membersDisconnected: r.membersDisconnected };
}

export function deleteRequest(group: string, force: boolean): Uint8Array {
  return toBinary(DeleteGroupRequestSchema, create(DeleteGroupRequestSchema, { group, force }));
}

export function decodeDelete(buf: Buffer): { partition: number; deleted: boolean; membersDisconnected: number } {
  const r = fromBinary(DeleteGroupResponseSchema, buf);
  return { partition: r.partition, deleted: r.deleted, membersDisconnected: r.membersDisconnected };
}
