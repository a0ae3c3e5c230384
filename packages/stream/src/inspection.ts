/**
 * `stream.Inspection` (PartitionInfo, ReadEvents, ListPipelines, ListTokens) and
 * `stream.GroupAdmin` (ResetGroup, DeleteGroup) of one partition (issue 10; docs/inspection.md).
 * Inspection is read-only and needs `sub` on the stream, except ListTokens, which names every
 * credential of the namespace and so needs `all: true` (it returns names and permissions only,
 * never keys or JWTs); group administration moves or removes stored state and needs a token with
 * `all: true` (no narrower permission exists in the Token spec, and a reset can skip or replay
 * events for every subscriber of the group).
 */
import { HadronError, type CallContext, type ControlPlaneView, type MethodDef, type PubSub } from '@hadron/core';
import {
  DeleteGroupRequestSchema,
  DeleteGroupResponseSchema,
  EventSchema,
  ListPipelinesResponseSchema,
  ListTokensResponseSchema,
  PartitionInfoResponseSchema,
  ReadEventsRequestSchema,
  ReadEventsResponseSchema,
  ResetGroupRequestSchema,
  ResetGroupResponseSchema,
  METHOD,
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type Event,
  type MessageShape,
} from '@hadron/proto';
import type { Authenticator } from './auth.js';
import type { StageStatus } from './pipelines/controller.js';
import type { Retention } from './retention.js';
import type { PartitionStore } from './storage/partition-store.js';
import type { Subscriptions } from './subscriptions.js';

/** Largest stage output PipelineStatus returns (bigger ones: only their size). */
export const MAX_STATUS_OUTPUT_BYTES = 64 * 1024;

/** A stage's status for PipelineStatus, with its stored output decoded when small enough. */
export function stageStatusWithOutput(s: StageStatus): { name: string; state: string; attempts: number; output?: Event; outputBytes: bigint } {
  const base = { name: s.name, state: s.state, attempts: s.attempts, outputBytes: BigInt(s.output?.length ?? 0) };
  if (!s.output || s.output.length > MAX_STATUS_OUTPUT_BYTES) return base;
  try {
    return { ...base, output: fromBinary(EventSchema, s.output) };
  } catch {
    // Checked when acked, so this cannot happen; a status call must not fail for it.
    return base;
  }
}

/** Most events one ReadEvents call returns. */
export const MAX_READ_EVENTS = 1000;
/** Most event bytes one ReadEvents call returns (well under the default message limit). */
export const MAX_READ_BYTES = 4 * 1024 * 1024;

export interface InspectionDeps {
  stream: string;
  partition: number;
  store: PartitionStore;
  subscriptions: Subscriptions;
  retention: Retention;
  auth: Authenticator;
  /** The control-plane view (Pipelines and Tokens for ListPipelines / ListTokens). */
  view: () => ControlPlaneView;
  /** This partition's replicas as the leader sees them (docs/replication.md). */
  replication?: { replicationFactor: number; replicaStatus(): Promise<Array<{ partition: number; durableOffset: number; lagEvents: number; lagSeconds: number; inSync: boolean; lastSeenMs: number }>> };
}

export function inspectionMethods(d: InspectionDeps): Record<string, MethodDef> {
  return {
    [METHOD.partitionInfo]: { kind: 'unary', handler: (_req, ctx) => partitionInfo(d, ctx) },
    [METHOD.readEvents]: { kind: 'unary', handler: (req, ctx) => readEvents(d, req, ctx) },
    [METHOD.listPipelines]: { kind: 'unary', handler: (_req, ctx) => listPipelines(d, ctx) },
    [METHOD.listTokens]: { kind: 'unary', handler: (_req, ctx) => listTokens(d, ctx) },
    [METHOD.resetGroup]: { kind: 'unary', handler: (req, ctx) => resetGroup(d, req, ctx) },
    [METHOD.deleteGroup]: { kind: 'unary', handler: (req, ctx) => deleteGroup(d, req, ctx) },
  };
}

function decode<D extends DescMessage>(schema: D, req: Buffer): MessageShape<D> {
  try {
    return fromBinary(schema, req);
  } catch (err) {
    throw new HadronError('MALFORMED_MESSAGE', `invalid ${schema.name}: ${(err as Error).message}`);
  }
}

function requireAdmin(d: InspectionDeps, ctx: CallContext): void {
  const p = d.auth.authenticate(ctx.metadata.authorization);
  if (!p.token.spec.all) {
    throw new HadronError('PERMISSION_DENIED', `unauthorized to perform the requested action: token '${p.name}' may not administer groups of stream '${d.stream}' (needs all: true)`, {
      context: { token: p.name, stream: d.stream },
    });
  }
}

async function timeOf(store: PartitionStore, offset: number): Promise<number> {
  if (offset < store.firstOffset || offset > store.lastOffset) return 0;
  const [ev] = await store.readFrom(offset, { maxEvents: 1, maxBytes: 1 });
  return ev?.offset === offset ? ev.timestamp : 0;
}

async function partitionInfo(d: InspectionDeps, ctx: CallContext): Promise<Uint8Array> {
  d.auth.authorize(d.auth.authenticate(ctx.metadata.authorization), 'sub', d.stream);
  const store = d.store;
  const last = store.lastOffset;
  const r = d.retention.describe();
  const removed = d.retention.lastRemoved;
  const groups = await Promise.all(
    d.subscriptions.describe().map(async (g) => {
      const lag = Math.max(0, last - g.offset);
      return {
        name: g.name,
        durable: g.durable,
        maxBatchSize: g.maxBatchSize,
        ackedOffset: BigInt(g.offset),
        lag: BigInt(lag),
        oldestUnackedTimeMs: BigInt(lag > 0 ? await timeOf(store, Math.max(g.offset + 1, store.firstOffset)) : 0),
        members: g.members,
        inflightLastOffset: BigInt(g.inflightLast),
        inflightAttempt: g.inflightAttempt,
        redeliveries: BigInt(g.redeliveries),
      };
    }),
  );
  return toBinary(
    PartitionInfoResponseSchema,
    create(PartitionInfoResponseSchema, {
      partition: d.partition,
      stream: d.stream,
      firstOffset: BigInt(store.firstOffset),
      lastOffset: BigInt(last),
      sizeBytes: BigInt(store.sizeBytes),
      segments: store.segmentCount,
      lastEventTimeMs: BigInt(await timeOf(store, last)),
      retention: {
        strategy: r.strategy,
        retentionSeconds: BigInt(r.retentionSeconds),
        maxBytes: BigInt(r.maxBytes),
        lastRunMs: BigInt(r.lastRunMs ?? 0),
        lastRemovedFrom: BigInt(removed?.from ?? 0),
        lastRemovedTo: BigInt(removed?.to ?? 0),
      },
      groups,
      replicationFactor: d.replication?.replicationFactor ?? 1,
      replicas: (await d.replication?.replicaStatus())?.map((x) => ({
        partition: x.partition,
        durableOffset: BigInt(x.durableOffset),
        lagEvents: BigInt(x.lagEvents),
        lagSeconds: x.lagSeconds,
        inSync: x.inSync,
        lastSeenMs: BigInt(x.lastSeenMs),
      })) ?? [],
    }),
  );
}

async function readEvents(d: InspectionDeps, req: Buffer, ctx: CallContext): Promise<Uint8Array> {
  d.auth.authorize(d.auth.authenticate(ctx.metadata.authorization), 'sub', d.stream);
  const r = decode(ReadEventsRequestSchema, req);
  const count = r.count === 0 ? 1 : r.count;
  if (count > MAX_READ_EVENTS) throw new HadronError('INVALID_ARGUMENT', `count ${count} is too large: at most ${MAX_READ_EVENTS} events per read`);
  const offset = Number(r.offset);
  if (!Number.isSafeInteger(offset)) throw new HadronError('INVALID_ARGUMENT', `offset ${r.offset} is out of range`);
  const stored = await d.store.readFrom(Math.max(offset, 1), { maxEvents: count, maxBytes: MAX_READ_BYTES });
  return toBinary(
    ReadEventsResponseSchema,
    create(ReadEventsResponseSchema, {
      partition: d.partition,
      firstOffset: BigInt(d.store.firstOffset),
      lastOffset: BigInt(d.store.lastOffset),
      events: stored.map((e) => {
        let event: Event | undefined;
        try {
          event = fromBinary(EventSchema, e.payload);
        } catch {
          // Stored before publish-time validation: hand back the bytes rather than fail the read.
        }
        return event ? { offset: BigInt(e.offset), timeMs: BigInt(e.timestamp), event } : { offset: BigInt(e.offset), timeMs: BigInt(e.timestamp), undecodable: e.payload };
      }),
    }),
  );
}

async function resetGroup(d: InspectionDeps, req: Buffer, ctx: CallContext): Promise<Uint8Array> {
  requireAdmin(d, ctx);
  const r = decode(ResetGroupRequestSchema, req);
  const to = r.to;
  if (to.case === undefined) throw new HadronError('INVALID_ARGUMENT', 'reset target missing: give beginning, latest, offset or time_ms');
  const target = async (store: PartitionStore): Promise<number> => {
    switch (to.case) {
      case 'beginning':
        return store.firstOffset - 1;
      case 'latest':
        return store.lastOffset;
      case 'offset':
        if (to.value < 1n) throw new HadronError('INVALID_ARGUMENT', 'reset offset must be at least 1 (offsets start at 1)');
        return Number(to.value) - 1;
      case 'timeMs':
        return store.lastOffsetBefore(Number(to.value));
    }
  };
  const res = await d.subscriptions.resetGroup(r.group, target, { force: r.force });
  return toBinary(
    ResetGroupResponseSchema,
    create(ResetGroupResponseSchema, {
      partition: d.partition,
      previousAckedOffset: BigInt(res.previous),
      ackedOffset: BigInt(res.offset),
      membersDisconnected: res.disconnected,
    }),
  );
}

async function deleteGroup(d: InspectionDeps, req: Buffer, ctx: CallContext): Promise<Uint8Array> {
  requireAdmin(d, ctx);
  const r = decode(DeleteGroupRequestSchema, req);
  const res = await d.subscriptions.deleteGroup(r.group, { force: r.force });
  return toBinary(DeleteGroupResponseSchema, create(DeleteGroupResponseSchema, { partition: d.partition, deleted: res.deleted, membersDisconnected: res.disconnected }));
}

async function listPipelines(d: InspectionDeps, ctx: CallContext): Promise<Uint8Array> {
  d.auth.authorize(d.auth.authenticate(ctx.metadata.authorization), 'sub', d.stream);
  const pipelines = [...d.view().pipelines.values()]
    .filter((p) => p.spec.sourceStream === d.stream)
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
    .map((p) => ({
      name: p.metadata.name,
      triggers: p.spec.triggers,
      maxParallel: p.spec.maxParallel,
      startLocation: p.spec.startPoint.location,
      stages: p.spec.stages.map((st) => ({ name: st.name, dependencies: st.dependencies, after: st.after })),
    }));
  return toBinary(ListPipelinesResponseSchema, create(ListPipelinesResponseSchema, { pipelines }));
}

async function listTokens(d: InspectionDeps, ctx: CallContext): Promise<Uint8Array> {
  const p = d.auth.authenticate(ctx.metadata.authorization);
  if (!p.token.spec.all) {
    throw new HadronError('PERMISSION_DENIED', `unauthorized to perform the requested action: token '${p.name}' may not list Tokens (needs all: true)`, { context: { token: p.name } });
  }
  const perms = (x: PubSub | null | undefined): { pub: string[]; sub: string[] } => ({ pub: x?.pub ?? [], sub: x?.sub ?? [] });
  const tokens = [...d.view().tokens.values()]
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
    .map((t) => ({ name: t.metadata.name, all: t.spec.all, streams: perms(t.spec.streams), exchanges: perms(t.spec.exchanges), endpoints: perms(t.spec.endpoints) }));
  return toBinary(ListTokensResponseSchema, create(ListTokensResponseSchema, { tokens }));
}
