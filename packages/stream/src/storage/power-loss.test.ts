/**
 * Simulated power loss (issue 14 item 3): seeded trials of the partition server's storage, a
 * durable consumer group and a two-stage pipeline running over SimFs. Each trial runs a few
 * "process lifetimes" (epochs); each epoch publishes concurrently (fsync and not) while the group
 * and the pipeline consume, then loses power at a random file-system operation — dropping all
 * unsynced data, keeping a random part of it, tearing writes — or shuts down cleanly (and then
 * possibly loses power). After every restart and at the end it asserts:
 *   - no acknowledged (fsync:true) event is lost; offsets are dense; bytes are identical;
 *   - recovery never refuses to start (every state a power loss leaves is recoverable);
 *   - no stored progress lies beyond the log (nothing needed clamping), and a stored pipeline
 *     instance always holds exactly the event at its offset;
 *   - in the end the durable group and the pipeline have received every event of the final log,
 *     with its final bytes (nothing skipped).
 *
 * Deterministic per seed (a seeded PRNG drives the workload, the crash point and what a power loss
 * keeps). Env: HADRON_POWERLOSS_TRIALS (default 300), HADRON_POWERLOSS_SEED (replay one seed),
 * HADRON_POWERLOSS_BASE_SEED (first seed, default 1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePipeline, silentLogger, type Pipeline } from '@hadron/core';
import { decodeEvent, encodeEvent } from '@hadron/proto';
import { until } from '@hadron/testing';
import { FileStore } from './partition-store.js';
import { SimFs, seededRandom } from './sim-fs.js';
import { metaKeys } from './layout.js';
import { Subscriptions, type MemberHandle } from '../subscriptions.js';
import { PipelineController, type StageHandle } from '../pipelines/controller.js';
import { StreamMetrics } from '../metrics.js';

const DIR = '/data/events-0';
const TRIALS = Number(process.env.HADRON_POWERLOSS_TRIALS ?? 300);
const ONE_SEED = process.env.HADRON_POWERLOSS_SEED;
const BASE_SEED = Number(process.env.HADRON_POWERLOSS_BASE_SEED ?? 1);

const metrics = new StreamMetrics({ namespace: 'ns', stream: 'events', statefulset: 'events', pod: 'events-0', partition: 0 });

const PIPELINE: Pipeline = (() => {
  const r = parsePipeline({
    apiVersion: 'hadron.rs/v1beta1',
    kind: 'Pipeline',
    metadata: { name: 'p' },
    spec: {
      sourceStream: 'events',
      triggers: ['service.created'],
      maxParallel: 8,
      startPoint: { location: 'beginning' },
      stages: [{ name: 'a' }, { name: 'b', dependencies: ['a'] }],
    },
  });
  if (!r.ok) throw new Error(r.errors.join('; '));
  return r.value;
})();

/** The payloads as views of one exact-size buffer, as a publish request delivers them. */
function oneRequest(payloads: readonly Uint8Array[]): Buffer[] {
  const buf = Buffer.allocUnsafeSlow(payloads.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  return payloads.map((p) => {
    buf.set(p, pos);
    pos += p.length;
    return buf.subarray(pos - p.length, pos);
  });
}

async function readAll(store: FileStore): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let next = 1; next <= store.lastOffset; ) {
    const got = await store.readFrom(next, { maxEvents: 1000 });
    if (got.length === 0) break;
    for (const e of got) {
      assert.equal(e.offset, next, 'offsets are dense');
      out.push(Buffer.from(e.payload));
      next++;
    }
  }
  return out;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

async function trial(seed: number): Promise<{ epochs: number; events: number; crashes: number }> {
  const rng = seededRandom(seed);
  const sim = new SimFs({ rng: seededRandom(seed * 7919 + 17) });
  // Mostly small segments (many rolls), sometimes large ones (long stretches without a roll).
  const segmentBytes = 1024 + Math.floor(rng() ** 2 * 32 * 1024);
  const epochs = 2 + Math.floor(rng() * 3);
  /** Payload at each offset (index offset-1): what is known durable, then what this epoch wrote. */
  let expected: Buffer[] = [];
  let acked = 0;
  let counter = 0;
  const groupSaw = new Map<number, Buffer>();
  const pipelineSaw = new Map<string, Buffer>(); // `${stage}@${offset}` → root last delivered

  for (let epoch = 0; epoch < epochs; epoch++) {
    const final = epoch === epochs - 1;
    const view = sim.view();
    const store = await FileStore.open(DIR, { logger: silentLogger, fs: view, segmentBytes, flushIntervalMs: 600_000, onFatal: () => undefined });
    // --- recovery checks
    assert.ok(store.lastOffset >= acked, `acknowledged event lost: log ends at ${store.lastOffset}, acked up to ${acked}`);
    const content = await readAll(store);
    assert.equal(content.length, store.lastOffset);
    content.forEach((b, i) => assert.ok(b.equals(expected[i]!), `bytes at offset ${i + 1} differ from what was written`));
    expected = content;
    assert.equal(store.recovery.clampedProgress, 0, 'stored progress lay beyond the end of the log');
    for (const g of store.durableGroups()) assert.ok(g.offset <= store.lastOffset);
    for (const [k, v] of store.meta.scan(`${metaKeys.pipelinePrefix('p')}a/`)) {
      const o = Number(k.slice(-20));
      assert.ok(v.equals(expected[o - 1]!), `pipeline instance at ${o} holds the event at ${o}`);
    }

    // --- consumers (in some epochs none: then little gets synced besides fsync publishes, and
    // power losses leave more unsynced and torn data behind)
    const consumers = final || rng() < 0.6;
    const subs = new Subscriptions({
      store,
      metrics,
      logger: silentLogger,
      ackDeadlineMs: 600_000,
      nackBackoff: { baseMs: 1, maxMs: 1 },
      maxDeliveryBytes: 64 * 1024,
      onFatal: () => undefined,
    });
    let member: MemberHandle | undefined;
    let ackOnJoin = false;
    if (consumers)
      member = await subs.join(
      { group: 'g', durable: true, maxBatchSize: 1 + Math.floor(rng() * 20), start: { kind: 'beginning' } },
      {
        send: async (d) => {
          for (const e of d.events) groupSaw.set(e.offset, Buffer.from(e.payload));
          queueMicrotask(() => {
            if (member) member.ack();
            else ackOnJoin = true; // delivered before join() returned
          });
        },
        fail: () => undefined,
      },
    ).catch(() => undefined); // a power loss may cut the group's creation
    if (ackOnJoin) member?.ack();
    const ctl = consumers
      ? new PipelineController('p', PIPELINE, { store, logger: silentLogger, metrics, ackDeadlineMs: 600_000, nackBackoff: { baseMs: 1, maxMs: 1 }, onFatal: () => undefined })
      : undefined;
    ctl?.scan();
    for (const stage of ctl ? ['a', 'b'] : []) {
      let h: StageHandle | undefined;
      h = ctl!.join(stage, {
        send: async (d) => {
          pipelineSaw.set(`${stage}@${d.offset}`, Buffer.from(d.root));
          const id = decodeEvent(d.root).id;
          queueMicrotask(() => h?.ack(encodeEvent({ id, source: stage, specversion: '1.0', type: `${stage}.done`, optattrs: {}, data: Buffer.alloc(0) })));
        },
        fail: () => undefined,
      });
    }

    // --- workload, until the power goes (at a random operation) or the steps run out
    const losses = sim.powerLosses;
    // Crash points biased early: right after a start is where recovery's own writes are exposed.
    if (!final) sim.crashAtOp = sim.opCount + 1 + Math.floor(rng() ** 2 * 300);
    const steps = 3 + Math.floor(rng() * 15);
    for (let s = 0; s < steps && sim.powerLosses === losses; s++) {
      const appends: Array<Promise<unknown>> = [];
      for (let n = 1 + Math.floor(rng() * 3); n > 0; n--) {
        const count = 1 + Math.floor(rng() * 5);
        const fsync = rng() < 0.5;
        // Half the appends look like a publish request's: larger events viewing one request
        // buffer, which the log writes in place instead of copying (record-batch.ts).
        const asRequest = rng() < 0.5;
        const payloads = Array.from({ length: count }, () => {
          const i = counter++;
          const type = rng() < 0.6 ? 'service.created' : 'other.thing';
          return encodeEvent({ id: `s${seed}-${i}`, source: 'trial', specversion: '1.0', type, optattrs: {}, data: Buffer.alloc(Math.floor(rng() * (asRequest ? 1200 : 200)), i % 256) });
        });
        const first = expected.length + 1;
        expected.push(...payloads.map((p) => Buffer.from(p)));
        appends.push(
          store.append(asRequest ? oneRequest(payloads) : payloads, { fsync }).then((r) => {
            assert.deepEqual(r, { first, last: first + count - 1 }, 'offsets follow call order');
            if (fsync) acked = Math.max(acked, r.last);
          }),
        );
      }
      const results = await Promise.allSettled(appends);
      for (const r of results) if (r.status === 'rejected' && sim.powerLosses === losses) throw r.reason;
      for (let t = Math.floor(rng() * 4); t > 0; t--) await tick();
    }

    if (final) {
      // Everything published must reach the group and every stage, with its final bytes.
      const last = store.lastOffset;
      // Everything runs on microtasks and immediates over SimFs: drain by turns of the event
      // loop (bounded), which keeps the trial deterministic and fast.
      const drained = (): boolean => subs.describe().find((g) => g.name === 'g')?.offset === last && ctl!.status().lastOffsetProcessed === last && ctl!.activeCount === 0;
      for (let t = 0; t < 100_000 && !drained(); t++) await tick();
      if (!drained()) await until(drained, 10_000, `group and pipeline to reach offset ${last}`);
      const content = await readAll(store);
      for (let o = 1; o <= last; o++) {
        assert.ok(groupSaw.get(o)?.equals(content[o - 1]!), `durable group skipped offset ${o}`);
        if (decodeEvent(content[o - 1]!).type !== 'service.created') continue;
        for (const stage of ['a', 'b']) assert.ok(pipelineSaw.get(`${stage}@${o}`)?.equals(content[o - 1]!), `pipeline stage ${stage} skipped offset ${o}`);
      }
      subs.close();
      await ctl!.stop({ deleteState: false, reason: new Error('trial over') });
      await store.close();
      return { epochs, events: last, crashes: sim.powerLosses };
    }
    if (sim.powerLosses === losses) {
      sim.crashAtOp = Infinity;
      if (rng() < 0.3) {
        // A clean shutdown, then perhaps a power loss (it must lose nothing).
        subs.close();
        await ctl?.stop({ deleteState: false, reason: new Error('epoch over') });
        await store.close();
        acked = store.lastOffset;
        if (rng() < 0.5) sim.powerLoss();
        continue;
      }
      sim.powerLoss();
    }
    // The process is dead: stop its timers; its file handles fail from now on.
    subs.close();
    await ctl?.stop({ deleteState: false, reason: new Error('power lost') }).catch(() => undefined);
    await store.close().catch(() => undefined);
  }
  throw new Error('unreachable');
}

test(`simulated power loss: ${ONE_SEED ? `seed ${ONE_SEED}` : `${TRIALS} seeded trials`} of storage, a durable group and a pipeline`, async () => {
  const seeds = ONE_SEED ? [Number(ONE_SEED)] : Array.from({ length: TRIALS }, (_, i) => BASE_SEED + i);
  const started = Date.now();
  let events = 0;
  let crashes = 0;
  for (const seed of seeds) {
    try {
      const r = await trial(seed);
      events += r.events;
      crashes += r.crashes;
    } catch (err) {
      assert.fail(`power-loss trial failed for seed ${seed} (replay: HADRON_POWERLOSS_SEED=${seed} node scripts/test.mjs power-loss): ${(err as Error).stack ?? String(err)}`);
    }
  }
  // Reported, not asserted: the figures documented in docs/storage.md come from here.
  console.log(`power-loss: ${seeds.length} trials, ${crashes} power losses, ${events} events in final logs, ${Date.now() - started} ms`);
  assert.ok(crashes > seeds.length / 2, `power was lost in most trials (${crashes} losses)`);
});
