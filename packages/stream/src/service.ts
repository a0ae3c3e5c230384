/**
 * `stream.StreamController` over the gRPC transport: decodes requests, authenticates, calls the
 * domain (store, subscriptions) and encodes responses. Error texts follow reference §1.6; status
 * codes follow DESIGN.md (UNAUTHENTICATED for bad credentials, PERMISSION_DENIED for missing
 * permissions).
 */
import {
  HadronError,
  checkPipelineName,
  type BidiCall,
  type CallContext,
  type ControlPlaneView,
  type Logger,
  type MethodDef,
  type ServerStreamCall,
} from '@hadron/core';
import {
  MetadataResponseSchema,
  PipelineStatusRequestSchema,
  PipelineStatusResponseSchema,
  StreamSubscribeRequestSchema,
  WireFormatError,
  checkEventBytes,
  create,
  encodePipelineResponse,
  encodePublishResponse,
  encodeSubscribeResponse,
  fromBinary,
  scanPipelineRequest,
  scanSubscribeAck,
  toBinary,
  type ScannedPipelineRequest,
  type StreamSubscribeRequest, METHOD } from '@hadron/proto';
import type { Counter } from 'prom-client';
import type { PipelineManager } from './pipelines/manager.js';
import { scanPublishInChunks } from './publish-scan.js';
import { stageStatusWithOutput } from './inspection.js';
import type { Action, Authenticator } from './auth.js';
import { callsEndedCounter, guardCredentials } from './credential-guard.js';
import type { StreamMetrics } from './metrics.js';
import type { PartitionStore } from './storage/partition-store.js';
import type { GroupSetup, Subscriptions } from './subscriptions.js';
import type { ViewFeed } from './view-feed.js';

export interface ServiceDeps {
  stream: string;
  partition: number;
  store: PartitionStore;
  subscriptions: Subscriptions;
  auth: Authenticator;
  metrics: StreamMetrics;
  logger: Logger;
  feed: ViewFeed;
  pipelines: PipelineManager;
  /** Partition list to announce for a view (undefined while the Stream is unknown). */
  partitions: (v: ControlPlaneView) => Array<{ partition: number; internal: string; external: string }> | undefined;
  /** HADRON_MAX_EVENTS_PER_REQUEST. */
  maxEventsPerRequest: number;
  /** Waits until the copies a publish's WriteAck asks for hold its batch (docs/replication.md). */
  replication?: { waitCopies(last: number, ack: number, signal: () => AbortSignal): Promise<void> };
}


export function streamControllerMethods(d: ServiceDeps): Record<string, MethodDef> {
  const ended = callsEndedCounter(d.metrics.registry);
  return {
    [METHOD.metadata]: { kind: 'serverStream', handler: (req, call) => guarded(d, ended, call, undefined, () => metadata(d, call)) },
    [METHOD.publish]: { kind: 'unary', handler: (req, ctx) => publish(d, req, ctx) },
    [METHOD.subscribe]: { kind: 'bidi', handler: (call) => guarded(d, ended, call, 'sub', () => subscribe(d, call)) },
    [METHOD.pipelineSubscribe]: { kind: 'bidi', handler: (call) => guarded(d, ended, call, 'sub', () => pipelineSubscribe(d, call)) },
    [METHOD.pipelineStatus]: { kind: 'unary', handler: (req, ctx) => pipelineStatus(d, req, ctx) },
  };
}

/**
 * Authenticates (and authorizes `action`) a long-lived call, then runs it under a credential
 * guard: revoking the Token/Secret or reaching the token's `exp` ends it with UNAUTHENTICATED.
 */
async function guarded(d: ServiceDeps, ended: Counter<'method'>, call: ServerStreamCall, action: Action | undefined, run: () => Promise<void>): Promise<void> {
  const principal = d.auth.authenticate(call.metadata.authorization);
  if (action !== undefined) d.auth.authorize(principal, action, d.stream);
  // Accepted: answer with headers now, not with the first message. The original client awaits
  // them before it sends its setup or opens its next partition (issue 14 item 13).
  call.sendHeaders();
  const stop = guardCredentials({
    auth: d.auth,
    principal,
    onViewChange: (l) => d.feed.onChange(l),
    fail: (err) => call.fail(err),
    logger: d.logger,
    method: call.method,
    ended,
  });
  try {
    await run();
    // A handler may end quietly when its call is aborted (Metadata's feed just stops): report why.
    if (call.signal.aborted) throw call.signal.reason;
  } finally {
    stop();
  }
}

async function publish(d: ServiceDeps, req: Buffer, ctx: CallContext): Promise<Uint8Array> {
  const started = performance.now();
  try {
    d.auth.authorize(d.auth.authenticate(ctx.metadata.authorization), 'pub', d.stream);
    let scanned;
    try {
      scanned = await scanPublishInChunks(req, { maxEvents: d.maxEventsPerRequest, onRejected: () => d.metrics.limitHit('events_per_request') });
    } catch (err) {
      if (err instanceof WireFormatError) {
        const code = /^event \d+ of the batch/.test(err.message) ? 'INVALID_EVENT' : 'MALFORMED_MESSAGE';
        throw new HadronError(code, `invalid publish request: ${err.message}`);
      }
      throw err;
    }
    if (scanned.events.length === 0) throw new HadronError('EMPTY_BATCH', 'validation error: entries batch was empty, no-op');
    const { last } = await d.store.append(scanned.events, { fsync: scanned.fsync });
    // WriteAck ALL / MAJORITY / NONE: acknowledged only once that many copies hold the batch.
    // The signal is asked for only when there are copies to wait for (it is created on first use).
    if (d.replication) await d.replication.waitCopies(last, scanned.ack, () => ctx.signal);
    const m = d.metrics;
    m.publishedEvents.inc(scanned.events.length);
    m.publishedBytes.inc(scanned.bytes);
    m.publishBatchSize.observe(scanned.events.length);
    m.currentOffset.set(last);
    (scanned.fsync ? m.publishLatencyFsync : m.publishLatencyNoFsync).observe((performance.now() - started) / 1000);
    return encodePublishResponse(last, d.partition);
  } catch (err) {
    d.metrics.publishErrors.inc({ code: err instanceof HadronError ? err.code : 'INTERNAL' });
    throw err;
  }
}

async function metadata(d: ServiceDeps, call: ServerStreamCall): Promise<void> {
  let last = '';
  for await (const view of d.feed.follow(call.signal)) {
    const parts = d.partitions(view);
    if (parts === undefined) continue;
    const key = JSON.stringify(parts);
    if (key === last) continue;
    last = key;
    await call.send(toBinary(MetadataResponseSchema, create(MetadataResponseSchema, { partitions: parts })));
  }
}

function decodeSubscribe(buf: Buffer): StreamSubscribeRequest {
  try {
    return fromBinary(StreamSubscribeRequestSchema, buf);
  } catch (err) {
    throw new HadronError('MALFORMED_MESSAGE', `invalid StreamSubscribeRequest: ${(err as Error).message}`);
  }
}

async function subscribe(d: ServiceDeps, call: BidiCall): Promise<void> {
  const first = await call.incoming.next();
  if (first.done) throw new HadronError('INVALID_ARGUMENT', 'no subscription setup request received');
  const req = decodeSubscribe(first.value);
  if (req.action.case === undefined) throw new HadronError('INVALID_ARGUMENT', 'no action variant received in request');
  if (req.action.case !== 'setup') throw new HadronError('INVALID_ARGUMENT', 'invalid action variant received in request, expected `setup` variant');
  const s = req.action.value;
  const sp = s.startingPoint;
  const setup: GroupSetup = {
    group: s.groupName,
    durable: s.durable,
    maxBatchSize: s.maxBatchSize,
    start:
      sp.case === 'beginning'
        ? { kind: 'beginning' }
        : sp.case === 'offset'
          ? { kind: 'offset', offset: Number(sp.value) }
          : { kind: 'latest' },
  };
  const handle = await d.subscriptions.join(setup, {
    send: (del) => call.send(encodeSubscribeResponse(del.events.map((e) => e.payload), del.lastIncludedOffset, del.attempt, d.partition)),
    fail: (err) => call.fail(err),
  });
  try {
    for await (const msg of call.incoming) {
      // Acks are the hot path: recognised without the generated decoder. An ack's optional
      // offset must name the batch in flight (issue 14 item 9).
      const acked = scanSubscribeAck(msg);
      if (acked !== undefined) {
        handle.ack(acked);
        continue;
      }
      const r = decodeSubscribe(msg);
      switch (r.action.case) {
        case 'ack':
          handle.ack(Number(r.offset));
          break;
        case 'nack':
          handle.nack(r.action.value, Number(r.offset));
          break;
        default:
          // The original treats any other message as a nack; so do we, with a reason.
          handle.nack(`unexpected ${r.action.case ?? 'empty'} message during a subscription`);
      }
    }
  } finally {
    handle.leave();
  }
}

async function pipelineSubscribe(d: ServiceDeps, call: BidiCall): Promise<void> {
  const first = await call.incoming.next();
  if (first.done) throw new HadronError('INVALID_ARGUMENT', 'no subscription setup request received');
  const req = scanPipeline(first.value);
  if (req.kind === 'none') throw new HadronError('INVALID_ARGUMENT', 'no action variant received in request');
  if (req.kind !== 'stage') throw new HadronError('INVALID_ARGUMENT', 'invalid action variant received in request, expected `StageName` variant');
  checkPipelineName(req.pipeline, 'pipeline');
  checkPipelineName(req.stage, 'stage');
  const ctl = d.pipelines.get(req.pipeline);
  const pipeline = d.feed.current().pipelines.get(req.pipeline);
  if (!ctl || !pipeline || pipeline.spec.sourceStream !== d.stream) throw new HadronError('NOT_FOUND', 'the target pipeline controller was not found');
  if (!pipeline.spec.stages.some((s) => s.name === req.stage)) {
    throw new HadronError('INVALID_ARGUMENT', `pipeline subscriber stage name '${req.stage}' is unknown for pipeline ${req.pipeline}`);
  }
  const handle = ctl.join(req.stage, {
    send: (del) => call.send(encodePipelineResponse(del.stage, del.root, del.inputs, del.attempt, del.offset, d.partition)),
    fail: (err) => call.fail(err),
  });
  try {
    for await (const msg of call.incoming) {
      const r = scanPipeline(msg);
      if (r.kind === 'ack') handle.ack(checkedOutput(r.output), r.offset);
      else if (r.kind === 'nack') handle.nack(r.reason, r.offset);
      else handle.nack(`unexpected ${r.kind} message during a pipeline subscription`);
    }
  } finally {
    handle.leave();
  }
}

/** A stage output is stored and handed to later stages: it must be an Event every decoder accepts. */
function checkedOutput(output: Buffer): Buffer {
  const problem = checkEventBytes(output, 0, output.length, { cloudEvents: false });
  if (problem !== null) throw new HadronError('INVALID_EVENT', `invalid pipeline stage output: ${problem}`);
  return Buffer.from(output);
}

function scanPipeline(buf: Buffer): ScannedPipelineRequest {
  try {
    return scanPipelineRequest(buf);
  } catch (err) {
    throw new HadronError('MALFORMED_MESSAGE', `invalid PipelineSubscribeRequest: ${(err as Error).message}`);
  }
}

async function pipelineStatus(d: ServiceDeps, req: Buffer, ctx: CallContext): Promise<Uint8Array> {
  d.auth.authorize(d.auth.authenticate(ctx.metadata.authorization), 'sub', d.stream);
  let name: string;
  try {
    name = fromBinary(PipelineStatusRequestSchema, req).pipeline;
  } catch (err) {
    throw new HadronError('MALFORMED_MESSAGE', `invalid PipelineStatusRequest: ${(err as Error).message}`);
  }
  const ctl = d.pipelines.get(name);
  const pipeline = d.feed.current().pipelines.get(name);
  if (!ctl || !pipeline) throw new HadronError('NOT_FOUND', `pipeline ${name} is not running on stream ${d.stream}`);
  const st = ctl.status();
  return toBinary(
    PipelineStatusResponseSchema,
    create(PipelineStatusResponseSchema, {
      partition: d.partition,
      lastOffsetProcessed: BigInt(st.lastOffsetProcessed),
      maxParallel: pipeline.spec.maxParallel,
      instances: st.instances.map((i) => ({ offset: BigInt(i.offset), rootEventId: i.rootId, stages: i.stages.map(stageStatusWithOutput) })),
      completed: st.completed.map((i) => ({ offset: BigInt(i.offset), rootEventId: i.rootId, stages: i.stages.map(stageStatusWithOutput), completedAtMs: BigInt(i.completedAtMs) })),
    }),
  );
}
