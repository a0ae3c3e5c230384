import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS, parseOptions } from './options.js';
import { compare, renderText } from './lib/report.js';
import { buildComparisons, buildWorkloads } from './workloads.js';
import { parseProducerPerformance } from './kafka/java-perf.js';
import type { WorkloadResult } from './types.js';
import { metricValue, rssBytes } from './hadron/rss.js';
import { describePlan, planCpus } from './lib/pin.js';

test('defaults are the full sizes', () => {
  const o = parseOptions([], {});
  assert.equal(o.events, 1_000_000);
  assert.deepEqual(o.sizes, [1024, 256]);
  assert.deepEqual(o.partitions, [1, 3]);
  // 35 + 18 replication rows (r = 1, 2, 3 × ALL, MAJORITY, NONE × throughput, latency).
  assert.equal(buildWorkloads(o).length, 53);
  assert.equal(buildWorkloads(o).filter((s) => s.system === 'kafka').length, 11);
});

const replRows = (what: 'publish' | 'latency'): string[] => [1, 2, 3].flatMap((r) => ['all', 'majority', 'none'].map((a) => `hadron.repl-${what}.1k.r${r}.${a}`));

test('flags and BENCH_ variables select workloads and sizes; flags win', () => {
  const o = parseOptions(['--only', 'publish', '--events=20000', '--sizes', '1024', '--partitions', '1'], { BENCH_EVENTS: '5', BENCH_WINDOW: '2' });
  assert.equal(o.events, 20_000);
  assert.equal(o.window, 2);
  assert.deepEqual(
    buildWorkloads(o).map((s) => s.id),
    // "publish" is a kind and part of the client workload's id: every kind of publish runs
    // (the HTTP ingress rows are publish workloads too).
    [
      'hadron.publish.1k.p1',
      'nats.js-publish.1k.s1',
      'nats.core-publish.1k.s1',
      'hadron.client-publish.1k.p1',
      'hadron.http-batched.1k.p1',
      'hadron.http-single.1k.p1',
      ...replRows('publish'),
      'kafka.java-publish.1k.p1',
      'kafka.js-publish.1k.p1',
      'kafka.java-publish-fsync.1k.p1',
      'kafka.js-publish-fsync.1k.p1',
    ],
  );
  assert.deepEqual(
    buildWorkloads(parseOptions(['--only', 'hadron', '--skip', 'publish,client'], {})).map((s) => s.id),
    ['hadron.trigger.1k.par1', 'hadron.trigger.1k.par16', 'hadron.latency.1k', ...replRows('latency'), 'hadron.drain.1k', 'hadron.pipeline.5stage'],
  );
});

test('bad flags fail with a message naming them', () => {
  assert.throws(() => parseOptions(['--events', 'lots'], {}), /--events must be a positive integer/);
  assert.throws(() => parseOptions(['--frobnicate'], {}), /unknown flag --frobnicate/);
  assert.throws(() => parseOptions([], { BENCH_RATE: '-1' }), /BENCH_RATE/);
});

const result = (id: string, eventsPerSec: number, extra: Partial<WorkloadResult> = {}): WorkloadResult => ({
  id,
  system: id.startsWith('hadron') ? 'hadron' : 'nats',
  kind: 'publish',
  title: id,
  status: 'ok',
  events: 1,
  seconds: 1,
  eventsPerSec,
  mbPerSec: 0,
  verified: [],
  params: {},
  notes: [],
  ...extra,
});

test('ratios are Hadron ÷ NATS for throughput and NATS ÷ Hadron for p99, against the targets', () => {
  const o = { ...DEFAULTS, sizes: [1024], partitions: [1] };
  const lat = (id: string, p99: number): WorkloadResult =>
    result(id, 20_000, { kind: 'latency', latency: { samples: 1, mean: 1, p50: 1, p90: 1, p99, p999: p99, max: p99, offeredRate: 20_000, achievedRate: 20_000, sendLagP99: 0 } });
  const rows = compare(buildComparisons(o), [
    result('hadron.publish.1k.p1', 150_000),
    result('nats.js-publish.1k.s1', 30_000),
    result('nats.core-publish.1k.s1', 120_000),
    lat('hadron.latency.1k', 4),
    lat('nats.js-latency.1k', 20),
    result('nats.core-latency.1k', 0, { status: 'failed', reason: 'x' }),
  ]);
  const pub = rows.find((r) => r.title === 'publish 1 KiB × 1')!;
  assert.deepEqual(pub.peers.map((p) => p.ratio), [5, 1.25]);
  assert.equal(pub.verdict, 'MET vs js.publish only');
  const p99 = rows.find((r) => r.metric === 'p99')!;
  assert.equal(p99.peers[0]!.ratio, 5);
  assert.equal(p99.peers[1]!.ratio, undefined);
  assert.match(p99.verdict, /^MET/);
});

test('Kafka rows: Hadron ÷ Kafka as deployed by default and with flush.messages=1; every compared id is a workload', () => {
  const o = { ...DEFAULTS, sizes: [1024], partitions: [1] };
  const ids = new Set(buildWorkloads(o).map((s) => s.id));
  for (const c of buildComparisons(o)) for (const id of [c.hadron, ...c.nats.map((n) => n.id)]) assert.ok(ids.has(id), `${c.title}: ${id} is a workload`);
  const rows = compare(buildComparisons(o), [result('hadron.publish.1k.p1', 150_000), result('kafka.java-publish.1k.p1', 100_000), result('kafka.java-publish-fsync.1k.p1', 50_000)]);
  const k = rows.find((r) => r.title === 'publish 1 KiB × 1 vs Kafka Java')!;
  assert.deepEqual(k.peers.map((p) => [p.label, p.ratio]), [
    ['Kafka', 1.5],
    ['Kafka fsync', 3],
  ]);
  assert.match(k.verdict, /^MET/);
});

test("ProducerPerformance's final line is parsed; a progress line is not", () => {
  const out = [
    '98785 records sent, 19749.1 records/sec (19.29 MB/sec), 12.3 ms avg latency, 240.0 ms max latency.',
    '300000 records sent, 19998.400128 records/sec (19.53 MB/sec), 4.66 ms avg latency, 333.00 ms max latency, 2 ms 50th, 10 ms 95th, 331 ms 99th, 333 ms 99.9th.',
  ].join('\n');
  assert.deepEqual(parseProducerPerformance(out), { records: 300000, perSec: 19998.400128, avgMs: 4.66, maxMs: 333, p50: 2, p95: 10, p99: 331, p999: 333 });
  assert.equal(parseProducerPerformance(out.split('\n')[0]!), undefined);
});

test('rssBytes reads the labelled process_resident_memory_bytes line of a server scrape', () => {
  const text = '# HELP process_resident_memory_bytes x\nprocess_resident_memory_bytes{namespace="default",partition="0"} 73728000\nnodejs_heap_size_total_bytes{partition="0"} 1\n';
  assert.equal(rssBytes(text), 73_728_000);
  assert.equal(rssBytes('process_resident_memory_bytes 1.5e+08\n'), 150_000_000);
  assert.equal(rssBytes('nodejs_heap_size_total_bytes 5\n'), undefined);
});

test('the report renders unsustained latency runs with no answered event (null percentiles after IPC)', () => {
  const o = { ...DEFAULTS, sizes: [1024], partitions: [1] };
  // What run.js receives over IPC from such a run: NaN became null.
  const empty = JSON.parse(
    JSON.stringify(
      result('hadron.latency.1k', 0, {
        kind: 'latency',
        status: 'unsustained',
        reason: 'not sustained',
        latency: { samples: 0, mean: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, offeredRate: 20_000, achievedRate: 0, sendLagP99: 5 },
      }),
    ),
  ) as WorkloadResult;
  const lat = result('nats.core-latency.1k', 20_000, { kind: 'latency', latency: { samples: 1, mean: 1, p50: 1, p90: 1, p99: 3, p999: 3, max: 3, offeredRate: 20_000, achievedRate: 20_000, sendLagP99: 0 } });
  const results = [empty, lat];
  const text = renderText(results, compare(buildComparisons(o), results));
  assert.match(text, /hadron\.latency\.1k/);
  assert.doesNotMatch(text, /NaN|null/);
});

test('--no-pin / BENCH_NO_PIN turn CPU pinning off; it is on by default', () => {
  assert.equal(parseOptions([], {}).pin, true);
  assert.equal(parseOptions(['--no-pin', '--only', 'latency'], {}).pin, false);
  assert.equal(parseOptions([], { BENCH_NO_PIN: '1' }).pin, false);
  assert.deepEqual(parseOptions(['--no-pin', '--only', 'latency'], {}).only, ['latency'], '--no-pin takes no value');
});

test('CPU pinning plan: the generator gets the last allowed CPU, the servers the others; the header says so', () => {
  const off = planCpus(false);
  assert.ok('none' in off);
  assert.match(describePlan(off), /not pinned \(--no-pin\)/);
  const plan = planCpus(true);
  if ('none' in plan) {
    assert.match(describePlan(plan), /^CPU pinning: not pinned/);
  } else {
    assert.ok(!plan.servers.split(',').includes(plan.generator), 'disjoint CPU sets');
    assert.match(describePlan(plan), new RegExp(`load generator on CPU ${plan.generator}, servers on CPU ${plan.servers}`));
  }
});

test('server CPU and GC figures are read from the prom-client text', () => {
  const text = ['process_cpu_seconds_total{stream="s",partition="0"} 12.5', 'nodejs_gc_duration_seconds_count{stream="s",kind="minor"} 40', 'nodejs_gc_duration_seconds_count{stream="s",kind="major"} 3', 'plain_metric 7'].join('\n');
  assert.equal(metricValue(text, 'process_cpu_seconds_total'), 12.5);
  assert.equal(metricValue(text, 'nodejs_gc_duration_seconds_count', 'kind="major"'), 3);
  assert.equal(metricValue(text, 'plain_metric'), 7);
  assert.equal(metricValue(text, 'missing_metric'), undefined);
});
