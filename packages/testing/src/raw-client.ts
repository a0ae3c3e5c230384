/**
 * A thin protocol-level client for server tests: every call maps to one RPC with nothing hidden
 * (no batching, retries or topology), so tests see exactly what the server does.
 */
import { GrpcChannel, HadronError, type ChannelOptions, type ClientCall } from '@hadron/core';
import {
  PipelineStatusRequestSchema,
  PipelineStatusResponseSchema,
  PipelineSubscribeRequestSchema,
  PipelineSubscribeResponseSchema,
  MetadataRequestSchema,
  MetadataResponseSchema,
  StreamSubscribeRequestSchema,
  SUBSCRIBE_ACK,
  create,
  decodeEvent,
  decodePublishResponse,
  decodeSubscribeResponse,
  encodeEvent,
  encodePublishRequest,
  fromBinary,
  toBinary,
  type WireEvent, METHOD } from '@hadron/proto';

export const PUBLISH = METHOD.publish;
export const SUBSCRIBE = METHOD.subscribe;
export const METADATA = METHOD.metadata;
export const PIPELINE_SUBSCRIBE = METHOD.pipelineSubscribe;

export function testEvent(i: number, over: Partial<WireEvent> = {}): WireEvent {
  return {
    id: `id-${i}`,
    source: 'test',
    specversion: '1.0',
    type: 'test.event',
    optattrs: {},
    data: Buffer.from(`payload-${i}`),
    ...over,
  };
}

export type Start = { beginning: true } | { latest: true } | { offset: number } | undefined;

export interface RawDelivery {
  events: WireEvent[];
  lastIncludedOffset: number;
  attempt: number;
  partition: number;
}

export class RawSubscription {
  private readonly it: AsyncIterator<Buffer>;
  constructor(readonly call: ClientCall) {
    this.it = call.incoming[Symbol.asyncIterator]();
  }
  /** Next delivery; throws the call's error if it ended with one, or when it ends cleanly. */
  async next(): Promise<RawDelivery> {
    const r = await this.it.next();
    if (r.done) throw new Error('subscription ended');
    const d = decodeSubscribeResponse(r.value);
    return { ...d, events: d.events.map((e) => decodeEvent(e)) };
  }
  ack(): void {
    this.call.write(SUBSCRIBE_ACK);
  }
  nack(msg: string): void {
    this.call.write(toBinary(StreamSubscribeRequestSchema, create(StreamSubscribeRequestSchema, { action: { case: 'nack', value: msg } })));
  }
  /** Waits for the server to end the call; resolves with its error (or undefined when OK). */
  async ended(): Promise<unknown> {
    try {
      for (;;) {
        const r = await this.it.next();
        if (r.done) return undefined;
      }
    } catch (err) {
      return err;
    }
  }
  close(): void {
    this.call.cancel();
  }
}

export class RawClient {
  readonly channel: GrpcChannel;
  constructor(
    readonly url: string,
    public token: string | undefined,
    channel: ChannelOptions = {},
  ) {
    this.channel = new GrpcChannel(url, channel);
  }

  get metadata(): Record<string, string> {
    return this.token === undefined ? {} : { authorization: `bearer ${this.token}` };
  }

  async publish(events: WireEvent[], opts: { fsync?: boolean; ack?: number } = {}): Promise<{ offset: number; partition: number }> {
    const req = encodePublishRequest(events.map(encodeEvent), opts.fsync ?? true, opts.ack ?? 0);
    return decodePublishResponse(await this.channel.unary(PUBLISH, req, { metadata: this.metadata }));
  }

  subscribe(setup: { group: string; durable?: boolean; maxBatchSize?: number; start?: Start }): RawSubscription {
    const call = this.channel.bidi(SUBSCRIBE, { metadata: this.metadata });
    const start = setup.start;
    const startingPoint =
      start === undefined
        ? { case: undefined }
        : 'beginning' in start
          ? { case: 'beginning' as const, value: {} }
          : 'latest' in start
            ? { case: 'latest' as const, value: {} }
            : { case: 'offset' as const, value: BigInt(start.offset) };
    call.write(
      toBinary(
        StreamSubscribeRequestSchema,
        create(StreamSubscribeRequestSchema, {
          action: {
            case: 'setup',
            value: { groupName: setup.group, durable: setup.durable ?? false, maxBatchSize: setup.maxBatchSize ?? 10, startingPoint },
          },
        }),
      ),
    );
    return new RawSubscription(call);
  }

  /** Opens the Metadata stream; iterate the returned partitions lists. */
  metadataStream(): { call: ClientCall; next: () => Promise<Array<{ partition: number; internal: string }>> } {
    const call = this.channel.serverStream(METADATA, toBinary(MetadataRequestSchema, create(MetadataRequestSchema)), { metadata: this.metadata });
    const it = call.incoming[Symbol.asyncIterator]();
    return {
      call,
      next: async () => {
        const r = await it.next();
        if (r.done) throw new HadronError('UNAVAILABLE', 'metadata stream ended');
        return fromBinary(MetadataResponseSchema, r.value).partitions.map((p) => ({ partition: p.partition, internal: p.internal }));
      },
    };
  }


  /** Joins a pipeline stage as a worker. */
  pipelineStage(pipeline: string, stage: string): RawStage {
    const call = this.channel.bidi(PIPELINE_SUBSCRIBE, { metadata: this.metadata });
    call.write(toBinary(PipelineSubscribeRequestSchema, create(PipelineSubscribeRequestSchema, { pipeline, action: { case: 'stageName', value: stage } })));
    return new RawStage(call, pipeline);
  }

  /** `stream.Inspection/PipelineStatus` of this partition. */
  async pipelineStatus(pipeline: string): Promise<{
    partition: number;
    lastOffsetProcessed: number;
    maxParallel: number;
    instances: Array<{ offset: number; rootEventId: string; stages: Array<{ name: string; state: string; attempts: number }> }>;
  }> {
    const res = fromBinary(
      PipelineStatusResponseSchema,
      await this.channel.unary(METHOD.pipelineStatus, toBinary(PipelineStatusRequestSchema, create(PipelineStatusRequestSchema, { pipeline })), {
        metadata: this.metadata,
      }),
    );
    return {
      partition: res.partition,
      lastOffsetProcessed: Number(res.lastOffsetProcessed),
      maxParallel: res.maxParallel,
      instances: res.instances.map((i) => ({
        offset: Number(i.offset),
        rootEventId: i.rootEventId,
        stages: i.stages.map((st) => ({ name: st.name, state: st.state, attempts: st.attempts })),
      })),
    };
  }

  close(): Promise<void> {
    return this.channel.close();
  }
}

/** Reads everything a fresh ephemeral group gets from the beginning, acking, until `count` events. */
export async function readAll(client: RawClient, count: number, group = `reader-${Math.random().toString(36).slice(2)}`): Promise<Array<{ offset: number; event: WireEvent }>> {
  const sub = client.subscribe({ group, maxBatchSize: 1000, start: { beginning: true } });
  const out: Array<{ offset: number; event: WireEvent }> = [];
  try {
    while (out.length < count) {
      const d = await sub.next();
      const first = d.lastIncludedOffset - d.events.length + 1;
      d.events.forEach((event, i) => out.push({ offset: first + i, event }));
      sub.ack();
    }
  } finally {
    sub.close();
  }
  return out;
}

export interface RawStageDelivery {
  stage: string;
  root: WireEvent;
  inputs: Record<string, WireEvent>;
  attempt: number;
  offset: number;
  partition: number;
}

export class RawStage {
  private readonly it: AsyncIterator<Buffer>;
  constructor(
    readonly call: ClientCall,
    readonly pipeline: string,
  ) {
    this.it = call.incoming[Symbol.asyncIterator]();
  }
  async next(): Promise<RawStageDelivery> {
    const r = await this.it.next();
    if (r.done) throw new Error('pipeline subscription ended');
    const m = fromBinary(PipelineSubscribeResponseSchema, r.value);
    const plain = (e: { id: string; source: string; specversion: string; type: string; optattrs: Record<string, string>; data: Uint8Array } | undefined): WireEvent =>
      e ? { id: e.id, source: e.source, specversion: e.specversion, type: e.type, optattrs: { ...e.optattrs }, data: e.data } : { id: '', source: '', specversion: '', type: '', optattrs: {}, data: new Uint8Array() };
    return {
      stage: m.stage,
      root: plain(m.rootEvent),
      inputs: Object.fromEntries(Object.entries(m.inputs).map(([k, v]) => [k, plain(v)])),
      attempt: m.attempt,
      offset: Number(m.offset),
      partition: m.partition,
    };
  }
  ack(output: WireEvent): void {
    this.call.write(
      toBinary(PipelineSubscribeRequestSchema, create(PipelineSubscribeRequestSchema, { pipeline: this.pipeline, action: { case: 'ack', value: { output } } })),
    );
  }
  nack(msg: string): void {
    this.call.write(toBinary(PipelineSubscribeRequestSchema, create(PipelineSubscribeRequestSchema, { pipeline: this.pipeline, action: { case: 'nack', value: msg } })));
  }
  close(): void {
    this.call.cancel();
  }
}

