/**
 * Integration: resource bounds (issue 14 item 5) against real `hadron-stream` processes —
 * canonical tokens, group series cleanup, events per request, connection limits and timeouts,
 * in-flight request bytes and subscriber buffers. Every loop is bounded in count and time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GrpcStatusError, Status } from '@hadron/core';
import { RawClient, startStream, testEvent, until, type TestStream } from '@hadron/testing';

async function metricsText(c: TestStream): Promise<string> {
  return (await fetch(`${c.metricsUrl(0)}/metrics`)).text();
}

/** Sum of all series of `name` (optionally only those whose labels contain `match`). */
async function metricSum(c: TestStream, name: string, match = ''): Promise<number> {
  const text = await metricsText(c);
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) if (m[1]!.includes(match)) sum += Number(m[2]);
  return sum;
}

async function failure(p: Promise<unknown>): Promise<GrpcStatusError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GrpcStatusError) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}

test('tokens: non-canonical spellings are refused with UNAUTHENTICATED and never cached', async () => {
  await using c = await startStream({ partitions: 1 });
  const token = c.tokens.full;
  const ok = new RawClient(c.url(0), token);
  assert.equal((await ok.publish([testEvent(1)])).offset, 1);
  const [h, p, s] = token.split('.') as [string, string, string];
  // Before the fix every one of these verified (Node's base64url decoder skips what it does not
  // know) and each took its own cache entry.
  const variants = [`${h}.${p}.${s.slice(0, 20)}*${s.slice(20)}`, `${h}.${p}.${s}==`, `${h}.${p}.${s}%%%%`, ` ${token}`, `${h}.${p}.${s.slice(0, 5)}\t${s.slice(5)}`];
  for (const v of variants) {
    const bad = new RawClient(c.url(0), v);
    try {
      const err = await failure(bad.publish([testEvent(2)]));
      assert.equal(err.grpcStatus, Status.UNAUTHENTICATED, `${v}: ${err.message}`);
    } finally {
      await bad.close();
    }
  }
  const big = new RawClient(c.url(0), `${token}${'A'.repeat(10_000)}`);
  const err = await failure(big.publish([testEvent(3)]));
  assert.equal(err.grpcStatus, Status.UNAUTHENTICATED);
  await big.close();
  // The canonical token still works, and nothing was appended by the refused calls.
  assert.equal((await ok.publish([testEvent(4)])).offset, 2);
  await ok.close();
});

test('metrics: 1,000 short-lived groups leave no per-group series behind', async () => {
  await using c = await startStream({ partitions: 1 });
  const cl = new RawClient(c.url(0), c.tokens.full);
  await cl.publish([testEvent(1), testEvent(2)]);
  const N = 1000;
  for (let i = 0; i < N; i++) {
    const sub = cl.subscribe({ group: `short-${i}`, maxBatchSize: 1, start: { beginning: true } });
    await sub.next();
    if (i % 2 === 0) sub.ack();
    else sub.nack('not now');
    sub.close();
  }
  const live = await cl.subscribe({ group: 'still-here', maxBatchSize: 1, start: { beginning: true } });
  await live.next();
  // Leaving is processed asynchronously by the server; wait until every short group is gone.
  const groups = async (): Promise<number> => metricSum(c, 'hadron_stream_subscriber_num_groups');
  await until(async () => (await groups()) === 1, 30_000, 'every short-lived group to end');
  const text = await metricsText(c);
  const leftovers = text.split('\n').filter((l) => l.includes('group="short-'));
  assert.deepEqual(leftovers.slice(0, 5), [], `${leftovers.length} series of ended groups remain`);
  assert.ok(text.includes('group="still-here"'), 'a live group keeps its series');
  live.close();
  await cl.close();
});
