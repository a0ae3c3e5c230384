/**
 * Integration: the structured fields of a real partition process's log (docs/operations.md,
 * "Logs"), read from its stdout as `kubectl logs … | jq` reads it: every line names its pod,
 * Stream and partition; lines about a consumer group carry `group`, about a pipeline `pipeline`
 * (and `stage`), about a replica copy this pod holds `replicaOf` — dead-lettered batches included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, startStream, testEvent, tokenManifest, tokenSecret, until, type TestStream } from '@hadron/testing';

type Line = Record<string, unknown> & { msg: string };

/** The JSON lines partition `p` wrote to stdout so far. */
function logLines(c: TestStream, p: number): Line[] {
  return c.procs.get(p)!.output.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line);
}

test('every log line names its pod, stream and partition; group, pipeline and replica lines name theirs', { timeout: 90_000 }, async () => {
  const dl = tokenSecret('t-dl');
  const shared = { 'token-dl.yaml': tokenManifest('t-dl', { streams: { pub: ['dlq'], sub: [] } }), 'secret-dl.yaml': dl.yaml };
  await using dlq = await startStream({ stream: 'dlq', manifests: shared });
  await using c = await startStream({
    stream: 'events',
    partitions: 2,
    spec: { replicationFactor: 2, deadLetter: { stream: 'dlq', maxAttempts: 2, token: 't-dl' } },
    manifests: {
      ...shared,
      'pipeline.yaml': `apiVersion: hadron.rs/v1beta1
kind: Pipeline
metadata: {name: orders}
spec: {sourceStream: events, maxParallel: 1, startPoint: {location: beginning}, triggers: [order.created], stages: [{name: charge}]}
`,
    },
    env: { HADRON_STREAM_URLS: `dlq=${dlq.url(0)}`, HADRON_NACK_BACKOFF_BASE_MS: '10', HADRON_NACK_BACKOFF_MAX_MS: '50' },
  });
  const cl = new RawClient(c.url(0), c.tokens.full);
  await cl.publish([testEvent(1, { id: 'o1', type: 'order.created' })]);

  // A durable group nacks its batch until it is dead-lettered.
  const sub = cl.subscribe({ group: 'billing', durable: true, maxBatchSize: 1, start: { beginning: true } });
  for (let i = 0; i < 2; i++) {
    await sub.next();
    sub.nack('poison');
  }
  // A pipeline stage worker does the same with its instance.
  await until(async () => cl.pipelineStatus('orders').then(() => true, () => false), 15_000, 'pipeline orders loaded');
  const stage = cl.pipelineStage('orders', 'charge');
  for (let i = 0; i < 2; i++) {
    await stage.next();
    stage.nack('card declined');
  }
  const deadLettered = (): Line[] => logLines(c, 0).filter((l) => l.msg === 'batch dead-lettered');
  await until(() => deadLettered().length === 2, 15_000, 'both batches dead-lettered');
  await until(() => logLines(c, 1).some((l) => l.msg === 'replica copy opened'), 15_000, 'partition 1 holds the copy of partition 0');
  sub.close();
  stage.close();
  await cl.close();

  for (const p of [0, 1]) {
    const lines = logLines(c, p);
    assert.ok(lines.length >= 5, `partition ${p} logged ${lines.length} lines`);
    for (const l of lines) {
      assert.deepEqual({ pod: l.pod, stream: l.stream, partition: l.partition }, { pod: `events-${p}`, stream: 'events', partition: p }, `line of partition ${p}: ${JSON.stringify(l)}`);
    }
  }
  const p0 = logLines(c, 0);
  const one = (msg: string): Line => {
    const l = p0.find((x) => x.msg === msg);
    assert.ok(l, `no "${msg}" line`);
    return l;
  };
  assert.equal(one('subscription group created').group, 'billing');
  assert.equal(one('batch nacked').group, 'billing');
  assert.equal(one('pipeline started').pipeline, 'orders');
  assert.deepEqual([one('pipeline stage nacked').pipeline, one('pipeline stage nacked').stage], ['orders', 'charge']);
  // What `jq 'select(.group == "billing")'` / `select(.pipeline == "orders")` find: the group's
  // and the pipeline's dead-lettered batches too.
  const byGroup = p0.filter((l) => l.group === 'billing').map((l) => l.msg);
  const byPipeline = p0.filter((l) => l.pipeline === 'orders').map((l) => l.msg);
  assert.ok(byGroup.includes('batch dead-lettered'), `group lines: ${byGroup.join(' | ')}`);
  assert.ok(byPipeline.includes('batch dead-lettered'), `pipeline lines: ${byPipeline.join(' | ')}`);
  assert.deepEqual(
    deadLettered().map((l) => [l.group, l.pipeline, l.stage, l.consumer]).sort(),
    [['billing', undefined, undefined, 'billing'], [undefined, 'orders', 'charge', 'orders/charge']].sort(),
  );
  // The copy partition 1 holds of partition 0.
  const copy = logLines(c, 1).filter((l) => l.replicaOf === 0);
  assert.ok(copy.some((l) => l.msg === 'replica copy opened'), 'replica lines carry replicaOf');
});
