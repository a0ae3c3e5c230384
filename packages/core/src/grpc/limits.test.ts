import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HadronError } from '../errors.js';
import { MessageDecoder, frame } from './framing.js';
import { ByteBudget } from './limits.js';

test('the decoder reports each message length exactly once, however the bytes are split', () => {
  const msgs = [Buffer.alloc(10, 1), Buffer.alloc(0), Buffer.alloc(300, 2), Buffer.alloc(7, 3)];
  const wire = Buffer.concat(msgs.map((m) => frame(m)));
  for (const step of [1, 3, 5, 6, 64, wire.length]) {
    const seen: number[] = [];
    const d = new MessageDecoder(1024, (len) => seen.push(len));
    const out: Buffer[] = [];
    for (let i = 0; i < wire.length; i += step) out.push(...d.push(wire.subarray(i, i + step)));
    assert.deepEqual(seen, [10, 0, 300, 7], `split every ${step} bytes`);
    assert.deepEqual(out, msgs);
    assert.ok(d.idle);
  }
});

test('a byte budget refuses a reservation that does not fit, whole, and names the variable', () => {
  const b = new ByteBudget(100);
  b.reserve(60);
  assert.throws(() => b.reserve(41), (e: unknown) => e instanceof HadronError && e.code === 'SERVER_BUSY' && /HADRON_MAX_INFLIGHT_REQUEST_BYTES/.test(e.message));
  assert.equal(b.inUse, 60, 'a refused reservation takes nothing');
  b.reserve(40);
  b.release(100);
  assert.equal(b.inUse, 0);
});
