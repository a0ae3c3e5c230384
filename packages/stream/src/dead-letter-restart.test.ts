/**
 * Integration: failed delivery counts survive a kill -9 of the stream server
 * (delivery-attempts.ts), for a durable group and for a Trigger, so maxAttempts means attempts
 * in total and not attempts since the last restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RawClient, readAll, startStream, testEvent, tokenManifest, tokenSecret } from '@hadron/testing';

function dlqManifests(): Record<string, string> {
  const dl = tokenSecret('t-dl');
  return { 'token-dl.yaml': tokenManifest('t-dl', { streams: { pub: ['dlq'], sub: [] } }), 'secret-dl.yaml': dl.yaml };
}

test('a durable group: nacks before a kill -9 count toward maxAttempts after it', async () => {
  const shared = dlqManifests();
  await using dlq = await startStream({ stream: 'dlq', manifests: shared });
  await using c = await startStream({
    stream: 'events',
    spec: { deadLetter: { stream: 'dlq', maxAttempts: 3, token: 't-dl' } },
    manifests: shared,
    env: { HADRON_STREAM_URLS: `dlq=${dlq.url(0)}`, HADRON_NACK_BACKOFF_BASE_MS: '10', HADRON_NACK_BACKOFF_MAX_MS: '50' },
  });
  const cl = new RawClient(c.url(0), c.tokens.full);
  await cl.publish([testEvent(1, { id: 'e1' }), testEvent(2, { id: 'e2' })]);
  const sub = cl.subscribe({ group: 'billing', durable: true, maxBatchSize: 1, start: { beginning: true } });
  for (const want of [1, 2]) {
    const d = await sub.next();
    assert.deepEqual([d.events[0]!.id, d.attempt], ['e1', want]);
    sub.nack(`poison ${want}`);
  }
  // The third delivery is made only once the two failures are stored; crash while it is out.
  const third = await sub.next();
  assert.deepEqual([third.events[0]!.id, third.attempt], ['e1', 3]);
  await c.kill(0, 'SIGKILL');
  sub.close();
  await cl.close();

  await c.startPartition(0);
  const cl2 = new RawClient(c.url(0), c.tokens.full);
  const sub2 = cl2.subscribe({ group: 'billing', durable: true, maxBatchSize: 1 });
  const again = await sub2.next();
  assert.deepEqual([again.events[0]!.id, again.attempt], ['e1', 3], 'the count goes on after the restart (a crash is not a failed delivery)');
  sub2.nack('poison 3');
  const next = await sub2.next();
  assert.deepEqual([next.events[0]!.id, next.attempt], ['e2', 1], 'e1 dead-lettered after 3 attempts in total');
  sub2.ack();
  sub2.close();
  await cl2.close();

  const reader = new RawClient(dlq.url(0), dlq.tokens.full);
  const dead = await readAll(reader, 1);
  await reader.close();
  assert.equal(dead[0]!.event.id, 'e1');
  assert.equal(dead[0]!.event.optattrs.deadletterattempts, '3');
  assert.equal(dead[0]!.event.optattrs.deadlettererror, 'nacked: poison 3');
});

test('a Trigger: failed POSTs before a kill -9 count toward retry.maxAttempts after it', async () => {
  let posts = 0;
  let hang = true;
  let onPost: (n: number) => void = () => undefined;
  const hung = new Set<http.ServerResponse>();
  const sink = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      posts++;
      onPost(posts);
      if (posts === 3 && hang) hung.add(res);
      else res.writeHead(500).end();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`;
  const trigger = `apiVersion: hadron.rs/v1beta1
kind: Trigger
metadata: {name: billing}
spec:
  sourceStream: events
  sink: {uri: '${url}'}
  startPoint: {location: beginning}
  timeoutMs: 60000
  retry: {maxAttempts: 3, backoffMs: 10, maxBackoffMs: 50}
  deadLetter: {stream: dlq, token: t-dl}
`;
  const shared = dlqManifests();
  try {
    await using dlq = await startStream({ stream: 'dlq', manifests: shared });
    await using c = await startStream({ stream: 'events', manifests: { ...shared, 'trigger.yaml': trigger }, env: { HADRON_STREAM_URLS: `dlq=${dlq.url(0)}` } });
    const third = new Promise<void>((resolve) => (onPost = (n) => n === 3 && resolve()));
    const cl = new RawClient(c.url(0), c.tokens.full);
    await cl.publish([testEvent(1, { id: 't1' })]);
    await cl.close();
    // The third POST is sent only once the first two failures are stored; crash while it hangs.
    await third;
    await c.kill(0, 'SIGKILL');
    hang = false;
    for (const res of hung) res.destroy();
    await c.startPartition(0);

    const reader = new RawClient(dlq.url(0), dlq.tokens.full);
    const dead = await readAll(reader, 1);
    await reader.close();
    assert.equal(dead[0]!.event.id, 't1');
    assert.equal(dead[0]!.event.optattrs.deadletterattempts, '3');
    assert.equal(dead[0]!.event.optattrs.deadlettererror, 'sink answered HTTP 500');
    assert.equal(posts, 4, 'two failed POSTs before the crash, the interrupted one, one after it');
  } finally {
    sink.closeAllConnections();
    await new Promise<void>((r) => sink.close(() => r()));
  }
});
