import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageDecoder, decodeGrpcMessage, encodeGrpcMessage, frame } from './framing.js';
import { HadronError } from '../errors.js';

const msgs = [Buffer.from(''), Buffer.from('a'), Buffer.alloc(70_000, 3), Buffer.from('hello world')];
const wire = Buffer.concat(msgs.map(frame));

test('decoder yields the same messages whether fed at once or one byte at a time', () => {
  const whole = new MessageDecoder(1 << 20).push(wire);
  assert.deepEqual(whole, msgs);
  const d = new MessageDecoder(1 << 20);
  const out: Buffer[] = [];
  for (let i = 0; i < wire.length; i++) out.push(...d.push(wire.subarray(i, i + 1)));
  assert.deepEqual(out, msgs);
  assert.ok(d.idle);
});

test('decoder handles arbitrary chunk boundaries', () => {
  for (const size of [2, 5, 6, 4096, 65_537]) {
    const d = new MessageDecoder(1 << 20);
    const out: Buffer[] = [];
    for (let i = 0; i < wire.length; i += size) out.push(...d.push(wire.subarray(i, i + size)));
    assert.deepEqual(out, msgs, `chunk size ${size}`);
  }
});

test('an oversized message is rejected from its header alone, with a message naming the sizes', () => {
  const d = new MessageDecoder(1000);
  const header = frame(Buffer.alloc(1001)).subarray(0, 5);
  assert.throws(
    () => d.push(header),
    (e: unknown) => e instanceof HadronError && e.code === 'MESSAGE_TOO_LARGE' && /1001 bytes exceeds the maximum message size of 1000 bytes/.test(e.message),
  );
});

test('compressed messages are refused clearly', () => {
  const f = frame(Buffer.from('x'));
  f[0] = 1;
  assert.throws(() => new MessageDecoder(100).push(f), /compressed gRPC messages are not supported/);
});

test('grpc-message percent-encoding round-trips', () => {
  const m = 'bad: 100% ünïcode\nline';
  assert.equal(decodeGrpcMessage(encodeGrpcMessage(m)), m);
  assert.ok(!/[\n]/.test(encodeGrpcMessage(m)));
});
