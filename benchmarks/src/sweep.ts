/**
 * The rate sweep (issue 11: "the highest rate that keeps p99 ≤ 10 ms, for Hadron and each
 * peer"). Each system runs its existing latency runner (same load shape as its latency row) in
 * short steps at increasing offered rates, one child process (and server) per step, and stops at
 * its first step that misses: p99 above the bound, or the offered rate not sustained, or a broken
 * run. Its result is the highest step rate before that one.
 *
 * Everything here is pure (the steps to run, the stopping rule, the summary and its table), so
 * the orchestrator (run.ts) only asks `sweepStopped` before each step and `summarizeSweeps` at
 * the end.
 */
import { SUSTAINED_SHARE } from './lib/open-loop.js';
import type { BenchOptions } from './options.js';
import type { System, WorkloadResult, WorkloadSpec } from './types.js';


/** One system's sweep: the runner it reuses and how its steps are named. */
interface SweepSystem {
  /** The summary id; step ids append the rate, e.g. `hadron.sweep.1k.20k`. */
  id: string;
  system: System;
  runner: string;
  label: string;
  /** Events per request (Hadron: the latency row's --latency-batch; the peers send one at a time). */
  batch: (o: BenchOptions) => number;
  /** Extra child timeout: Kafka's JVM start and topic creation come on top. */
  extraTimeoutMs: number;
}

const SYSTEMS: SweepSystem[] = [
  { id: 'hadron.sweep.1k', system: 'hadron', runner: 'hadron.latency', label: 'Hadron (raw gRPC, fsync)', batch: (o) => o.latencyBatch, extraTimeoutMs: 0 },
  { id: 'nats.js-sweep.1k', system: 'nats', runner: 'nats.js-latency', label: 'NATS js.publish()', batch: () => 1, extraTimeoutMs: 0 },
  { id: 'nats.core-sweep.1k', system: 'nats', runner: 'nats.core-latency', label: 'NATS core request', batch: () => 1, extraTimeoutMs: 0 },
  { id: 'kafka.java-sweep.1k', system: 'kafka', runner: 'kafka.java-latency', label: 'Kafka Java (acks=all)', batch: () => 1, extraTimeoutMs: 60_000 },
  { id: 'kafka.java-sweep-fsync.1k', system: 'kafka', runner: 'kafka.java-latency-fsync', label: 'Kafka Java (acks=all, flush.messages=1)', batch: () => 1, extraTimeoutMs: 60_000 },
];

/** `50000` → `50k`, `2500` → `2.5k`, `500` → `500`: the rate suffix of an id. */
export function rateLabel(rate: number): string {
  return rate >= 1000 && rate % 100 === 0 ? `${rate / 1000}k` : String(rate);
}

/** The sweep's steps, system by system, each system's in increasing rate. */
export function sweepSpecs(o: BenchOptions): WorkloadSpec[] {
  const out: WorkloadSpec[] = [];
  for (const s of SYSTEMS) {
    for (const rate of o.sweepRates) {
      out.push({
        id: `${s.id}.${rateLabel(rate)}`,
        system: s.system,
        kind: 'sweep',
        runner: s.runner,
        sweep: s.id,
        title: `${s.label} latency sweep step @ ${rate}/s, 1 KiB (${o.sweepSeconds} s after ${o.sweepWarmupSeconds} s warm-up)`,
        events: 0,
        eventSize: 1024,
        partitions: 1,
        batch: s.batch(o),
        window: o.window,
        rate,
        seconds: o.sweepSeconds,
        warmupSeconds: o.sweepWarmupSeconds,
        maxBatch: o.drainBatch,
        timeoutMs: (o.sweepSeconds + o.sweepWarmupSeconds) * 1000 + 90_000 + s.extraTimeoutMs,
      });
    }
  }
  return out;
}

/** Whether one step passed: run ok, offered rate sustained, p99 within the bound; why not otherwise. */
export function judgeStep(r: WorkloadResult, p99LimitMs: number): { pass: boolean; why: string } {
  const l = r.latency;
  if (r.status === 'failed' || r.status === 'skipped') return { pass: false, why: `${r.status}: ${r.reason ?? ''}`.trim() };
  if (r.status === 'unsustained' || !l) return { pass: false, why: `not sustained${r.reason ? ` (${r.reason})` : ''}` };
  if (!(l.achievedRate >= l.offeredRate * SUSTAINED_SHARE)) return { pass: false, why: `not sustained (achieved ${Math.round(l.achievedRate)}/s of ${l.offeredRate}/s)` };
  // null (NaN after IPC) p99: nothing measured, cannot pass.
  if (l.p99 === null || !(l.p99 <= p99LimitMs)) return { pass: false, why: `p99 ${l.p99 === null || Number.isNaN(l.p99) ? '?' : l.p99.toFixed(2)} ms > ${p99LimitMs} ms` };
  return { pass: true, why: `p99 ${l.p99.toFixed(2)} ms ≤ ${p99LimitMs} ms` };
}

/** The stopping rule: true once any step of that sweep has been run and missed (later steps are not run). */
export function sweepStopped(sweep: string, done: WorkloadResult[], p99LimitMs: number): boolean {
  return done.some((r) => r.kind === 'sweep' && r.id.startsWith(`${sweep}.`) && !judgeStep(r, p99LimitMs).pass);
}

export interface SweepSummary {
  id: string;
  system: System;
  label: string;
  /** Steps that ran, in rate order. */
  steps: Array<{ rate: number; p99: number | undefined; pass: boolean; why: string; status: WorkloadResult['status'] }>;
  /** The highest step rate with p99 within the bound (before the first miss); undefined when the first step missed. */
  highest: number | undefined;
  /** Every step passed: the real limit is above the last step. */
  capped: boolean;
  /** The step that stopped the sweep. */
  stoppedAt?: { rate: number; why: string };
}

/** Each sweep that has at least one step among `results`, summarised. */
export function summarizeSweeps(o: Pick<BenchOptions, 'sweepRates' | 'sweepP99Ms'>, results: WorkloadResult[]): SweepSummary[] {
  const out: SweepSummary[] = [];
  for (const s of SYSTEMS) {
    const byRate = new Map(results.filter((r) => r.kind === 'sweep').map((r) => [r.id, r]));
    const steps: SweepSummary['steps'] = [];
    let highest: number | undefined;
    let stoppedAt: SweepSummary['stoppedAt'];
    for (const rate of o.sweepRates) {
      const r = byRate.get(`${s.id}.${rateLabel(rate)}`);
      if (!r) continue;
      const j = judgeStep(r, o.sweepP99Ms);
      const p99 = r.latency?.p99;
      steps.push({ rate, p99: p99 === null || p99 === undefined || Number.isNaN(p99) ? undefined : p99, pass: j.pass, why: j.why, status: r.status });
      if (stoppedAt) continue; // a step after the stop (should not have run): not counted
      if (j.pass) highest = rate;
      else stoppedAt = { rate, why: j.why };
    }
    if (steps.length === 0) continue;
    const capped = !stoppedAt && steps.length === o.sweepRates.length;
    out.push({ id: s.id, system: s.system, label: s.label, steps, highest, capped, ...(stoppedAt ? { stoppedAt } : {}) });
  }
  return out;
}

/**
 * The summaries as results the ratio table can compare (events/s = the highest rate): a sweep
 * whose first step missed has no number (status `unsustained`), so its ratios read n/a.
 */
export function sweepResults(sums: SweepSummary[]): WorkloadResult[] {
  return sums.map((s) => ({
    id: s.id,
    system: s.system,
    kind: 'sweep',
    title: `${s.label}: highest offered rate with p99 within the bound`,
    status: s.highest === undefined ? 'unsustained' : 'ok',
    ...(s.highest === undefined ? { reason: `missed at the first step (${s.stoppedAt?.why ?? '?'})` } : {}),
    events: 0,
    seconds: 0,
    eventsPerSec: s.highest ?? 0,
    mbPerSec: 0,
    verified: [],
    params: {},
    notes: [],
  }));
}

const fmtMs = (n: number): string => (n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));

/** The sweep table: one row per system, its highest rate, and its p99 at every step (✗ = the step that stopped it). */
export function sweepTable(o: Pick<BenchOptions, 'sweepRates' | 'sweepP99Ms'>, sums: SweepSummary[]): string[][] {
  const head = ['system', `highest rate, p99 ≤ ${o.sweepP99Ms} ms`, ...o.sweepRates.map((r) => `${rateLabel(r)}/s`), 'stopped by'];
  const rows = sums.map((s) => {
    const cells = o.sweepRates.map((rate) => {
      const st = s.steps.find((x) => x.rate === rate);
      if (!st) return '';
      const p = st.p99 === undefined ? '?' : fmtMs(st.p99);
      if (st.pass) return p;
      return st.status === 'failed' ? 'failed ✗' : st.status !== 'ok' || /not sustained/.test(st.why) ? `unsust. ${p} ✗` : `${p} ✗`;
    });
    const highest = s.highest === undefined ? `< ${o.sweepRates[0]}/s` : `${s.capped ? '≥ ' : ''}${s.highest.toLocaleString('en-US')}/s`;
    return [s.label, highest, ...cells, s.stoppedAt ? `${s.stoppedAt.rate}/s: ${s.stoppedAt.why}`.slice(0, 90) : s.capped ? 'every step passed' : 'not finished'];
  });
  return [head, ...rows];
}

/** What the sweep table means, under it. */
export const SWEEP_LEGEND = [
  'Rate sweep: p99 (ms) at each offered rate, each step a fresh server; a system stops at its first step whose p99 exceeds the bound or whose rate is not sustained (✗); empty = not run.',
  'In the ratio rows a sweep that passed every step counts its last step (the ratio is then a bound); one that missed its first step has no number (n/a).',
  "Hadron: raw gRPC latency runner (≤ latency-batch due events per request, fsync); NATS: one js.publish() / nc.request() per event; Kafka: ProducerPerformance --throughput (not an open loop; warm-up included in its percentiles).",
];
