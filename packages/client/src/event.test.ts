import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CloudEvent } from 'cloudevents';
import { EventSchema, decodeEvent, encodeEvent, fromBinary } from '@hadron/proto';
import { dataText, toCloudEvent, toWireEvent } from './event.js';

/** What a subscriber would see: the exact stored bytes decoded again. */
const overTheWire = (ce: object): ReturnType<typeof decodeEvent> => decodeEvent(encodeEvent(toWireEvent(ce as never)));

test('a cloudevents SDK CloudEvent maps to stream.Event: required fields, optattrs, data bytes', () => {
  const ce = new CloudEvent({
    id: 'order-1',
    source: '/shop',
    type: 'order.created',
    subject: 'customer-7',
    time: '2024-05-01T10:00:00.000Z',
    datacontenttype: 'application/json',
    dataschema: 'https://example.com/order.json',
    partitionkey: 'tenant-a',
    priority: 5,
    urgent: true,
    data: { total: 42, items: ['a'] },
  });
  const w = toWireEvent(ce);
  assert.equal(w.id, 'order-1');
  assert.equal(w.source, '/shop');
  assert.equal(w.specversion, '1.0');
  assert.equal(w.type, 'order.created');
  assert.deepEqual(w.optattrs, {
    subject: 'customer-7',
    time: '2024-05-01T10:00:00.000Z',
    datacontenttype: 'application/json',
    dataschema: 'https://example.com/order.json',
    partitionkey: 'tenant-a',
    priority: '5',
    urgent: 'true',
  });
  assert.equal(Buffer.from(w.data).toString(), '{"total":42,"items":["a"]}');
  // and the generated decoder reads our encoding as the same Event
  const g = fromBinary(EventSchema, encodeEvent(w));
  assert.equal(g.optattrs.partitionkey, 'tenant-a');
  assert.deepEqual(Buffer.from(g.data), Buffer.from(w.data));
});

test('CloudEvent round trip: publish shape → wire → toCloudEvent → new CloudEvent is equal', () => {
  const cases = [
    new CloudEvent({ source: '/a', type: 't.json', datacontenttype: 'application/json', data: { hello: 'world', n: [1, 2] }, partitionkey: 'k' }),
    new CloudEvent({ source: '/a', type: 't.text', datacontenttype: 'text/plain; charset=utf-8', data: 'héllo wörld', subject: 's' }),
    new CloudEvent({ source: '/a', type: 't.bin', datacontenttype: 'application/octet-stream', data: Buffer.from([0, 1, 2, 255]) }),
    new CloudEvent({ source: '/a', type: 't.cloudevents+json', datacontenttype: 'application/cloudevents+json', data: { x: true } }),
    new CloudEvent({ source: '/a', type: 't.nodata', myext: 'value' }),
  ];
  for (const ce of cases) {
    const back = new CloudEvent(toCloudEvent(overTheWire(ce)) as never);
    assert.deepEqual(back.toJSON(), ce.toJSON(), ce.type);
  }
});

test('flat plain objects: id generated, specversion defaulted, JSON data gets a content type', () => {
  const w = toWireEvent({ source: 's', type: 't', data: { a: 1 }, when: new Date('2024-01-02T03:04:05Z'), blob: new Uint8Array([1, 2, 3]) });
  assert.match(w.id, /^[0-9a-f-]{36}$/);
  assert.equal(w.specversion, '1.0');
  assert.equal(w.optattrs.datacontenttype, 'application/json');
  assert.equal(w.optattrs.when, '2024-01-02T03:04:05.000Z');
  assert.equal(w.optattrs.blob, 'AQID');
  assert.equal(toWireEvent({ source: 's', type: 't', data_base64: 'AQID' }).data.length, 3);
  assert.throws(() => toWireEvent({ source: 's', type: 't', n: 1.5 }), /not an integer/);
  assert.throws(() => toWireEvent({ source: '', type: 't' }), /`source` is required/);
});

test('the wire shape is taken as is', () => {
  const w = toWireEvent({ id: 'i', source: 's', type: 't', optattrs: { subject: 'x' }, data: 'text' });
  assert.deepEqual({ ...w, data: Buffer.from(w.data).toString() }, { id: 'i', source: 's', specversion: '1.0', type: 't', optattrs: { subject: 'x' }, data: 'text' });
});

test('dataText tells UTF-8 text from binary', () => {
  assert.equal(dataText(Buffer.from('héllo')), 'héllo');
  assert.equal(dataText(new Uint8Array([0xff, 0xfe, 0x00])), undefined);
  assert.equal(dataText(new Uint8Array(0)), '');
});
