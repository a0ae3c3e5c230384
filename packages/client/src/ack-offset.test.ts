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

test('an undecodable event from an older server is left out of the delivery, named by offset', async () => {
  const { encodeEvent, encodeSubscribeResponse } = await import('@hadron/proto');
  const good = (i: number) => encodeEvent({ id: `e${i}`, source: 's', specversion: '1.0', type: 't', optattrs: {}, data: new Uint8Array(0) });
  const bad = Buffer.concat([good(2), Buffer.from([0x2a, 0x02, 0x08, 0x01])]);
  const p = streamProtocol({ group: 'g' });
  const d = p.decode(encodeSubscribeResponse([good(1), bad, good(3)], 12, 1, 0), 0);
  assert.deepEqual(d.events.map((e) => [e.id, e.offset]), [['e1', 10], ['e3', 12]]);
  assert.equal(d.undecodable?.length, 1);
  assert.equal(d.undecodable![0]!.offset, 11);
  assert.match(d.undecodable![0]!.problem, /optattrs entry 0: field 1 has wire type 0/);
  assert.equal(fromBinary(StreamSubscribeRequestSchema, p.ack(undefined, d)).offset, 12n, 'the ack covers the whole batch');
});
