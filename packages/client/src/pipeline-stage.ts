/**
 * Pipeline stage handlers on the wire: `PipelineSubscribe` (reference §1.3, §5).
 *
 *   client → {pipeline, stage_name}                       (setup)
 *   server → PipelineSubscribeResponse{stage, root_event, inputs, attempt, offset, partition}
 *   client → {pipeline, ack: PipelineStageOutput{output}} | {pipeline, nack: "error text"}
 *
 * The handler receives the instance's root event and the outputs of the stage's `dependencies`
 * (by stage name) and returns the stage's output event, which the server stores and hands to
 * the stages that depend on this one.
 */
import {
  EventSchema,
  PipelineSubscribeRequestSchema,
  PipelineSubscribeResponseSchema,
  create,
  fromBinary,
  toBinary,
  type Event as ProtoEvent, METHOD } from '@hadron/proto';
import { HadronError } from '@hadron/core';
import { toWireEvent, type EventInput, type ReceivedEvent, type WireEvent } from './event.js';
import type { SubscriptionProtocol } from './subscription.js';

export const PIPELINE_SUBSCRIBE_METHOD = METHOD.pipelineSubscribe;

export interface StageDelivery {
  pipeline: string;
  stage: string;
  /** Partition running the pipeline instance. */
  partition: number;
  /** Source-stream offset of the root event: identifies the instance on its partition. */
  offset: number;
  /** 1 for a first delivery, 2+ for a redelivery. */
  attempt: number;
  /** The event that triggered the instance. */
  rootEvent: ReceivedEvent;
  /** Outputs of the stages this stage depends on, by stage name. */
  inputs: Record<string, WireEvent>;
}

/** Returns the stage's output event; a throw nacks the delivery with its message. */
export type StageHandler = (delivery: StageDelivery) => EventInput | Promise<EventInput>;

export interface PipelineStageOptions {
  /** Closes the handler when aborted. */
  signal?: AbortSignal;
}

function fromProto(e: ProtoEvent | undefined): WireEvent {
  if (!e) return { id: '', source: '', specversion: '', type: '', optattrs: {}, data: new Uint8Array(0) };
  return { id: e.id, source: e.source, specversion: e.specversion, type: e.type, optattrs: { ...e.optattrs }, data: e.data };
}

export function pipelineProtocol(pipeline: string, stage: string): SubscriptionProtocol<StageDelivery, EventInput> {
  if (pipeline === '' || stage === '') throw new HadronError('INVALID_ARGUMENT', 'pipeline and stage names are required');
  const msg = (action: { case: 'stageName'; value: string } | { case: 'nack'; value: string } | { case: 'ack'; value: { output: ProtoEvent } }, offset = 0): Uint8Array =>
    toBinary(PipelineSubscribeRequestSchema, create(PipelineSubscribeRequestSchema, { pipeline, action, offset: BigInt(offset) }));
  return {
    description: `pipeline "${pipeline}" stage "${stage}"`,
    method: PIPELINE_SUBSCRIBE_METHOD,
    setup: () => msg({ case: 'stageName', value: stage }),
    decode(buf, partition) {
      let r;
      try {
        r = fromBinary(PipelineSubscribeResponseSchema, buf);
      } catch (err) {
        throw new HadronError('MALFORMED_MESSAGE', `invalid PipelineSubscribeResponse: ${(err as Error).message}`);
      }
      const offset = Number(r.offset);
      // fromEntries makes every key an own property, "__proto__" included (server-sent names).
      const inputs: Record<string, WireEvent> = Object.fromEntries(Object.entries(r.inputs).map(([name, ev]) => [name, fromProto(ev)]));
      return {
        pipeline,
        stage: r.stage || stage,
        partition: r.partition || partition,
        offset,
        attempt: r.attempt || 1,
        rootEvent: { ...fromProto(r.rootEvent), partition, offset },
        inputs,
      };
    },
    // Replies name the delivery (its instance offset) so the server never applies them to another.
    ack(output, d) {
      const w = toWireEvent(output);
      return msg({ case: 'ack', value: { output: create(EventSchema, { ...w, optattrs: { ...w.optattrs } }) } }, d.offset);
    },
    nack: (reason, d) => msg({ case: 'nack', value: reason }, d.offset),
    ackedOffset: () => undefined,
  };
}
