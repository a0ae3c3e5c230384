/**
 * The hand-written codecs must produce and accept exactly what the generated code does.
 * Golden bytes pin the encoding so that a change to either side is caught.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  EventSchema,
  StreamPublishRequestSchema,
  StreamPublishResponseSchema,
  StreamSubscribeRequestSchema,
  StreamSubscribeResponseSchema,
  WriteAck,
} from './gen/stream_pb.js';
import {
  SUBSCRIBE_ACK,
  WireFormatError,
  checkEvent,
  decodeEvent,
  decodePublishResponse,
  decodeSubscribeResponse,
  encodeEvent,
  encodePublishRequest,
  encodePublishResponse,
  encodeSubscribeResponse,
  scanPublishRequest,
  type WireEvent,
} from './wire.js';

const sample: WireEvent = {
  id: 'a1',
  source: 'src',
  specversion: '1.0',
  type: 't.v1',
  optattrs: { subject: 's' },
  data: Buffer.from('hi'),
};

// Event{id:"a1",source:"src",specversion:"1.0",type:"t.v1",optattrs:{subject:"s"},data:"hi"}
const EVENT_GOLDEN = '0a02613112037372631a03312e302204742e7631' + '2a0c0a077375626a6563741201' + '73' + '32026869';

test('Event encoding matches the golden bytes and the generated encoder', () => {
  const mine = encodeEvent(sample);
  assert.equal(mine.toString('hex'), EVENT_GOLDEN);
  const gen = toBinary(EventSchema, create(EventSchema, sample));
  assert.equal(Buffer.from(gen).toString('hex'), EVENT_GOLDEN);
});

test('StreamPublishRequest encoding matches golden bytes and the generated encoder', () => {
  const ev = encodeEvent(sample);
  const mine = encodePublishRequest([ev, ev], true, WriteAck.MAJORITY);
  const golden = `0a${ev.length.toString(16).padStart(2, '0')}${EVENT_GOLDEN}`.repeat(2) + '1001' + '1801';
  assert.equal(mine.toString('hex'), golden);
  const gen = toBinary(StreamPublishRequestSchema, create(StreamPublishRequestSchema, { batch: [sample, sample], fsync: true, ack: WriteAck.MAJORITY }));
  assert.equal(Buffer.from(gen).toString('hex'), golden);
});

test('defaults are omitted like proto3 does (empty event, fsync false, ack ALL)', () => {
  const empty: WireEvent = { id: '', source: '', specversion: '', type: '', optattrs: {}, data: new Uint8Array() };
  assert.equal(encodeEvent(empty).length, 0);
  assert.equal(encodePublishRequest([], false, 0).length, 0);
});

test('unicode, large data and many attributes round-trip through both codecs', () => {
  const ev: WireEvent = {
    id: 'ünïcødé-🚀',
    source: 'urn:x',
    specversion: '1.0',
    type: 'a.b.c',
    optattrs: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, `v${i}-ü`])),
    data: Buffer.alloc(300_000, 7),
  };
  const mine = encodeEvent(ev);
  assert.deepEqual(Buffer.from(toBinary(EventSchema, create(EventSchema, ev))), mine);
  const back = decodeEvent(mine);
  assert.deepEqual({ ...back, data: Buffer.from(back.data) }, { ...ev, data: Buffer.from(ev.data) });
  const gen = fromBinary(EventSchema, mine);
  assert.equal(gen.id, ev.id);
  assert.deepEqual(gen.optattrs, ev.optattrs);
});

test('scanPublishRequest finds events as zero-copy views and reads flags', () => {
  const gen = Buffer.from(toBinary(StreamPublishRequestSchema, create(StreamPublishRequestSchema, { batch: [sample, { ...sample, id: 'b2' }], fsync: true, ack: WriteAck.NONE })));
  const s = scanPublishRequest(gen);
  assert.equal(s.events.length, 2);
  assert.equal(s.fsync, true);
  assert.equal(s.ack, WriteAck.NONE);
  assert.equal(decodeEvent(s.events[1]!).id, 'b2');
  assert.equal(s.events[0]!.buffer, gen.buffer, 'events are views of the request bytes');
});

test('scanPublishRequest rejects events missing required attributes and malformed bytes', () => {
  const noId = encodePublishRequest([encodeEvent({ ...sample, id: '' })], true);
  assert.throws(() => scanPublishRequest(noId), (e: unknown) => e instanceof WireFormatError && /event 0 .*id missing or empty/.test(e.message));
  const noTypeSource = encodePublishRequest([encodeEvent(sample), encodeEvent({ ...sample, type: '', source: '' })], true);
  assert.throws(() => scanPublishRequest(noTypeSource), /event 1 of the batch is invalid: required attributes source, type missing or empty/);
  const truncated = encodePublishRequest([encodeEvent(sample)], true).subarray(0, 10);
  assert.throws(() => scanPublishRequest(truncated), WireFormatError);
  assert.throws(() => scanPublishRequest(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])), /runs past the end/);
  // wrong wire type for Event.id
  assert.match(checkEvent(Buffer.from([0x08, 0x01]), 0, 2) ?? '', /wire type 0, expected 2/);
});

test('unknown fields are skipped (forward compatibility)', () => {
  const ev = Buffer.concat([encodeEvent(sample), Buffer.from([0x78, 0x05])]); // field 15 varint
  assert.equal(checkEvent(ev, 0, ev.length), null);
  assert.equal(decodeEvent(ev).id, 'a1');
});

test('publish and subscribe responses match the generated code', () => {
  for (const [offset, partition] of [
    [0, 0],
    [1, 0],
    [300, 2],
    [2 ** 40 + 5, 1023],
    [Number.MAX_SAFE_INTEGER, 7],
  ] as const) {
    const mine = encodePublishResponse(offset, partition);
    const gen = toBinary(StreamPublishResponseSchema, create(StreamPublishResponseSchema, { offset: BigInt(offset), partition }));
    assert.deepEqual(Buffer.from(gen), mine);
    assert.deepEqual(decodePublishResponse(mine), { offset, partition });
  }
  const ev = encodeEvent(sample);
  const mine = encodeSubscribeResponse([ev, ev], 42, 3, 2);
  const gen = toBinary(StreamSubscribeResponseSchema, create(StreamSubscribeResponseSchema, { batch: [sample, sample], lastIncludedOffset: 42n, attempt: 3, partition: 2 }));
  assert.deepEqual(Buffer.from(gen), mine);
  const d = decodeSubscribeResponse(mine);
  assert.equal(d.events.length, 2);
  assert.equal(d.lastIncludedOffset, 42);
  assert.equal(d.attempt, 3);
  assert.equal(d.partition, 2);
});

test('the pre-encoded ack equals the generated StreamSubscribeRequest{ack}', () => {
  const gen = toBinary(StreamSubscribeRequestSchema, create(StreamSubscribeRequestSchema, { action: { case: 'ack', value: {} } }));
  assert.deepEqual(Buffer.from(gen), SUBSCRIBE_ACK);
});

test('generated code is up to date with stream.proto', () => {
  const root = process.env.HADRON_REPO_ROOT ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'gen-proto.mjs'), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
});

test('acks with an offset: encoder and fast scanner agree with the generated code (issue 14 item 9)', async () => {
  const { encodeSubscribeAck, scanSubscribeAck, scanPipelineRequest } = await import('./wire.js');
  const { PipelineSubscribeRequestSchema } = await import('./gen/stream_pb.js');
  for (const offset of [0, 1, 127, 128, 300, 2 ** 40]) {
    const gen = Buffer.from(toBinary(StreamSubscribeRequestSchema, create(StreamSubscribeRequestSchema, { action: { case: 'ack', value: {} }, offset: BigInt(offset) })));
    assert.equal(encodeSubscribeAck(offset).toString('hex'), gen.toString('hex'), `offset ${offset}`);
    assert.equal(scanSubscribeAck(gen), offset);
  }
  // Field order does not matter; anything that is not a plain ack is left to the full decoder.
  assert.equal(scanSubscribeAck(Buffer.from([0x20, 0x05, 0x12, 0x00])), 5);
  const nack = Buffer.from(toBinary(StreamSubscribeRequestSchema, create(StreamSubscribeRequestSchema, { action: { case: 'nack', value: 'x' }, offset: 5n })));
  assert.equal(scanSubscribeAck(nack), undefined);
  assert.equal(scanSubscribeAck(Buffer.from([0x20, 0x05])), undefined, 'an offset alone is not an ack');
  assert.equal(scanSubscribeAck(Buffer.from([0x12, 0x01, 0x08])), undefined, 'a non-empty ack payload goes to the full decoder');
  const p = Buffer.from(toBinary(PipelineSubscribeRequestSchema, create(PipelineSubscribeRequestSchema, { pipeline: 'p', action: { case: 'nack', value: 'why' }, offset: 42n })));
  assert.deepEqual(scanPipelineRequest(p), { pipeline: 'p', offset: 42, kind: 'nack', reason: 'why' });
});

test('encodeEvent: short-ASCII fast path and the native UTF-8 path agree with the generated encoder', () => {
  // Lengths around the fast path's 64-byte limit, non-ASCII of every UTF-8 width, a lone
  // surrogate (encoded as U+FFFD by both), and no extension attributes at all.
  const strings = ['x', 'a'.repeat(63), 'b'.repeat(64), 'c'.repeat(65), 'd'.repeat(300), 'é', 'ab€', '😀z', 'lone\ud800x', `${'e'.repeat(63)}ü`];
  for (const s of strings) {
    for (const optattrs of [{}, { subject: s, [`k-${s.length}`]: s }] as Record<string, string>[]) {
      const ev: WireEvent = { id: s, source: `src-${s}`, specversion: '1.0', type: s, optattrs, data: Buffer.from(s) };
      const mine = encodeEvent(ev);
      const gen = Buffer.from(toBinary(EventSchema, create(EventSchema, ev)));
      assert.equal(mine.toString('hex'), gen.toString('hex'), `string of ${s.length} chars: ${JSON.stringify(s.slice(0, 12))}`);
    }
  }
});
