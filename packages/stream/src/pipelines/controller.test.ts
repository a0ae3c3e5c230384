/**
 * Pipeline semantics as domain logic over the in-memory engine.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncQueue, parsePipeline, silentLogger, type Pipeline } from '@hadron/core';
import { decodeEvent, encodeEvent } from '@hadron/proto';
import { MemoryStore } from '../storage/partition-store.js';
import { StreamMetrics } from '../metrics.js';
import { PIPELINE_HISTORY_SIZE, PipelineController, type StageDelivery, type StageHandle } from './controller.js';
import { until } from '@hadron/testing';

const SERVICE_CREATION = [
  { name: 'deploy-service' },
  { name: 'setup-billing', dependencies: ['deploy-service'] },
  { name: 'setup-monitoring', dependencies: ['deploy-service'] },
  { name: 'notify-user', dependencies: ['deploy-service'] },
  { name: 'cleanup', dependencies: ['deploy-service', 'setup-billing', 'setup-monitoring', 'notify-user'] },
];

function pipeline(over: Record<string, unknown> = {}, stages: unknown = SERVICE_CREATION): Pipeline {
  const r = parsePipeline({
    apiVersion: 'hadron.rs/v1beta1',
    kind: 'Pipeline',
    metadata: { name: 'service-creation' },
    spec: { sourceStream: 'events', triggers: ['service.created'], maxParallel: 50, startPoint: { location: 'beginning' }, stages, ...over },
  });
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.value;
}

const ev = (i: number, type = 'service.created'): Buffer =>
  encodeEvent({ id: `e${i}`, source: 'test', specversion: '1.0', type, optattrs: {}, data: Buffer.from(String(i)) });
const out = (stage: string, root: Buffer): Buffer =>
  encodeEvent({ id: decodeEvent(root).id, source: stage, specversion: '1.0', type: `${stage}.v1`, optattrs: {}, data: Buffer.alloc(0) });

const live: PipelineController[] = [];
afterEach(async () => {
  for (const c of live.splice(0)) await c.stop({ deleteState: false, reason: new Error('test over') });
});

function harness(p: Pipeline, opts: { ackDeadlineMs?: number; baseMs?: number } = {}) {
  const store = new MemoryStore();
  const metrics = new StreamMetrics({ namespace: 'ns', stream: 'events', statefulset: 'events', pod: 'events-0', partition: 0 });
  const make = (): PipelineController => {
    const c = new PipelineController(p.metadata.name, p, {
      store,
      logger: silentLogger,
      metrics,
      ackDeadlineMs: opts.ackDeadlineMs ?? 60_000,
      nackBackoff: { baseMs: opts.baseMs ?? 30, maxMs: 1000 },
      onFatal: (e) => {
        throw e;
      },
    });
    live.push(c);
    return c;
  };
  const ctl = make();
  function worker(c: PipelineController, stage: string) {
    const q = new AsyncQueue<StageDelivery & { at: number }>();
    const h: StageHandle = c.join(stage, { send: async (d) => q.push({ ...d, at: Date.now() }), fail: (e) => q.fail(e) });
    return { h, next: async () => (await q.next()).value as StageDelivery & { at: number }, pending: () => q.size };
  }
  return { store, metrics, ctl, make, worker };
}

/** Runs workers for every stage that ack with an output until `n` instances complete. */
async function runAll(h: ReturnType<typeof harness>, stages: string[], n: number, log: Array<{ stage: string; offset: number; inputs: string[] }>) {
  let completed = 0;
  const ws = stages.map((s) => ({ s, w: h.worker(h.ctl, s) }));
  const target = async (s: string, w: ReturnType<typeof h.worker>): Promise<void> => {
    for (;;) {
      const d = await w.next();
      log.push({ stage: s, offset: d.offset, inputs: d.inputs.map(([k, v]) => `${k}:${decodeEvent(v).source}`) });
      w.h.ack(out(s, d.root));
      if (s === 'cleanup' && ++completed === n) return;
    }
  };
  await Promise.race(ws.filter((x) => x.s === 'cleanup').map(({ s, w }) => target(s, w)).concat(ws.filter((x) => x.s !== 'cleanup').map(({ s, w }) => target(s, w))));
  return ws;
}

test('service-creation: triggers start instances; every stage runs once, in DAG order, with exactly its dependencies’ outputs', async () => {
  const h = harness(pipeline());
  await h.store.append([ev(1), ev(2, 'service.deleted'), ev(3), ev(4, 'service.created.v2'), ev(5)]);
  const log: Array<{ stage: string; offset: number; inputs: string[] }> = [];
  await runAll(h, SERVICE_CREATION.map((s) => s.name), 3, log);
  const instances = [...new Set(log.map((l) => l.offset))].sort();
  assert.deepEqual(instances, [1, 3, 5], 'only events whose type matches `service.created` (no prefix match)');
  for (const offset of instances) {
    const runs = log.filter((l) => l.offset === offset);
    assert.deepEqual(runs.map((r) => r.stage).sort(), SERVICE_CREATION.map((s) => s.name).sort(), `each stage exactly once for ${offset}`);
    const order = runs.map((r) => r.stage);
    assert.equal(order[0], 'deploy-service');
    assert.equal(order.at(-1), 'cleanup');
    for (const r of runs) {
      const deps = SERVICE_CREATION.find((s) => s.name === r.stage)!.dependencies ?? [];
      assert.deepEqual(r.inputs, deps.map((d) => `${d}:${d}`), `${r.stage} sees exactly its dependencies`);
    }
  }
  await new Promise((r) => setImmediate(r));
  assert.equal(h.ctl.activeCount, 0);
  assert.deepEqual(h.store.meta.scan('p/service-creation/a/'), [], 'completed instances are deleted');
  assert.deepEqual(h.store.meta.scan('p/service-creation/o/'), []);
  assert.equal(h.store.meta.get('p/service-creation/l')?.readUIntLE(0, 6), 5);
});

test('`after` orders stages without passing outputs', async () => {
  const h = harness(pipeline({}, [{ name: 'a' }, { name: 'b', after: ['a'] }]));
  await h.store.append([ev(1)]);
  const a = h.worker(h.ctl, 'a');
  const b = h.worker(h.ctl, 'b');
  const da = await a.next();
  assert.equal(b.pending(), 0, 'b waits for a');
  a.h.ack(out('a', da.root));
  const db = await b.next();
  assert.deepEqual(db.inputs, []);
});

test('maxParallel bounds active instances exactly', async () => {
  const h = harness(pipeline({ maxParallel: 3 }, [{ name: 'only' }]));
  await h.store.append(Array.from({ length: 20 }, (_, i) => ev(i + 1)));
  const ws = [h.worker(h.ctl, 'only'), h.worker(h.ctl, 'only'), h.worker(h.ctl, 'only'), h.worker(h.ctl, 'only'), h.worker(h.ctl, 'only')];
  let done = 0;
  let maxSeen = 0;
  await Promise.all(
    ws.map(async (w) => {
      while (done < 20) {
        const d = await Promise.race([w.next(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 300))]);
        if (!d) continue;
        maxSeen = Math.max(maxSeen, h.ctl.activeCount);
        assert.ok(h.ctl.activeCount <= 3, `active ${h.ctl.activeCount} ≤ 3`);
        w.h.ack(out('only', d.root));
        done++;
      }
    }),
  );
  assert.equal(maxSeen, 3, 'the bound is reached, not just respected');
});

test('start points: latest skips existing events; offset n starts at n', async () => {
  for (const [sp, expected] of [
    [{ location: 'latest' }, [4]],
    [{ location: 'offset', offset: 2 }, [2, 3, 4]],
    [{ location: 'beginning' }, [1, 2, 3, 4]],
  ] as const) {
    const store = new MemoryStore();
    await store.append([ev(1), ev(2), ev(3)]);
    const h = harness(pipeline({ startPoint: sp }, [{ name: 'only' }]));
    // reuse the harness' controller factory over this store
    const metrics = h.metrics;
    const ctl = new PipelineController('p', pipeline({ startPoint: sp }, [{ name: 'only' }]), {
      store,
      logger: silentLogger,
      metrics,
      ackDeadlineMs: 60_000,
      nackBackoff: { baseMs: 1, maxMs: 1 },
      onFatal: (e) => {
        throw e;
      },
    });
    await store.append([ev(4)]);
    const w = h.worker(ctl, 'only');
    const got: number[] = [];
    while (got.length < expected.length) {
      const d = await w.next();
      got.push(d.offset);
      w.h.ack(out('only', d.root));
    }
    assert.deepEqual(got, expected, JSON.stringify(sp));
    await ctl.stop({ deleteState: false, reason: new Error('done') });
  }
});

test('nack backs off and counts attempts; the ack deadline and a disconnect hand the stage to another worker', async () => {
  const h = harness(pipeline({}, [{ name: 'only' }]), { ackDeadlineMs: 150, baseMs: 60 });
  await h.store.append([ev(1)]);
  const a = h.worker(h.ctl, 'only');
  const d1 = await a.next();
  a.h.nack('try again');
  const d2 = await a.next();
  assert.equal(d2.attempt, 2);
  // Lower bounds only (the backoff/deadline happened), with a few ms of slack: Node timers are
  // scheduled on a monotonic clock and can fire up to ~1 ms early as Date.now() sees it.
  const SLACK = 5;
  assert.ok(d2.at - d1.at >= 60 - SLACK, `backoff ${d2.at - d1.at} ms`);
  const b = h.worker(h.ctl, 'only');
  // a stays silent: after the deadline b gets attempt 3
  const d3 = await b.next();
  assert.equal(d3.attempt, 3);
  assert.ok(d3.at - d2.at >= 150 - SLACK, `deadline ${d3.at - d2.at} ms`);
  const c = h.worker(h.ctl, 'only');
  b.h.leave();
  const d4 = await Promise.race([a.next(), c.next()]);
  assert.equal(d4.attempt, 4);
  const status = h.ctl.status();
  assert.deepEqual(status.instances[0]!.stages, [{ name: 'only', state: 'delivered', attempts: 4 }]);
  const text = await h.metrics.registry.metrics();
  assert.match(text, /hadron_pipeline_stage_redeliveries_total\{[^}]*reason="nack"[^}]*\} 1/);
  assert.match(text, /hadron_pipeline_stage_redeliveries_total\{[^}]*reason="timeout"[^}]*\} 1/);
  assert.match(text, /hadron_pipeline_stage_redeliveries_total\{[^}]*reason="disconnect"[^}]*\} 1/);
});

test('spec changes: an added stage runs for active instances; a removed stage’s outputs are deleted', async () => {
  const h = harness(pipeline({}, [{ name: 'a' }, { name: 'b', dependencies: ['a'] }]));
  await h.store.append([ev(1)]);
  const a = h.worker(h.ctl, 'a');
  const da = await a.next();
  a.h.ack(out('a', da.root));
  await new Promise((r) => setTimeout(r, 10));
  // add stage c (after a), remove nothing yet
  h.ctl.update(pipeline({}, [{ name: 'a' }, { name: 'b', dependencies: ['a'] }, { name: 'c', dependencies: ['a'] }]));
  const c = h.worker(h.ctl, 'c');
  const dc = await c.next();
  assert.equal(dc.offset, 1);
  assert.deepEqual(dc.inputs.map(([k]) => k), ['a']);
  c.h.ack(out('c', dc.root));
  await new Promise((r) => setTimeout(r, 10));
  assert.ok(h.store.meta.get('p/service-creation/o/00000000000000000001/c'));
  // remove c (and keep b pending): its stored output goes away
  h.ctl.update(pipeline({}, [{ name: 'a' }, { name: 'b', dependencies: ['a'] }]));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(h.store.meta.get('p/service-creation/o/00000000000000000001/c'), undefined);
  assert.ok(h.store.meta.get('p/service-creation/o/00000000000000000001/a'));
  // stopping with deleteState removes everything
  await h.ctl.stop({ deleteState: true, reason: new Error('deleted') });
  assert.deepEqual(h.store.meta.scan('p/service-creation/'), []);
});

test('recovery: a new controller over the same store resumes instances and never re-runs done stages', async () => {
  const h = harness(pipeline({}, [{ name: 'a' }, { name: 'b', dependencies: ['a'] }]));
  await h.store.append([ev(1), ev(2)]);
  const a = h.worker(h.ctl, 'a');
  for (let i = 0; i < 2; i++) {
    const d = await a.next();
    a.h.ack(out('a', d.root));
  }
  await new Promise((r) => setTimeout(r, 10));
  await h.ctl.stop({ deleteState: false, reason: new Error('crash') });
  const again = h.make();
  const a2 = h.worker(again, 'a');
  const b2 = h.worker(again, 'b');
  const got: number[] = [];
  for (let i = 0; i < 2; i++) {
    const d = await b2.next();
    got.push(d.offset);
    assert.deepEqual(d.inputs.map(([k, v]) => [k, decodeEvent(v).source]), [['a', 'a']], 'b gets a’s recovered output');
    b2.h.ack(out('b', d.root));
  }
  got.sort();
  assert.deepEqual(got, [1, 2]);
  assert.equal(a2.pending(), 0, 'stage a is not re-run');
});

test('an undecodable stored event is skipped by the trigger scan with a metric, not retried forever (issue 14 item 4)', async () => {
  const h = harness(pipeline());
  // A group wire type in an unknown field: reading its type used to throw and retry the scan every second.
  const poison = Buffer.concat([ev(1), Buffer.from([0x3b, 0x3c])]);
  await h.store.append([poison, ev(2)]);
  const w = h.worker(h.ctl, 'deploy-service');
  const d = await w.next();
  assert.equal(d.offset, 2, 'the first instance is the decodable event after the poison one');
  const skipped = (await h.metrics.protocol.undecodableSkipped.get()).values.find((v) => v.labels.kind === 'pipeline');
  assert.equal(skipped?.value, 1);
});

test('a stage ack naming another instance is ignored and counted; naming its own is applied (issue 14 item 9)', async () => {
  const h = harness(pipeline());
  await h.store.append([ev(1), ev(2)]);
  const w = h.worker(h.ctl, 'deploy-service');
  const d = await w.next();
  const other = d.offset === 1 ? 2 : 1;
  w.h.ack(out('deploy-service', d.root), other);
  const state = () => h.ctl.status().instances.find((i) => i.offset === d.offset)!.stages.find((s) => s.name === 'deploy-service')!.state;
  assert.equal(state(), 'delivered', 'the mismatched ack did not complete the stage');
  const mism = (await h.metrics.protocol.ackMismatches.get()).values.find((v) => v.labels.kind === 'pipeline');
  assert.equal(mism?.value, 1);
  w.h.ack(out('deploy-service', d.root), d.offset);
  const next = await w.next();
  assert.notEqual(next.offset, d.offset, 'the worker moved on to the other instance');
  assert.equal(state(), 'done');
});

test('status(): recently completed instances, newest first, bounded to PIPELINE_HISTORY_SIZE', async () => {
  const h = harness(pipeline({ maxParallel: 200 }, [{ name: 'only' }]));
  const n = PIPELINE_HISTORY_SIZE + 5;
  await h.store.append(Array.from({ length: n }, (_, i) => ev(i + 1)));
  const w = h.worker(h.ctl, 'only');
  for (let i = 0; i < n; i++) {
    const d = await w.next();
    w.h.ack(out('only', d.root));
  }
  await until(() => h.ctl.status().completed.length === PIPELINE_HISTORY_SIZE && h.ctl.status().instances.length === 0, 5000, 'all complete');
  const done = h.ctl.status().completed;
  assert.equal(done[0]!.offset, n, 'newest first');
  assert.equal(done[0]!.rootId, `e${n}`);
  assert.equal(done[done.length - 1]!.offset, 6, 'the oldest 5 were dropped');
  assert.deepEqual(done[0]!.stages, [{ name: 'only', state: 'done', attempts: 1 }]);
  assert.ok(done[0]!.completedAtMs > 0);
});
