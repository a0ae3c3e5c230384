/**
 * Integration (issue 14 item 4): a publish whose events a decoder would reject is refused whole
 * with INVALID_EVENT naming the event and the problem; nothing of it is stored, so subscribers
 * never meet it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeEvent, encodePublishRequest } from '@hadron/proto';
import { GrpcStatusError, Status } from '@hadron/core';
import { PUBLISH, RawClient, startStream, testEvent } from '@hadron/testing';

const good = (i: number): Buffer => encodeEvent(testEvent(i));
const entry = (i: number, inner: number[]): Buffer => Buffer.concat([good(i), Buffer.from([0x2a, inner.length, ...inner])]);

test('events a decoder rejects are refused at publish, whole batch, naming index and problem; nothing stored', async () => {
  await using c = await startStream({ partitions: 1 });
  const cl = new RawClient(c.url(0), c.tokens.full);
  assert.equal((await cl.publish([testEvent(0)])).offset, 1);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['wrong inner wire type', entry(1, [0x08, 0x01, 0x12, 0x01, 0x76]), /optattrs entry 0: field 1 has wire type 0/],
    ['field number 0', entry(1, [0x02, 0x00]), /field number 0 is invalid/],
    ['truncated inner length', entry(1, [0x0a, 0x07, 0x6b]), /length 7 runs past/],
    ['group wire type', entry(1, [0x0a, 0x01, 0x6b, 0x1b, 0x1c]), /group wire type/],
    ['invalid UTF-8', entry(1, [0x0a, 0x01, 0x6b, 0x12, 0x02, 0xc0, 0xaf]), /attribute value is not valid UTF-8/],
    ['upper-case attribute name', encodeEvent(testEvent(1, { optattrs: { Tenant: 'x' } })), /"Tenant" must consist of lower-case/],
    ['specversion 0.3', encodeEvent(testEvent(1, { specversion: '0.3' })), /specversion must be "1.0"/],
  ];
  for (const [what, bad, re] of cases) {
    const req = encodePublishRequest([good(1), good(2), bad, good(3)], true);
    let err: unknown;
    try {
      await cl.channel.unary(PUBLISH, req, { metadata: cl.metadata });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof GrpcStatusError, what);
    assert.equal(err.grpcStatus, Status.INVALID_ARGUMENT, what);
    assert.equal(err.code, 'INVALID_EVENT', what);
    assert.match(err.message, /event 2 of the batch is invalid/, what);
    assert.match(err.message, re, what);
  }
  // Nothing of the refused batches was stored: the next offset is dense, and a subscriber from
  // the beginning sees exactly the two accepted events.
  assert.equal((await cl.publish([testEvent(9)])).offset, 2);
  const sub = cl.subscribe({ group: 'all', start: { beginning: true }, maxBatchSize: 100 });
  const d = await sub.next();
  assert.deepEqual(d.events.map((e) => e.id), ['id-0', 'id-9']);
  sub.close();
  await cl.close();
});
