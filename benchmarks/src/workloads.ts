/**
 * The workload matrix: which runs exist, with what parameters, and the comparisons between them.
 * Ids read `system.what.size[.partitions]`, e.g. `hadron.publish.1k.p3`, `nats.js-publish.256b.s1`.
 */
import path from 'node:path';
import type { BenchOptions } from './options.js';
import type { WorkloadSpec } from './types.js';
import { rateLabel, sweepSpecs } from './sweep.js';

export function sizeLabel(bytes: number): string {
  return bytes % 1024 === 0 ? `${bytes / 1024}k` : `${bytes}b`;
}
function sizeText(bytes: number): string {
  return bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} B`;
}

/** The id suffix of the latency rows at `rate`: none for the first of --rates, else `.50k`. */
export function latencySuffix(o: Pick<BenchOptions, 'rates'>, rate: number): string {
  return rate === o.rates[0] ? '' : `.${rateLabel(rate)}`;
}

export function buildWorkloads(o: BenchOptions): WorkloadSpec[] {
  const base = {
    batch: o.batch,
    window: o.window,
    rate: o.rate,
    seconds: o.latencySeconds,
    warmupSeconds: o.warmupSeconds,
    maxBatch: o.drainBatch,
  };
  // Generous: a run far slower than this is broken anyway (5k events/s floor).
  const pubTimeout = (n: number): number => 60_000 + (n / 5000) * 1000;
  const specs: WorkloadSpec[] = [];
  const lat1k = 1024;

  for (const size of o.sizes) {
    for (const p of o.partitions) {
      const s = sizeLabel(size);
      const common = { ...base, kind: 'publish' as const, events: o.events, eventSize: size, partitions: p, timeoutMs: pubTimeout(o.events) };
      specs.push({
        ...common,
        id: `hadron.publish.${s}.p${p}`,
        system: 'hadron',
        runner: 'hadron.publish',
        title: `Hadron publish ${sizeText(size)} × ${p} partition${p > 1 ? 's' : ''} (batch ${o.batch}, ${o.window} in flight/partition, fsync)`,
      });
      specs.push({
        ...common,
        id: `nats.js-publish.${s}.s${p}`,
        system: 'nats',
        runner: 'nats.js-publish',
        window: o.natsWindow,
        title: `NATS js.publish() ${sizeText(size)} × ${p} stream${p > 1 ? 's' : ''} (${o.natsWindow} in flight/stream)`,
      });
      specs.push({
        ...common,
        id: `nats.core-publish.${s}.s${p}`,
        system: 'nats',
        runner: 'nats.core-publish',
        window: o.natsWindow,
        title: `NATS core publish+reply ${sizeText(size)} × ${p} stream${p > 1 ? 's' : ''} (${o.natsWindow} in flight/stream)`,
      });
    }
  }
  specs.push({
    ...base,
    id: `hadron.client-publish.${sizeLabel(lat1k)}.p1`,
    system: 'hadron',
    kind: 'client',
    runner: 'hadron.client-publish',
    window: o.natsWindow,
    events: o.events,
    eventSize: lat1k,
    partitions: 1,
    timeoutMs: pubTimeout(o.events),
    title: `Hadron client publish() ${sizeText(lat1k)}, 1 event/call (${o.natsWindow} calls in flight, fsync)`,
  });

  // CloudEvents HTTP ingress (docs/http.md), next to hadron.publish.1k.p1 (gRPC).
  const httpCommon = { ...base, kind: 'publish' as const, eventSize: lat1k, partitions: 1 };
  specs.push({
    ...httpCommon,
    id: `hadron.http-batched.${sizeLabel(lat1k)}.p1`,
    system: 'hadron',
    runner: 'hadron.http-publish',
    events: o.events,
    window: o.window,
    timeoutMs: pubTimeout(o.events),
    title: `Hadron HTTP ingress, batched ${sizeText(lat1k)} (${o.batch} events/request, ${o.window} in flight, fsync)`,
  });
  const singles = Math.min(o.events, 100_000);
  specs.push({
    ...httpCommon,
    id: `hadron.http-single.${sizeLabel(lat1k)}.p1`,
    system: 'hadron',
    runner: 'hadron.http-publish',
    events: singles,
    batch: 1,
    window: 64,
    timeoutMs: pubTimeout(singles) * 4,
    title: `Hadron HTTP ingress, binary mode 1 event/request ${sizeText(lat1k)} (64 in flight, fsync)`,
  });

  // Trigger push delivery (docs/http.md): one event in flight (ordered) and 16.
  const triggerEvents = Math.max(1000, Math.floor(Math.min(o.events, 20_000) / 1000) * 1000);
  for (const par of [1, 16]) {
    specs.push({
      ...base,
      id: `hadron.trigger.${sizeLabel(lat1k)}.par${par}`,
      system: 'hadron',
      kind: 'drain',
      runner: 'hadron.trigger',
      events: triggerEvents,
      eventSize: lat1k,
      partitions: 1,
      maxBatch: par,
      timeoutMs: 60_000 + triggerEvents * 20,
      title: `Hadron Trigger → HTTP sink, ${sizeText(lat1k)}, parallelism ${par}${par === 1 ? ' (in order)' : ''}`,
    });
  }

  const latCommon = { ...base, kind: 'latency' as const, events: 0, eventSize: lat1k, partitions: 1, timeoutMs: (o.latencySeconds + o.warmupSeconds) * 1000 + 90_000 };
  // One set of latency rows per --rates entry; the first keeps the plain ids (comparable with
  // earlier results), the others get the rate as a suffix.
  for (const rate of o.rates) {
    const at = { ...latCommon, rate };
    const sfx = latencySuffix(o, rate);
    specs.push({ ...at, id: `hadron.latency.1k${sfx}`, system: 'hadron', runner: 'hadron.latency', batch: o.latencyBatch, title: `Hadron publish latency @ ${rate}/s, 1 KiB, ≤${o.latencyBatch} due events/request, fsync` });
    specs.push({ ...at, id: `nats.js-latency.1k${sfx}`, system: 'nats', runner: 'nats.js-latency', batch: 1, title: `NATS js.publish() latency @ ${rate}/s, 1 KiB, 1 msg/publish` });
    specs.push({ ...at, id: `nats.core-latency.1k${sfx}`, system: 'nats', runner: 'nats.core-latency', batch: 1, title: `NATS core request latency @ ${rate}/s, 1 KiB, 1 msg/request` });
  }

  // Replication (docs/replication.md): 3 partitions with r = 1, 2, 3, every publish with one ack
  // mode; throughput over all partitions and latency at the offered rate on partition 0. The
  // peer: a 3-node NATS JetStream cluster on loopback (nats/cluster.ts) with R1 and R3 streams.
  for (const r of [1, 2, 3]) {
    for (const [ack, name] of [[0, 'all'], [1, 'majority'], [2, 'none']] as const) {
      const repl = { replicationFactor: r, ack };
      specs.push({
        ...base,
        ...repl,
        kind: 'publish',
        events: o.events,
        eventSize: lat1k,
        partitions: 3,
        timeoutMs: pubTimeout(o.events),
        id: `hadron.repl-publish.1k.r${r}.${name}`,
        system: 'hadron',
        runner: 'hadron.publish',
        title: `Hadron publish 1 KiB × 3 partitions, r=${r}, ack ${name.toUpperCase()} (batch ${o.batch}, ${o.window} in flight/partition, fsync)`,
      });
      specs.push({
        ...latCommon,
        ...repl,
        partitions: 3,
        id: `hadron.repl-latency.1k.r${r}.${name}`,
        system: 'hadron',
        runner: 'hadron.latency',
        batch: o.latencyBatch,
        title: `Hadron publish latency @ ${o.rate}/s, 1 KiB, partition 0 of 3, r=${r}, ack ${name.toUpperCase()}, fsync`,
      });
    }
    // The peer's R1 / R3 rows right after Hadron's r = 1 / 3 rows: the machine's load drifts, and
    // the rows compared with each other should run close together.
    if (r === 2) continue;
    const nats = { ...base, system: 'nats' as const, natsReplicas: r, eventSize: lat1k, window: o.natsWindow };
    // Cluster start-up, stream leader placement and the replicas' catch-up check come on top.
    const pub = { ...nats, kind: 'publish' as const, events: o.events, partitions: 3, timeoutMs: pubTimeout(o.events) + 60_000 };
    specs.push({ ...pub, id: `nats.repl-js-publish.1k.r${r}`, runner: 'nats.repl-js-publish', title: `NATS cluster (3 nodes) js.publish() 1 KiB × 3 R${r} streams (${o.natsWindow} in flight/stream)` });
    specs.push({ ...pub, id: `nats.repl-core-publish.1k.r${r}`, runner: 'nats.repl-core-publish', title: `NATS cluster (3 nodes) core publish+reply 1 KiB × 3 R${r} streams (${o.natsWindow} in flight/stream)` });
    const lat = { ...latCommon, ...nats, batch: 1, timeoutMs: latCommon.timeoutMs + 60_000 };
    specs.push({ ...lat, id: `nats.repl-js-latency.1k.r${r}`, runner: 'nats.repl-js-latency', title: `NATS cluster (3 nodes) js.publish() latency @ ${o.rate}/s, 1 KiB, R${r} stream` });
    specs.push({ ...lat, id: `nats.repl-core-latency.1k.r${r}`, runner: 'nats.repl-core-latency', title: `NATS cluster (3 nodes) core request latency @ ${o.rate}/s, 1 KiB, R${r} stream` });
  }

  const drainCommon = { ...base, kind: 'drain' as const, events: o.drainEvents, eventSize: lat1k, partitions: 1, timeoutMs: 60_000 + (o.drainEvents / 2500) * 1000 };
  specs.push({ ...drainCommon, id: 'hadron.drain.1k', system: 'hadron', runner: 'hadron.drain', title: `Hadron durable group drain, 1 KiB (max batch ${o.drainBatch}, ack per batch)` });
  specs.push({ ...drainCommon, id: 'nats.drain-batchack.1k', system: 'nats', runner: 'nats.drain', maxBatch: o.natsPullBatch, ackMode: 'batch', title: `NATS pull consumer drain, 1 KiB (batches of ${o.natsPullBatch}, AckAll once per batch)` });
  specs.push({ ...drainCommon, id: 'nats.drain-eachack.1k', system: 'nats', runner: 'nats.drain', maxBatch: o.natsPullBatch, ackMode: 'each', title: `NATS pull consumer drain, 1 KiB (batches of ${o.natsPullBatch}, ack every message)` });

  // The second peer, Apache Kafka 3.9 (kafka/): its Java perf tools and the kafkajs client, each
  // as deployed by default (acks=all, no fsync) and with flush.messages=1 (fsync, like Hadron).
  for (const p of o.partitions) {
    const common = { ...base, kind: 'publish' as const, system: 'kafka' as const, events: o.events, eventSize: lat1k, partitions: p, timeoutMs: pubTimeout(o.events) + 60_000 };
    const parts = `${p} partition${p > 1 ? 's' : ''}`;
    for (const [suffix, what] of [['', 'acks=all'], ['-fsync', 'acks=all, flush.messages=1']] as const) {
      specs.push({ ...common, id: `kafka.java-publish${suffix}.1k.p${p}`, runner: `kafka.java-publish${suffix}`, title: `Kafka ProducerPerformance 1 KiB × ${parts} (${what}, producer defaults)` });
      specs.push({ ...common, id: `kafka.js-publish${suffix}.1k.p${p}`, runner: `kafka.js-publish${suffix}`, title: `Kafka kafkajs send() of ${o.batch} × 1 KiB × ${parts} (${what}, ${o.window} in flight/partition)` });
    }
  }
  for (const rate of o.rates) {
    const at = { ...latCommon, rate, system: 'kafka' as const, batch: 1, timeoutMs: latCommon.timeoutMs + 60_000 };
    const sfx = latencySuffix(o, rate);
    specs.push({ ...at, id: `kafka.java-latency.1k${sfx}`, runner: 'kafka.java-latency', title: `Kafka ProducerPerformance latency @ ${rate}/s, 1 KiB (acks=all)` });
    specs.push({ ...at, id: `kafka.java-latency-fsync.1k${sfx}`, runner: 'kafka.java-latency-fsync', title: `Kafka ProducerPerformance latency @ ${rate}/s, 1 KiB (acks=all, flush.messages=1)` });
  }
  specs.push({ ...drainCommon, id: 'kafka.java-drain.1k', system: 'kafka', runner: 'kafka.java-drain', timeoutMs: drainCommon.timeoutMs * 2 + 60_000, title: 'Kafka ConsumerPerformance drain, 1 KiB (consumer group, offsets auto-committed)' });

  specs.push({
    ...base,
    id: 'hadron.pipeline.5stage',
    system: 'hadron',
    kind: 'pipeline',
    runner: 'hadron.pipeline',
    events: o.pipelineInstances,
    eventSize: 256,
    partitions: 1,
    window: 4,
    maxBatch: 200,
    timeoutMs: 60_000 + o.pipelineInstances * 10,
    title: `Hadron pipeline, 5 stages, 1 partition (${o.pipelineInstances} instances, 4 workers/stage, maxParallel 200)`,
  });

  // The rate sweep last: its steps stop early (sweep.ts), so its length varies with the systems.
  specs.push(...sweepSpecs(o));

  const matches = (s: WorkloadSpec, token: string): boolean => token === s.kind || token === s.system || s.id.includes(token);
  return specs
    .filter((s) => o.only.length === 0 || o.only.some((t) => matches(s, t)))
    .filter((s) => !o.skip.some((t) => matches(s, t)))
    .map((s) => (s.system === 'hadron' && Object.keys(o.serverEnv).length > 0 ? { ...s, serverEnv: o.serverEnv } : s))
    .map((s) => (o.profile && s.system === 'hadron' ? { ...s, profileDir: path.join(o.resultsDir, 'profiles', s.id) } : s));
}

/** A Hadron/peer (NATS or Kafka) ratio the report prints, with the target it is held to. */
export interface Comparison {
  title: string;
  hadron: string;
  /** Peer ids (NATS or Kafka, despite the field's name): the client-level figure and, where there is one, the server's own limit or the other mode. */
  nats: Array<{ id: string; label: string }>;
  metric: 'eventsPerSec' | 'p99';
  /** Hadron must reach `target` × NATS (throughput), or stay ≤ target ms (p99). */
  target: number;
  /** p99 only: the target is relative — peer p99 ÷ Hadron p99 ≥ `target` (1 = no worse than the peer). */
  vsPeer?: boolean;
}

export function buildComparisons(o: BenchOptions): Comparison[] {
  const out: Comparison[] = [];
  for (const size of o.sizes) {
    for (const p of o.partitions) {
      const s = sizeLabel(size);
      out.push({
        title: `publish ${sizeText(size)} × ${p}`,
        hadron: `hadron.publish.${s}.p${p}`,
        nats: [
          { id: `nats.js-publish.${s}.s${p}`, label: 'js.publish' },
          { id: `nats.core-publish.${s}.s${p}`, label: 'server limit' },
        ],
        metric: 'eventsPerSec',
        target: 1.5,
      });
    }
  }
  out.push({
    title: 'HTTP batched vs gRPC publish 1 KiB × 1',
    hadron: 'hadron.http-batched.1k.p1',
    nats: [{ id: 'hadron.publish.1k.p1', label: 'gRPC publish' }],
    metric: 'eventsPerSec',
    target: 0.5,
  });
  out.push({
    title: 'client publish() 1 KiB × 1',
    hadron: 'hadron.client-publish.1k.p1',
    nats: [
      { id: 'nats.js-publish.1k.s1', label: 'js.publish' },
      { id: 'nats.core-publish.1k.s1', label: 'server limit' },
    ],
    metric: 'eventsPerSec',
    target: 1.5,
  });
  out.push({
    title: 'drain with acks 1 KiB',
    hadron: 'hadron.drain.1k',
    nats: [
      { id: 'nats.drain-batchack.1k', label: 'ack/batch' },
      { id: 'nats.drain-eachack.1k', label: 'ack/msg' },
    ],
    metric: 'eventsPerSec',
    target: 3,
  });
  for (const rate of o.rates) {
    const sfx = latencySuffix(o, rate);
    out.push({
      title: `p99 latency @ ${rate}/s`,
      hadron: `hadron.latency.1k${sfx}`,
      nats: [
        { id: `nats.js-latency.1k${sfx}`, label: 'js.publish' },
        { id: `nats.core-latency.1k${sfx}`, label: 'core request' },
      ],
      metric: 'p99',
      target: 5,
    });
  }
  // Replication vs the NATS JetStream cluster (issue 9): Hadron r = 3 ack ALL (fdatasync on all 3
  // copies) against R3 streams (quorum of 2, no fsync); MAJORITY is the closer semantic match,
  // r = 1 vs R1 the baseline.
  for (const [r, ack] of [[3, 'all'], [3, 'majority'], [1, 'all']] as const) {
    out.push({
      title: `replication publish 1 KiB × 3, r=${r} ack ${ack.toUpperCase()} vs NATS R${r}`,
      hadron: `hadron.repl-publish.1k.r${r}.${ack}`,
      nats: [
        { id: `nats.repl-js-publish.1k.r${r}`, label: `R${r} js.publish` },
        { id: `nats.repl-core-publish.1k.r${r}`, label: `R${r} server limit` },
      ],
      metric: 'eventsPerSec',
      target: 1.5,
    });
    out.push({
      title: `replication p99 @ ${o.rate}/s, r=${r} ack ${ack.toUpperCase()} vs NATS R${r}`,
      hadron: `hadron.repl-latency.1k.r${r}.${ack}`,
      nats: [
        { id: `nats.repl-js-latency.1k.r${r}`, label: `R${r} js.publish` },
        { id: `nats.repl-core-latency.1k.r${r}`, label: `R${r} core request` },
      ],
      metric: 'p99',
      target: 1,
      vsPeer: true,
    });
  }
  // Kafka, the second peer: (a) as deployed by default (no fsync), (b) with flush.messages=1.
  for (const p of o.partitions) {
    out.push({
      title: `publish 1 KiB × ${p} vs Kafka Java`,
      hadron: `hadron.publish.1k.p${p}`,
      nats: [
        { id: `kafka.java-publish.1k.p${p}`, label: 'Kafka' },
        { id: `kafka.java-publish-fsync.1k.p${p}`, label: 'Kafka fsync' },
      ],
      metric: 'eventsPerSec',
      target: 1.5,
    });
    out.push({
      title: `publish 1 KiB × ${p} vs kafkajs`,
      hadron: `hadron.publish.1k.p${p}`,
      nats: [
        { id: `kafka.js-publish.1k.p${p}`, label: 'kafkajs' },
        { id: `kafka.js-publish-fsync.1k.p${p}`, label: 'kafkajs fsync' },
      ],
      metric: 'eventsPerSec',
      target: 1.5,
    });
  }
  out.push({
    title: 'client publish() 1 KiB × 1 vs Kafka',
    hadron: 'hadron.client-publish.1k.p1',
    nats: [
      { id: 'kafka.js-publish.1k.p1', label: 'kafkajs' },
      { id: 'kafka.java-publish.1k.p1', label: 'Kafka Java' },
    ],
    metric: 'eventsPerSec',
    target: 1.5,
  });
  out.push({
    title: 'drain 1 KiB vs Kafka',
    hadron: 'hadron.drain.1k',
    nats: [{ id: 'kafka.java-drain.1k', label: 'ConsumerPerf' }],
    metric: 'eventsPerSec',
    target: 3,
  });
  for (const rate of o.rates) {
    const sfx = latencySuffix(o, rate);
    out.push({
      title: `p99 latency @ ${rate}/s vs Kafka`,
      hadron: `hadron.latency.1k${sfx}`,
      nats: [
        { id: `kafka.java-latency.1k${sfx}`, label: 'Kafka' },
        { id: `kafka.java-latency-fsync.1k${sfx}`, label: 'Kafka fsync' },
      ],
      metric: 'p99',
      target: 5,
    });
  }
  // The rate sweep (sweep.ts): Hadron's highest rate with p99 within the bound ÷ each peer's.
  const sweepTitle = `highest rate with p99 ≤ ${o.sweepP99Ms} ms`;
  const sweepPeers: Array<[string, Array<{ id: string; label: string }>]> = [
    ['NATS', [{ id: 'nats.js-sweep.1k', label: 'js.publish' }, { id: 'nats.core-sweep.1k', label: 'core request' }]],
    ['Kafka', [{ id: 'kafka.java-sweep.1k', label: 'Kafka' }, { id: 'kafka.java-sweep-fsync.1k', label: 'Kafka fsync' }]],
  ];
  for (const [peer, ids] of sweepPeers) out.push({ title: `${sweepTitle} vs ${peer}`, hadron: 'hadron.sweep.1k', nats: ids, metric: 'eventsPerSec', target: 1 });
  return out;
}
