/**
 * Integration: dead-lettering of a durable group between two real Streams (docs/http.md).
 * Stream `events` has `spec.deadLetter: {stream: dlq, maxAttempts: 3, token: t-dl}`; Token t-dl
 * (pub on dlq) exists in both Streams' manifests, as in one Kubernetes namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, readAll, startStream, testEvent, tokenManifest, tokenSecret, until } from '@hadron/testing';

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

test('a durable group dead-letters a batch after maxAttempts nacks, with its origin; order and the rest unaffected; survives a restart', async () => {
  const dl = tokenSecret('t-dl');
  const shared = { 'token-dl.yaml': tokenManifest('t-dl', { streams: { pub: ['dlq'], sub: [] } }), 'secret-dl.yaml': dl.yaml };
  await using dlq = await startStream({ stream: 'dlq', manifests: shared });
  await using c = await startStream({
    stream: 'events',
    spec: { deadLetter: { stream: 'dlq', maxAttempts: 3, token: 't-dl' } },
    manifests: shared,
    env: { HADRON_STREAM_URLS: `dlq=${dlq.url(0)}`, HADRON_NACK_BACKOFF_BASE_MS: '10', HADRON_NACK_BACKOFF_MAX_MS: '50' },
  });
  const cl = new RawClient(c.url(0), c.tokens.full);
  await cl.publish([1, 2, 3, 4].map((i) => testEvent(i, { id: `e${i}`, optattrs: { subject: 'order-7', i: String(i) } })));

  let sub = cl.subscribe({ group: 'billing', durable: true, maxBatchSize: 1, start: { beginning: true } });
  const seen: Array<{ id: string; attempt: number }> = [];
  // e2 is nacked three times → dead-lettered, then acked.
  for (;;) {
    const d = await sub.next();
    const id = d.events[0]!.id;
    seen.push({ id, attempt: d.attempt });
    if (id === 'e2') sub.nack(`poison ${d.attempt}`);
    else sub.ack();
    if (id === 'e3') break;
  }
  assert.deepEqual(seen, [
    { id: 'e1', attempt: 1 },
    { id: 'e2', attempt: 1 },
    { id: 'e2', attempt: 2 },
    { id: 'e2', attempt: 3 },
    { id: 'e3', attempt: 1 },
  ]);
  // Restart the source server: the group resumes after e3 (e2 is not redelivered).
  sub.close();
  await until(async () => (await metric(c.metricsUrl(0), 'hadron_stream_subscriber_last_offset_processed{group="billing"')) >= 3, 10_000, 'ack of e3');
  await cl.close();
  await c.restart(0);
  const cl2 = new RawClient(c.url(0), c.tokens.full);
  sub = cl2.subscribe({ group: 'billing', durable: true, maxBatchSize: 1 });
  const next = await sub.next();
  assert.equal(next.events[0]!.id, 'e4', 'resumes after the dead-lettered and acked events');
  sub.ack();
  sub.close();
  await cl2.close();

  const reader = new RawClient(dlq.url(0), dlq.tokens.full);
  const got = await readAll(reader, 1);
  await reader.close();
  assert.equal(got.length, 1);
  const ev = got[0]!.event;
  assert.equal(ev.id, 'e2');
  assert.equal(ev.optattrs.subject, 'order-7', 'original attributes kept');
  assert.equal(ev.optattrs.i, '2');
  assert.equal(Buffer.from(ev.data).toString(), Buffer.from(testEvent(2).data).toString());
  assert.equal(ev.optattrs.deadletterstream, 'events');
  assert.equal(ev.optattrs.deadletterpartition, '0');
  assert.equal(ev.optattrs.deadletteroffset, '2');
  assert.equal(ev.optattrs.deadlettergroup, 'billing');
  assert.equal(ev.optattrs.deadletterattempts, '3');
  assert.equal(ev.optattrs.deadlettererror, 'nacked: poison 3');
  assert.equal(await metric(c.metricsUrl(0), 'hadron_stream_dead_lettered_events_total{consumer="billing"}'), 0, 'counter restarts with the process');
});

test('when the dead-letter Stream cannot take the batch, nothing is acked: it is retried until it can', async () => {
  const dl = tokenSecret('t-dl');
  const shared = { 'token-dl.yaml': tokenManifest('t-dl', { streams: { pub: ['dlq'], sub: [] } }), 'secret-dl.yaml': dl.yaml };
  await using dlq = await startStream({ stream: 'dlq', manifests: shared });
  await using c = await startStream({
    stream: 'events',
    spec: { deadLetter: { stream: 'dlq', maxAttempts: 1, token: 't-dl' } },
    manifests: shared,
    env: { HADRON_STREAM_URLS: `dlq=${dlq.url(0)}`, HADRON_NACK_BACKOFF_BASE_MS: '10', HADRON_NACK_BACKOFF_MAX_MS: '50' },
  });
  await dlq.kill(0);
  const cl = new RawClient(c.url(0), c.tokens.full);
  await cl.publish([testEvent(1, { id: 'p1' }), testEvent(2, { id: 'p2' })]);
  const sub = cl.subscribe({ group: 'g', durable: true, maxBatchSize: 1, start: { beginning: true } });
  const d = await sub.next();
  assert.equal(d.events[0]!.id, 'p1');
  sub.nack('bad');
  await until(async () => (await metric(c.metricsUrl(0), 'hadron_stream_dead_letter_failures_total')) >= 1, 20_000, 'a failed dead-letter publish');
  assert.equal(await metric(c.metricsUrl(0), 'hadron_stream_subscriber_last_offset_processed{group="g"'), 0, 'not acked while the dead-letter Stream is down');
  await dlq.startPartition(0);
  const after = await sub.next();
  assert.equal(after.events[0]!.id, 'p2', 'p1 went to the dead-letter Stream once it was back');
  sub.ack();
  sub.close();
  await cl.close();
  const reader = new RawClient(dlq.url(0), dlq.tokens.full);
  const got = await readAll(reader, 1);
  await reader.close();
  assert.deepEqual(got.map((g) => [g.event.id, g.event.optattrs.deadlettererror]), [['p1', 'nacked: bad']]);
});

test('a pipeline stage dead-letters its root after maxAttempts nacks; dependent stages get the dead-lettered event', async () => {
  const dl = tokenSecret('t-dl');
  const shared = { 'token-dl.yaml': tokenManifest('t-dl', { streams: { pub: ['dlq'], sub: [] } }), 'secret-dl.yaml': dl.yaml };
  await using dlq = await startStream({ stream: 'dlq', manifests: shared });
  await using c = await startStream({
    stream: 'events',
    spec: { deadLetter: { stream: 'dlq', maxAttempts: 2, token: 't-dl' } },
    manifests: {
      ...shared,
      'pipeline.yaml': `apiVersion: hadron.rs/v1beta1
kind: Pipeline
metadata: {name: provision}
spec:
  sourceStream: events
  triggers: [service.created]
  maxParallel: 1
  startPoint: {location: beginning}
  stages:
    - {name: deploy}
    - {name: notify, dependencies: [deploy]}
`,
    },
    env: { HADRON_STREAM_URLS: `dlq=${dlq.url(0)}`, HADRON_NACK_BACKOFF_BASE_MS: '10', HADRON_NACK_BACKOFF_MAX_MS: '50' },
  });
  const cl = new RawClient(c.url(0), c.tokens.full);
  await cl.publish([testEvent(1, { id: 'svc-1', type: 'service.created' })]);
  const deploy = cl.pipelineStage('provision', 'deploy');
  const notify = cl.pipelineStage('provision', 'notify');
  const a1 = await deploy.next();
  assert.equal(a1.attempt, 1);
  deploy.nack('cluster unreachable');
  const a2 = await deploy.next();
  assert.equal(a2.attempt, 2);
  deploy.nack('cluster unreachable');
  const n = await notify.next();
  const input = n.inputs.deploy!;
  assert.equal(input.id, 'svc-1');
  assert.equal(input.optattrs.deadletterstage, 'provision/deploy');
  assert.equal(input.optattrs.deadletterattempts, '2');
  assert.equal(input.optattrs.deadlettererror, 'nacked: cluster unreachable');
  notify.ack({ id: 'svc-1', source: 'notify', specversion: '1.0', type: 'notified', optattrs: {}, data: new Uint8Array() });
  await until(async () => (await cl.pipelineStatus('provision')).instances.length === 0, 10_000, 'instance complete');
  deploy.close();
  notify.close();
  await cl.close();
  const reader = new RawClient(dlq.url(0), dlq.tokens.full);
  const got = await readAll(reader, 1);
  await reader.close();
  assert.equal(got[0]!.event.id, 'svc-1');
  assert.equal(got[0]!.event.type, 'service.created');
  assert.equal(got[0]!.event.optattrs.deadletterstage, 'provision/deploy');
  assert.equal(got[0]!.event.optattrs.deadletteroffset, '1');
});
