import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HadronError } from '@hadron/core';
import { WireFormatError, encodeEvent, encodePublishRequest, scanPublishRequest } from '@hadron/proto';
import { scanPublishInChunks } from './publish-scan.js';

const ev = (i: number) => encodeEvent({ id: `i${i}`, source: 's', specversion: '1.0', type: 't', optattrs: {}, data: Buffer.from([i & 0xff]) });

test('a large request is validated in slices with the event loop free in between; the result is the same', async () => {
  const req = encodePublishRequest(Array.from({ length: 50_000 }, (_, i) => ev(i)), true, 2);
  let turns = 0;
  let spinning = true;
  const spin = (): void => {
    turns++;
    if (spinning) setImmediate(spin);
  };
  setImmediate(spin);
  const chunked = await scanPublishInChunks(req, { maxEvents: 100_000, chunkEvents: 5_000 });
  spinning = false;
  // A synchronous scan (the old code) lets no other callback run before it returns.
  assert.ok(turns >= 5, `the event loop turned ${turns} times during a 10-slice scan`);
  const whole = scanPublishRequest(req);
  assert.equal(chunked.events.length, 50_000);
  assert.equal(chunked.bytes, whole.bytes);
  assert.equal(chunked.fsync, true);
  assert.equal(chunked.ack, 2);
  assert.ok(chunked.events.every((e, i) => e.equals(whole.events[i]!)));
});

test('more events than the cap: TOO_MANY_EVENTS before any per-event work; errors keep their event index', async () => {
  const req = encodePublishRequest(Array.from({ length: 1001 }, (_, i) => ev(i)), false);
  let rejected = 0;
  await assert.rejects(
    scanPublishInChunks(req, { maxEvents: 1000, onRejected: () => rejected++ }),
    (e: unknown) => e instanceof HadronError && e.code === 'TOO_MANY_EVENTS' && /more than 1000 events/.test(e.message),
  );
  assert.equal(rejected, 1);
  // An invalid event in the third slice is named by its index in the whole batch.
  const events = Array.from({ length: 30 }, (_, i) => ev(i));
  events[23] = encodeEvent({ id: '', source: 's', specversion: '1.0', type: 't', optattrs: {}, data: Buffer.alloc(0) });
  const bad = encodePublishRequest(events, false);
  const whole = (() => {
    try {
      scanPublishRequest(bad);
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  })();
  assert.match(whole, /^event 23 of the batch/);
  await assert.rejects(scanPublishInChunks(bad, { maxEvents: 100, chunkEvents: 10 }), (e: unknown) => e instanceof WireFormatError && e.message === whole);
  // A truncated request gets the whole-request scanner's error.
  await assert.rejects(scanPublishInChunks(bad.subarray(0, bad.length - 3), { maxEvents: 100, chunkEvents: 10 }), WireFormatError);
});
