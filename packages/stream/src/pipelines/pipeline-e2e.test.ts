/**
 * Integration: the service-provisioning pipeline (reference §7) over 3 real partition processes
 * with stage workers, a kill -9 mid-pipeline, status inspection, and deletion.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GrpcStatusError, Status } from '@hadron/core';
import { RawClient, startStream, testEvent, type RawStage, type TestStream, until } from '@hadron/testing';

const STAGES: Array<{ name: string; dependencies?: string[] }> = [
  { name: 'deploy-service' },
  { name: 'setup-billing', dependencies: ['deploy-service'] },
  { name: 'setup-monitoring', dependencies: ['deploy-service'] },
  { name: 'notify-user', dependencies: ['deploy-service'] },
  { name: 'cleanup', dependencies: ['deploy-service', 'setup-billing', 'setup-monitoring', 'notify-user'] },
];

const manifest = (maxParallel: number, location = 'beginning') => `apiVersion: hadron.rs/v1beta1
kind: Pipeline
metadata: {name: service-creation}
spec:
  sourceStream: events
  triggers: [service.created]
  maxParallel: ${maxParallel}
  startPoint: {location: ${location}}
  stages:
${STAGES.map((s) => `    - {name: ${s.name}, dependencies: [${(s.dependencies ?? []).join(', ')}]}`).join('\n')}
`;

interface Run {
  partition: number;
  offset: number;
  stage: string;
  inputs: string[];
}

/** A worker for one stage of one partition: acks each delivery with an output; records runs. */
function worker(c: TestStream, p: number, stage: string, runs: Run[], onRun: () => void) {
  const client = new RawClient(c.url(p), c.tokens.full);
  const s: RawStage = client.pipelineStage('service-creation', stage);
  const state = { lastAck: undefined as string | undefined, done: undefined as Promise<unknown> | undefined };
  state.done = (async () => {
    for (;;) {
      const d = await s.next();
      runs.push({ partition: p, offset: d.offset, stage, inputs: Object.keys(d.inputs).sort() });
      assert.equal(d.partition, p);
      for (const [k, v] of Object.entries(d.inputs)) assert.equal(v.source, k, 'an input is that stage’s output');
      state.lastAck = `${p}/${d.offset}/${stage}`;
      s.ack({ id: d.root.id, source: stage, specversion: '1.0', type: `${stage}.v1`, optattrs: {}, data: new Uint8Array() });
      onRun();
    }
  })().catch((e: unknown) => e);
  return { client, s, state };
}

test('service-creation over 3 partitions: every stage exactly once per instance, across a kill -9', async () => {
  await using c = await startStream({ partitions: 3 });
  c.writeManifest('pipeline.yaml', manifest(4));
  const pub = [0, 1, 2].map((p) => new RawClient(c.url(p), c.tokens.full));
  // 12 instances per partition, with non-matching events in between
  for (let i = 0; i < 12; i++) {
    for (const [p, cl] of pub.entries()) {
      await cl.publish([testEvent(i, { id: `svc-${p}-${i}`, type: 'service.created' }), testEvent(i, { id: `noise-${p}-${i}`, type: 'service.created.v2' })]);
    }
  }
  // Workers only start once the pipeline is known on each partition.
  await until(async () => (await Promise.all(pub.map((cl) => cl.pipelineStatus('service-creation').then(() => true, () => false)))).every(Boolean));

  const runs: Run[] = [];
  let maxActive = 0;
  const sampler = setInterval(() => {
    for (const cl of pub) void cl.pipelineStatus('service-creation').then((s) => (maxActive = Math.max(maxActive, s.instances.length)), () => undefined);
  }, 5);
  let killAt: Promise<unknown> | undefined;
  const workers = new Map<number, Array<ReturnType<typeof worker>>>();
  const startWorkers = (p: number): void => {
    workers.set(
      p,
      STAGES.map((s) =>
        worker(c, p, s.name, runs, () => {
          if (!killAt && runs.filter((r) => r.partition === 1).length >= 20) killAt = c.kill(1, 'SIGKILL');
        }),
      ),
    );
  };
  [0, 1, 2].forEach(startWorkers);
  await until(() => killAt !== undefined);
  await killAt;
  const killed = workers.get(1)!;
  await Promise.all(killed.map((w) => w.state.done));
  const lastAcks = new Set(killed.map((w) => w.state.lastAck).filter((x): x is string => x !== undefined));
  await c.startPartition(1);
  pub[1] = new RawClient(c.url(1), c.tokens.full);
  startWorkers(1);

  const cleanupDone = (): number => new Set(runs.filter((r) => r.stage === 'cleanup').map((r) => `${r.partition}/${r.offset}`)).size;
  await until(() => cleanupDone() === 36, 60_000);
  await until(async () => (await Promise.all(pub.map((cl) => cl.pipelineStatus('service-creation')))).every((s) => s.instances.length === 0));
  clearInterval(sampler);

  const count = new Map<string, number>();
  for (const r of runs) count.set(`${r.partition}/${r.offset}/${r.stage}`, (count.get(`${r.partition}/${r.offset}/${r.stage}`) ?? 0) + 1);
  assert.equal(new Set(runs.map((r) => `${r.partition}/${r.offset}`)).size, 36, '12 instances on each of 3 partitions');
  for (const [key, n] of count) {
    if (n === 1) continue;
    assert.equal(n, 2, `${key} ran ${n} times`);
    assert.ok(lastAcks.has(key), `${key} re-ran although its ack was durable (only the last ack of a killed worker may be lost)`);
  }
  assert.equal(count.size, 36 * 5, 'every stage of every instance ran');
  for (const r of runs) assert.deepEqual(r.inputs, [...(STAGES.find((s) => s.name === r.stage)!.dependencies ?? [])].sort());
  assert.ok(maxActive <= 4, `active instances never exceeded maxParallel (max seen ${maxActive})`);
  assert.ok(maxActive > 0);
  const st = await pub[0]!.pipelineStatus('service-creation');
  assert.equal(st.partition, 0);
  assert.equal(st.lastOffsetProcessed, 24, 'all 24 source events scanned');

  // Deleting the pipeline deletes its state: re-created, it starts over from its start point.
  c.removeManifest('pipeline.yaml');
  await until(async () => (await pub[0]!.pipelineStatus('service-creation').then(() => false, (e: unknown) => e instanceof GrpcStatusError && e.grpcStatus === Status.NOT_FOUND)));
  for (const ws of workers.values()) for (const w of ws) w.s.close();
  c.writeManifest('pipeline.yaml', manifest(4));
  await until(async () => (await pub[0]!.pipelineStatus('service-creation').then((s) => s.instances.length === 4, () => false)));
  for (const cl of pub) await cl.close();
  for (const ws of workers.values()) for (const w of ws) await w.client.close();
});
