import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS, parseOptions } from './options.js';
import { compare, renderText } from './lib/report.js';
import { buildComparisons, buildWorkloads } from './workloads.js';
import { judgeStep, rateLabel, summarizeSweeps, sweepResults, sweepStopped, sweepTable } from './sweep.js';
import type { WorkloadResult } from './types.js';

/** A latency (or sweep step) result as the runners report it. */
const lat = (id: string, rate: number, p99: number, extra: Partial<WorkloadResult> = {}, achieved = rate): WorkloadResult => ({
  id,
  system: id.startsWith('hadron') ? 'hadron' : id.startsWith('nats') ? 'nats' : 'kafka',
  kind: id.includes('sweep') ? 'sweep' : 'latency',
  title: id,
  status: 'ok',
  events: 1,
  seconds: 1,
  eventsPerSec: achieved,
  mbPerSec: 0,
  latency: { samples: 1, mean: 1, p50: 1, p90: 1, p99, p999: p99, max: p99, offeredRate: rate, achievedRate: achieved, sendLagP99: 0 },
  verified: [],
  params: {},
  notes: [],
  ...extra,
});

test('--rates gives latency rows per rate: the first keeps the plain ids, the others a rate suffix; --rate N is one rate', () => {
  assert.deepEqual(parseOptions([], {}).rates, [20_000, 50_000]);
  const ids = (argv: string[]): string[] => buildWorkloads(parseOptions([...argv, '--only', 'latency', '--skip', 'repl'], {})).map((s) => `${s.id}@${s.rate}`);
  assert.deepEqual(ids([]), [
    'hadron.latency.1k@20000',
    'nats.js-latency.1k@20000',
    'nats.core-latency.1k@20000',
    'hadron.latency.1k.50k@50000',
    'nats.js-latency.1k.50k@50000',
    'nats.core-latency.1k.50k@50000',
    'kafka.java-latency.1k@20000',
    'kafka.java-latency-fsync.1k@20000',
    'kafka.java-latency.1k.50k@50000',
    'kafka.java-latency-fsync.1k.50k@50000',
  ]);
  const one = parseOptions(['--rate', '30000'], {});
  assert.deepEqual([one.rates, one.rate], [[30_000], 30_000]);
  assert.deepEqual(ids(['--rate', '30000']).slice(0, 3), ['hadron.latency.1k@30000', 'nats.js-latency.1k@30000', 'nats.core-latency.1k@30000']);
  assert.deepEqual(ids(['--rates', '2000,2500']).slice(0, 4), ['hadron.latency.1k@2000', 'nats.js-latency.1k@2000', 'nats.core-latency.1k@2000', 'hadron.latency.1k.2.5k@2500']);
  assert.deepEqual(parseOptions([], { BENCH_RATES: '1000,5000' }).rates, [1000, 5000]);
  // The replication latency rows run at the first rate only.
  const repl = buildWorkloads(parseOptions(['--rates', '7000,9000', '--only', 'repl-latency'], {}));
  assert.ok(repl.length > 0 && repl.every((s) => s.rate === 7000));
  // A p99 ratio row per rate, for NATS and Kafka, each naming workloads that exist.
  const o = parseOptions([], {});
  const all = new Set(buildWorkloads(o).flatMap((s) => [s.id, ...(s.sweep ? [s.sweep] : [])]));
  const p99 = buildComparisons(o).filter((c) => c.title.startsWith('p99 latency'));
  assert.deepEqual(p99.map((c) => c.title), ['p99 latency @ 20000/s', 'p99 latency @ 50000/s', 'p99 latency @ 20000/s vs Kafka', 'p99 latency @ 50000/s vs Kafka']);
  for (const c of buildComparisons(o)) for (const id of [c.hadron, ...c.nats.map((n) => n.id)]) assert.ok(all.has(id), `${c.title}: ${id}`);
});

test('bad --rates / --sweep-rates fail with a message naming the flag', () => {
  assert.throws(() => parseOptions(['--rates', '20000,lots'], {}), /--rates must be a comma-separated list of positive integers/);
  assert.throws(() => parseOptions(['--rates', '20000,20000'], {}), /--rates names a rate twice/);
  assert.throws(() => parseOptions(['--rate', '1,2'], {}), /--rate must be a positive integer.*--rates/);
  assert.throws(() => parseOptions(['--sweep-rates', '10000,5000'], {}), /--sweep-rates must be increasing/);
  assert.throws(() => parseOptions(['--sweep-p99-ms', '0'], {}), /--sweep-p99-ms must be a positive integer/);
  assert.throws(() => parseOptions([], { BENCH_SWEEP_RATES: '5000,-1' }), /BENCH_SWEEP_RATES/);
});

test('--only sweep selects the sweep steps of every system, in increasing rate, and no latency row; --only latency no sweep step', () => {
  const o = parseOptions(['--only', 'sweep', '--sweep-rates', '1000,2000', '--sweep-seconds', '3', '--sweep-warmup-seconds', '1'], {});
  const specs = buildWorkloads(o);
  assert.deepEqual(
    specs.map((s) => [s.id, s.runner, s.rate, s.sweep]),
    [
      ['hadron.sweep.1k.1k', 'hadron.latency', 1000, 'hadron.sweep.1k'],
      ['hadron.sweep.1k.2k', 'hadron.latency', 2000, 'hadron.sweep.1k'],
      ['nats.js-sweep.1k.1k', 'nats.js-latency', 1000, 'nats.js-sweep.1k'],
      ['nats.js-sweep.1k.2k', 'nats.js-latency', 2000, 'nats.js-sweep.1k'],
      ['nats.core-sweep.1k.1k', 'nats.core-latency', 1000, 'nats.core-sweep.1k'],
      ['nats.core-sweep.1k.2k', 'nats.core-latency', 2000, 'nats.core-sweep.1k'],
      ['kafka.java-sweep.1k.1k', 'kafka.java-latency', 1000, 'kafka.java-sweep.1k'],
      ['kafka.java-sweep.1k.2k', 'kafka.java-latency', 2000, 'kafka.java-sweep.1k'],
      ['kafka.java-sweep-fsync.1k.1k', 'kafka.java-latency-fsync', 1000, 'kafka.java-sweep-fsync.1k'],
      ['kafka.java-sweep-fsync.1k.2k', 'kafka.java-latency-fsync', 2000, 'kafka.java-sweep-fsync.1k'],
    ],
  );
  // The same load shape as the latency rows: Hadron ≤ latency-batch per request, the peers one at a time; 1 KiB; one partition.
  for (const s of specs) assert.deepEqual([s.kind, s.seconds, s.warmupSeconds, s.eventSize, s.partitions, s.batch], ['sweep', 3, 1, 1024, 1, s.system === 'hadron' ? DEFAULTS.latencyBatch : 1]);
  assert.ok(!buildWorkloads(parseOptions(['--only', 'latency'], {})).some((s) => s.kind === 'sweep'));
  assert.deepEqual([rateLabel(150_000), rateLabel(2500), rateLabel(500), rateLabel(1234)], ['150k', '2.5k', '500', '1234']);
});

test('a sweep step passes only when sustained with p99 within the bound; the sweep stops at its first miss', () => {
  assert.equal(judgeStep(lat('hadron.sweep.1k.5k', 5000, 10), 10).pass, true, 'p99 = bound passes');
  assert.match(judgeStep(lat('hadron.sweep.1k.5k', 5000, 10.01), 10).why, /p99 10\.01 ms > 10 ms/);
  // p99 fine but the rate not reached (e.g. Kafka's throttled tool fell behind): a miss.
  const behind = judgeStep(lat('kafka.java-sweep.1k.5k', 5000, 3, {}, 4000), 10);
  assert.deepEqual([behind.pass, /not sustained \(achieved 4000\/s of 5000\/s\)/.test(behind.why)], [false, true]);
  assert.equal(judgeStep(lat('hadron.sweep.1k.5k', 5000, 3, { status: 'unsustained', reason: 'more than 25000 events unanswered' }), 10).pass, false);
  assert.match(judgeStep(lat('hadron.sweep.1k.5k', 5000, 3, { status: 'failed', reason: 'crashed' }), 10).why, /^failed: crashed/);
  // NaN percentiles arrive as null over IPC: no number, no pass.
  const none = JSON.parse(JSON.stringify(lat('hadron.sweep.1k.5k', 5000, NaN))) as WorkloadResult;
  assert.equal(judgeStep(none, 10).pass, false);

  const done = [lat('hadron.sweep.1k.5k', 5000, 2), lat('nats.js-sweep.1k.5k', 5000, 4), lat('nats.js-sweep.1k.10k', 10_000, 12)];
  assert.equal(sweepStopped('hadron.sweep.1k', done, 10), false);
  assert.equal(sweepStopped('nats.js-sweep.1k', done, 10), true);
  assert.equal(sweepStopped('nats.core-sweep.1k', done, 10), false);
  // Another sweep's id that shares a prefix is not this sweep.
  assert.equal(sweepStopped('kafka.java-sweep.1k', [lat('kafka.java-sweep-fsync.1k.5k', 5000, 50)], 10), false);
  // A plain latency row is not a sweep step.
  assert.equal(sweepStopped('hadron.sweep.1k', [lat('hadron.latency.1k', 5000, 50)], 10), false);
});

test('the summary is the highest rate before the first miss; ratios compare those rates; the table shows each step', () => {
  const o = { ...DEFAULTS, sweepRates: [5000, 10_000, 20_000], sweepP99Ms: 10 };
  const results = [
    lat('hadron.sweep.1k.5k', 5000, 2),
    lat('hadron.sweep.1k.10k', 10_000, 4),
    lat('hadron.sweep.1k.20k', 20_000, 30),
    lat('nats.js-sweep.1k.5k', 5000, 3),
    lat('nats.js-sweep.1k.10k', 10_000, 3, { status: 'unsustained', reason: 'x' }),
    lat('nats.core-sweep.1k.5k', 5000, 1),
    lat('nats.core-sweep.1k.10k', 10_000, 1),
    lat('nats.core-sweep.1k.20k', 20_000, 2),
    lat('kafka.java-sweep.1k.5k', 5000, 40),
  ];
  const sums = summarizeSweeps(o, results);
  assert.deepEqual(
    sums.map((s) => [s.id, s.highest, s.capped, s.stoppedAt?.rate, s.steps.length]),
    [
      ['hadron.sweep.1k', 10_000, false, 20_000, 3],
      ['nats.js-sweep.1k', 5000, false, 10_000, 2],
      ['nats.core-sweep.1k', 20_000, true, undefined, 3],
      ['kafka.java-sweep.1k', undefined, false, 5000, 1],
    ],
  );
  const rows = compare(buildComparisons(o), [...results, ...sweepResults(sums)]);
  const nats = rows.find((r) => r.title === 'highest rate with p99 ≤ 10 ms vs NATS')!;
  assert.deepEqual([nats.hadron, ...nats.peers.map((p) => p.ratio)], [10_000, 2, 0.5]);
  assert.equal(nats.verdict, 'MET vs js.publish only');
  // Kafka missed at its first step: no number, so no ratio (not a division by zero).
  const kafka = rows.find((r) => r.title === 'highest rate with p99 ≤ 10 ms vs Kafka')!;
  assert.deepEqual(kafka.peers.map((p) => [p.value, p.ratio]), [
    [undefined, undefined],
    [undefined, undefined],
  ]);
  const table = sweepTable(o, sums);
  assert.deepEqual(table[0], ['system', 'highest rate, p99 ≤ 10 ms', '5k/s', '10k/s', '20k/s', 'stopped by']);
  assert.deepEqual(table[1]!.slice(0, 5), ['Hadron (raw gRPC, fsync)', '10,000/s', '2.00', '4.00', '30.0 ✗']);
  assert.deepEqual(table[2]!.slice(1, 5), ['5,000/s', '3.00', 'unsust. 3.00 ✗', '']);
  assert.deepEqual(table[3]!.slice(1, 2).concat(table[3]!.slice(-1)), ['≥ 20,000/s', 'every step passed']);
  assert.deepEqual(table[4]!.slice(1, 3), ['< 5000/s', '40.0 ✗']);
  assert.doesNotMatch(renderText([], rows), /NaN|Infinity/);
});

test('the ratio table marks a p99 whose run did not sustain its rate', () => {
  const o = { ...DEFAULTS, sizes: [1024], partitions: [1] };
  const rows = compare(buildComparisons(o), [
    lat('hadron.latency.1k.50k', 50_000, 900, { status: 'unsustained', reason: 'answered 30000/s of the offered 50000/s' }, 30_000),
    lat('nats.js-latency.1k.50k', 50_000, 8),
    lat('nats.core-latency.1k.50k', 50_000, 4),
  ]);
  const row = rows.find((r) => r.title === 'p99 latency @ 50000/s')!;
  assert.equal(row.hadronUnsustained, true);
  assert.match(row.verdict, /rate not sustained/);
  assert.match(renderText([], [row]), /900 ms \(unsustained\) +8\.00 ms js\.publish/);
});
