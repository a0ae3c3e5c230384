import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SUSTAINED_SHARE, latencyResult, runOpenLoop, type OpenLoopResult } from './open-loop.js';
import type { WorkloadSpec } from '../types.js';
import { Samples } from './stats.js';
import { runWindowed } from './window.js';

test('percentiles are nearest-rank over all samples', () => {
  const s = new Samples();
  for (let i = 100_000; i >= 1; i--) s.add(i); // also exercises growth past the initial buffer
  const r = s.summary();
  assert.equal(r.samples, 100_000);
  assert.equal(r.p50, 50_000);
  assert.equal(r.p99, 99_000);
  assert.equal(r.p999, 99_900);
  assert.equal(r.max, 100_000);
});

test('runWindowed never exceeds the window and runs every operation once', async () => {
  let inFlight = 0;
  let peak = 0;
  const seen = new Set<number>();
  await runWindowed(50, 4, async (i) => {
    seen.add(i);
    peak = Math.max(peak, ++inFlight);
    await new Promise((r) => setTimeout(r, 1));
    inFlight--;
  });
  assert.equal(seen.size, 50);
  assert.equal(peak, 4);
});

test('runWindowed rejects with the first failure', async () => {
  await assert.rejects(
    runWindowed(10, 2, async (i) => {
      if (i === 3) throw new Error('boom');
    }),
    /boom/,
  );
});

test('open loop measures from the due time, so a stall shows in the latency', async () => {
  let stalled = false;
  const r = await runOpenLoop({
    rate: 2000,
    seconds: 0.3,
    warmupSeconds: 0,
    maxBatch: 10,
    maxOutstanding: 10_000,
    send: async (first) => {
      // One 50 ms stall: the events due meanwhile are late by up to 50 ms even though each
      // request, once sent, is answered at once.
      if (!stalled && first > 100) {
        stalled = true;
        const until = performance.now() + 50;
        while (performance.now() < until);
      }
    },
  });
  assert.equal(r.acked, 600);
  assert.equal(r.unsustainable, undefined);
  assert.ok(r.latency.summary().max >= 40, `max ${r.latency.summary().max} should reflect the stall`);
});

test('open loop gives up when answers stop coming', async () => {
  const r = await runOpenLoop({ rate: 5000, seconds: 1, warmupSeconds: 0, maxBatch: 10, maxOutstanding: 500, send: () => new Promise(() => {}) });
  assert.match(r.unsustainable ?? '', /does not sustain/);
});

test('a latency run that answered less than 95% of its offered rate is unsustained, not a p99 for that rate', () => {
  const spec = { id: 'hadron.latency.1k', system: 'hadron', kind: 'latency', title: 't', rate: 5000, eventSize: 1024, seconds: 2 } as WorkloadSpec;
  const run = (achievedRate: number, unsustainable?: string): OpenLoopResult => {
    const latency = new Samples();
    latency.add(3);
    return { latency, sendLag: new Samples(), sent: 10, acked: 10, achievedRate, ...(unsustainable ? { unsustainable } : {}) };
  };
  const how = { verified: 'checked', params: {}, notes: [] };
  const ok = latencyResult(spec, run(5000 * SUSTAINED_SHARE), how);
  assert.deepEqual([ok.status, ok.verified], ['ok', ['checked']]);
  // The open loop did not give up, but the answers came at 3,675/s of 5,000/s (a smoke run's Hadron row).
  const behind = latencyResult(spec, run(3675), how);
  assert.equal(behind.status, 'unsustained');
  assert.match(behind.reason!, /answered 3675\/s of the offered 5000\/s/);
  const gaveUp = latencyResult(spec, run(0, 'more than 25000 events unanswered'), how);
  assert.deepEqual([gaveUp.status, gaveUp.reason, gaveUp.verified], ['unsustained', 'more than 25000 events unanswered', []]);
});
