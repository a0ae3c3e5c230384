/**
 * Pipeline throughput: the 5-stage service-creation shape (deploy → billing, monitoring, notify
 * in parallel → cleanup) on one partition with trivial handlers. `events` trigger events are
 * pre-filled; stage workers (`window` per stage, over loopback) ack every delivery with an
 * output event at once. Reports stage transitions/s (each one an fsync'ed output write) and
 * instances/s. Target from the Pipelines issue: ≥ 5,000 stage transitions/s on one partition.
 *
 * Checks: every instance runs each stage exactly once, every stage sees exactly its
 * dependencies' outputs, and the server reports no active instance at the end.
 */
import { RawClient, testEvent, type RawStage } from '@hadron/testing';
import { now } from '../lib/stats.js';
import { check, type WorkloadResult, type WorkloadSpec } from '../types.js';
import { withHadron } from './cluster.js';

const STAGES: Array<[string, string[]]> = [
  ['deploy-service', []],
  ['setup-billing', ['deploy-service']],
  ['setup-monitoring', ['deploy-service']],
  ['notify-user', ['deploy-service']],
  ['cleanup', ['deploy-service', 'setup-billing', 'setup-monitoring', 'notify-user']],
];

export function hadronPipeline(spec: WorkloadSpec): Promise<WorkloadResult> {
  return withHadron(spec, async (h) => {
    const n = spec.events;
    const maxParallel = spec.maxBatch;
    h.stream.writeManifest(
      'pipeline.yaml',
      `apiVersion: hadron.rs/v1beta1
kind: Pipeline
metadata: {name: bench}
spec:
  sourceStream: events
  triggers: [service.created]
  maxParallel: ${maxParallel}
  startPoint: {location: beginning}
  stages: [${STAGES.map(([s, d]) => `{name: ${s}, dependencies: [${d.join(', ')}]}`).join(', ')}]
`,
    );
    const admin = new RawClient(h.stream.url(0), h.stream.tokens.full);
    for (let i = 0; i < n; i += 1000) {
      await admin.publish(
        Array.from({ length: Math.min(1000, n - i) }, (_, j) => testEvent(i + j, { type: 'service.created', data: Buffer.alloc(spec.eventSize) })),
        { fsync: false },
      );
    }
    const deadline = Date.now() + 10_000;
    while (!(await admin.pipelineStatus('bench').then(() => true, () => false))) {
      check(Date.now() < deadline, 'pipeline started within 10 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const seen = new Map<string, number>();
    let transitions = 0;
    let completed = 0;
    let finish!: () => void;
    let fail!: (e: unknown) => void;
    const done = new Promise<void>((res, rej) => ((finish = res), (fail = rej)));
    const workers: Array<{ client: RawClient; stage: RawStage }> = [];
    const t0 = now();
    for (const [stage, deps] of STAGES) {
      for (let w = 0; w < spec.window; w++) {
        const client = new RawClient(h.stream.url(0), h.stream.tokens.full);
        const s = client.pipelineStage('bench', stage);
        workers.push({ client, stage: s });
        void (async () => {
          for (;;) {
            const d = await s.next();
            const key = `${d.offset}/${stage}`;
            seen.set(key, (seen.get(key) ?? 0) + 1);
            if (Object.keys(d.inputs).sort().join() !== [...deps].sort().join()) fail(new Error(`${key} got inputs ${Object.keys(d.inputs)}`));
            s.ack({ id: d.root.id, source: stage, specversion: '1.0', type: `${stage}.v1`, optattrs: {}, data: new Uint8Array() });
            transitions++;
            if (stage === 'cleanup' && ++completed === n) finish();
          }
        })().catch(() => undefined);
      }
    }
    await done;
    const seconds = (now() - t0) / 1000;
    check(seen.size === n * STAGES.length, `every stage of ${n} instances ran (${seen.size} runs recorded)`);
    check([...seen.values()].every((c) => c === 1), 'no stage ran twice');
    const endDeadline = Date.now() + 10_000;
    while ((await admin.pipelineStatus('bench')).instances.length > 0) {
      check(Date.now() < endDeadline, 'server drained its active instances');
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const w of workers) {
      w.stage.close();
      await w.client.close();
    }
    await admin.close();
    return {
      id: spec.id,
      system: 'hadron',
      kind: 'pipeline',
      title: spec.title,
      status: 'ok',
      events: transitions,
      seconds,
      eventsPerSec: transitions / seconds,
      mbPerSec: 0,
      verified: [`${n} instances × ${STAGES.length} stages, each exactly once`, 'inputs = dependencies’ outputs', 'no active instance left'],
      params: { instances: n, instancesPerSec: Math.round(n / seconds), workersPerStage: spec.window, maxParallel, stages: STAGES.length },
      notes: ['events/s column = stage transitions/s; each transition fsyncs the stage output', 'target ≥ 5,000 stage transitions/s on one partition'],
    };
  });
}
