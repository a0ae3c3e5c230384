/** Our client names the delivery in every ack and nack (issue 14 item 9). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PipelineSubscribeRequestSchema, StreamSubscribeRequestSchema, fromBinary } from '@hadron/proto';
import { streamProtocol, type Delivery } from './stream-subscription.js';
import { pipelineProtocol, type StageDelivery } from './pipeline-stage.js';

test('stream subscription acks and nacks carry the batch’s last offset', () => {
  const p = streamProtocol({ group: 'g' });
  const d: Delivery = { group: 'g', partition: 0, events: [], lastIncludedOffset: 1234, attempt: 1 };
  const ack = fromBinary(StreamSubscribeRequestSchema, p.ack(undefined, d));
  assert.equal(ack.action.case, 'ack');
  assert.equal(ack.offset, 1234n);
  const nack = fromBinary(StreamSubscribeRequestSchema, p.nack('boom', d));
  assert.deepEqual([nack.action.case, nack.action.value, nack.offset], ['nack', 'boom', 1234n]);
});

test('pipeline stage acks and nacks carry the instance offset', () => {
  const p = pipelineProtocol('pl', 'st');
  const d = { offset: 77 } as StageDelivery;
  const ack = fromBinary(PipelineSubscribeRequestSchema, p.ack({ id: 'i', source: 's', type: 't' }, d));
  assert.equal(ack.action.case, 'ack');
  assert.equal(ack.offset, 77n);
  assert.equal(fromBinary(PipelineSubscribeRequestSchema, p.nack('no', d)).offset, 77n);
});
