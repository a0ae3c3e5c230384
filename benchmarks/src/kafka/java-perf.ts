/**
 * The peer measured by its own tools, "the best client there is" (Java, in its own JVM):
 *  - `kafkaJavaPublish`: `org.apache.kafka.tools.ProducerPerformance`, unthrottled, acks=all,
 *    the producer's defaults otherwise; its own records/s figure;
 *  - `kafkaJavaLatency`: the same tool throttled to the offered rate (`--throughput`), its
 *    send→ack percentiles (it measures from `send()`, so time queued in the producer counts, but
 *    it is not an open loop: a stalled broker slows the offered load);
 *  - `kafkaJavaDrain`: `ConsumerPerformance` reading a pre-filled topic (filled by
 *    ProducerPerformance, not timed) in a consumer group with offsets auto-committed.
 *
 * Checks: the tool reports exactly the records asked for, and the topic's end offsets sum to
 * them (GetOffsetShell).
 */
import { SUSTAINED_SHARE } from '../lib/open-loop.js';
import { check, throughputResult, type WorkloadResult, type WorkloadSpec } from '../types.js';
import { createTopic, runJava, topicMessages, withKafka, type KafkaBench, type KafkaMode } from './server.js';

const TOPIC = 'bench';

interface ProducerPerf {
  records: number;
  perSec: number;
  avgMs: number;
  maxMs: number;
  p50: number;
  p95: number;
  p99: number;
  p999: number;
}

/** Parses ProducerPerformance's final line ("N records sent, X records/sec (…), … 99.9th."). */
export function parseProducerPerformance(out: string): ProducerPerf | undefined {
  const re = /(\d+) records sent, ([\d.]+) records\/sec \([\d.]+ MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th/;
  const m = re.exec(out);
  if (!m) return undefined;
  const n = m.slice(1).map(Number);
  return { records: n[0]!, perSec: n[1]!, avgMs: n[2]!, maxMs: n[3]!, p50: n[4]!, p95: n[5]!, p99: n[6]!, p999: n[7]! };
}

async function producerPerformance(k: KafkaBench, records: number, size: number, throughput: number, timeoutMs: number): Promise<ProducerPerf> {
  const r = await runJava(
    k.classpath,
    'org.apache.kafka.tools.ProducerPerformance',
    ['--topic', TOPIC, '--num-records', String(records), '--record-size', String(size), '--throughput', String(throughput), '--producer-props', `bootstrap.servers=${k.bootstrap}`, 'acks=all'],
    { heap: '1G', timeoutMs },
  );
  const perf = parseProducerPerformance(r.stdout);
  if (r.code !== 0 || !perf) throw new Error(`ProducerPerformance failed (exit ${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return perf;
}

export function kafkaJavaPublish(spec: WorkloadSpec, mode: KafkaMode): Promise<WorkloadResult> {
  return withKafka(mode, async (k) => {
    await createTopic(k, TOPIC, spec.partitions);
    const perf = await producerPerformance(k, spec.events, spec.eventSize, -1, spec.timeoutMs);
    check(perf.records === spec.events, `ProducerPerformance sent ${perf.records} of ${spec.events}`);
    const stored = await topicMessages(k, TOPIC);
    check(stored === spec.events, `topic end offsets sum to ${stored}, expected ${spec.events}`);
    const r = throughputResult(spec, spec.events, spec.events / perf.perSec, {
      verified: [`ProducerPerformance reported ${perf.records} records sent`, `topic end offsets sum to ${stored}`],
      params: { tool: 'ProducerPerformance', acks: 'all', partitions: spec.partitions, mode },
      notes: [`ProducerPerformance's own records/s; its send→ack p99 during the run ${perf.p99} ms`],
    });
    return r;
  });
}

export function kafkaJavaLatency(spec: WorkloadSpec, mode: KafkaMode): Promise<WorkloadResult> {
  return withKafka(mode, async (k) => {
    await createTopic(k, TOPIC, 1);
    const records = Math.round(spec.rate * (spec.seconds + spec.warmupSeconds));
    const perf = await producerPerformance(k, records, spec.eventSize, spec.rate, spec.timeoutMs);
    check(perf.records === records, `ProducerPerformance sent ${perf.records} of ${records}`);
    const stored = await topicMessages(k, TOPIC);
    check(stored === records, `topic end offsets sum to ${stored}, expected ${records}`);
    const seconds = records / perf.perSec;
    // Like the open-loop runs: a rate the broker (or the tool) could not keep is a result, not a pass.
    const sustained = perf.perSec >= spec.rate * SUSTAINED_SHARE;
    return {
      ...throughputResult(spec, records, seconds, {
        verified: [`ProducerPerformance reported ${perf.records} records sent`, `topic end offsets sum to ${stored}`],
        params: { tool: 'ProducerPerformance', acks: 'all', throughput: spec.rate, records, mode },
        notes: ['send→ack percentiles of ProducerPerformance (warm-up included; not an open loop); p90 not reported by the tool: its 95th is shown as p90'],
      }),
      ...(sustained ? {} : { status: 'unsustained' as const, reason: `achieved ${Math.round(perf.perSec)}/s of the offered ${spec.rate}/s` }),
      latency: { samples: perf.records, p50: perf.p50, p90: perf.p95, p99: perf.p99, p999: perf.p999, max: perf.maxMs, mean: perf.avgMs, offeredRate: spec.rate, achievedRate: perf.perSec, sendLagP99: 0 },
    };
  });
}

export function kafkaJavaDrain(spec: WorkloadSpec, mode: KafkaMode): Promise<WorkloadResult> {
  return withKafka(mode, async (k) => {
    await createTopic(k, TOPIC, 1);
    const fill = await producerPerformance(k, spec.events, spec.eventSize, -1, spec.timeoutMs);
    check(fill.records === spec.events, `pre-fill sent ${fill.records} of ${spec.events}`);
    const r = await runJava(
      k.classpath,
      'org.apache.kafka.tools.ConsumerPerformance',
      ['--bootstrap-server', k.bootstrap, '--topic', TOPIC, '--messages', String(spec.events), '--group', 'bench', '--timeout', '60000'],
      { heap: '1G', timeoutMs: spec.timeoutMs },
    );
    // Header line, then: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
    const row = r.stdout
      .split('\n')
      .map((l) => l.split(',').map((x) => x.trim()))
      .find((cols) => cols.length >= 10 && /^\d{4}-/.test(cols[0]!));
    if (r.code !== 0 || !row) throw new Error(`ConsumerPerformance failed (exit ${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
    const consumed = Number(row[4]);
    const fetchMs = Number(row[7]);
    check(consumed === spec.events, `ConsumerPerformance consumed ${consumed} of ${spec.events}`);
    return throughputResult(spec, consumed, fetchMs / 1000, {
      verified: [`ConsumerPerformance consumed ${consumed} records`],
      params: { tool: 'ConsumerPerformance', group: 'bench', autoCommit: true, mode },
      notes: ['ConsumerPerformance fetch time (rebalance excluded), offsets auto-committed'],
    });
  });
}
