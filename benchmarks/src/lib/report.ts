/**
 * Renders results as a text table (stdout) and Markdown (latest.md), and computes the
 * Hadron/NATS ratios against their targets.
 */
import type { Comparison } from '../workloads.js';
import type { WorkloadResult } from '../types.js';

export interface ComparisonRow {
  title: string;
  metric: Comparison['metric'];
  hadron: number | undefined;
  peers: Array<{ label: string; value: number | undefined; ratio: number | undefined; unsustained?: true }>;
  /** p99 rows: Hadron's run did not sustain the offered rate (its p99 is shown marked, not as a result). */
  hadronUnsustained?: true;
  target: number;
  /** p99 target relative to the peers (see Comparison.vsPeer). */
  vsPeer?: boolean;
  verdict: string;
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
// Percentiles of a run with no answered event are NaN, which arrives as null over the IPC channel.
const fmtMs = (n: number | null | undefined): string => (n === undefined || n === null || Number.isNaN(n) ? '' : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));
const fmtRatio = (r: number | null | undefined): string => (r === undefined || r === null || !Number.isFinite(r) ? 'n/a' : `${r.toFixed(2)}×`);

export function compare(cmps: Comparison[], results: WorkloadResult[]): ComparisonRow[] {
  const ok = new Map(results.filter((r) => r.status === 'ok').map((r) => [r.id, r]));
  const all = new Map(results.map((r) => [r.id, r]));
  const rows: ComparisonRow[] = [];
  for (const c of cmps) {
    // A latency run that could not sustain its rate still has a (bad) p99 worth showing.
    const get = (id: string): WorkloadResult | undefined => ok.get(id) ?? (c.metric === 'p99' ? all.get(id) : undefined);
    const h = get(c.hadron);
    const hv = h ? value(h, c.metric) : undefined;
    if (!all.has(c.hadron) && c.nats.every((n) => !all.has(n.id))) continue;
    const peers = c.nats.map((n) => {
      const r = get(n.id);
      const v = r ? value(r, c.metric) : undefined;
      const ratio = hv === undefined || v === undefined ? undefined : c.metric === 'p99' ? v / hv : hv / v;
      return { label: n.label, value: v, ratio, ...(r && r.status !== 'ok' ? { unsustained: true as const } : {}) };
    });
    let verdict: string;
    if (hv === undefined) verdict = all.get(c.hadron)?.status === 'skipped' ? 'skipped' : 'no Hadron number';
    else if (c.metric === 'p99' && c.vsPeer) {
      // Relative: no worse than the peer's p99 (ratio = peer ÷ Hadron ≥ target).
      const known = peers.filter((p) => p.ratio !== undefined);
      const met = known.filter((p) => p.ratio! >= c.target).map((p) => p.label);
      const sustained = h?.status === 'ok' ? '' : ' (rate not sustained)';
      verdict =
        known.length === 0 ? 'no peer number' : h?.status !== 'ok' ? `MISSED${sustained}` : met.length === known.length ? "MET (p99 ≤ every peer's)" : met.length > 0 ? `MET vs ${met.join(', ')} only` : "MISSED (p99 > every peer's)";
    } else if (c.metric === 'p99') verdict = h?.status === 'ok' && hv <= c.target ? `MET (≤ ${c.target} ms)` : `MISSED (> ${c.target} ms${h?.status === 'ok' ? '' : ', rate not sustained'})`;
    else {
      const met = peers.filter((p) => p.ratio !== undefined && p.ratio >= c.target).map((p) => p.label);
      const known = peers.filter((p) => p.ratio !== undefined);
      verdict = known.length === 0 ? 'no peer number' : met.length === known.length ? `MET (≥ ${c.target}× all)` : met.length > 0 ? `MET vs ${met.join(', ')} only` : `MISSED (< ${c.target}×)`;
    }
    rows.push({ title: c.title, metric: c.metric, hadron: hv, peers, target: c.target, ...(c.vsPeer ? { vsPeer: true } : {}), ...(h && h.status !== 'ok' ? { hadronUnsustained: true as const } : {}), verdict });
  }
  return rows;
}

function value(r: WorkloadResult, m: Comparison['metric']): number | undefined {
  return m === 'p99' ? r.latency?.p99 : r.eventsPerSec;
}

function resultRows(results: WorkloadResult[]): string[][] {
  const head = ['workload', 'events', 'secs', 'events/s', 'MB/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'load', 'status'];
  const rows = results.map((r: WorkloadResult & { load1AtEnd?: number }) => {
    const l = r.latency;
    return [
      r.id,
      r.events ? fmtInt(r.events) : '',
      r.seconds ? r.seconds.toFixed(1) : '',
      r.eventsPerSec ? fmtInt(r.eventsPerSec) : '',
      r.mbPerSec ? r.mbPerSec.toFixed(1) : '',
      fmtMs(l?.p50),
      fmtMs(l?.p90),
      fmtMs(l?.p99),
      fmtMs(l?.p999),
      fmtMs(l?.max),
      r.load1AtEnd === undefined ? '' : r.load1AtEnd.toFixed(2),
      r.status === 'ok' ? 'ok' : `${r.status.toUpperCase()}: ${r.reason ?? ''}`.slice(0, 90),
    ];
  });
  return [head, ...rows];
}

function comparisonRows(rows: ComparisonRow[]): string[][] {
  const head = ['comparison', 'Hadron', 'peer (a)', 'Hadron/(a)', 'peer (b)', 'Hadron/(b)', 'target', 'verdict'];
  const out = rows.map((c) => {
    // A latency run without answered events has a null p99 (NaN after IPC): no number, not " ms".
    // A p99 of a run that did not sustain its rate is marked: it is not that rate's p99.
    const v = (x: number | null | undefined, unsustained?: boolean): string =>
      x === undefined || x === null || Number.isNaN(x) ? 'n/a' : c.metric === 'p99' ? `${fmtMs(x)} ms${unsustained ? ' (unsustained)' : ''}` : `${fmtInt(x)}/s`;
    const [a, b] = c.peers;
    return [
      c.title,
      v(c.hadron, c.hadronUnsustained),
      a ? `${v(a.value, a.unsustained)} ${a.label}` : '',
      fmtRatio(a?.ratio),
      b ? `${v(b.value, b.unsustained)} ${b.label}` : '',
      fmtRatio(b?.ratio),
      c.metric === 'p99' ? (c.vsPeer ? (c.target === 1 ? "p99 ≤ peer's" : `≥ ${c.target}× (p99)`) : `p99 ≤ ${c.target} ms`) : `≥ ${c.target}×`,
      c.verdict,
    ];
  });
  return [head, ...out];
}

/** Rows (the first is the header) as an aligned text table. */
export function textTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 || i === r.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** Rows (the first is the header) as a Markdown table. */
export function mdTable(rows: string[][]): string {
  const esc = (s: string): string => s.replaceAll('|', '\\|');
  const align = rows[0]!.map((_, i) => (i === 0 || i === rows[0]!.length - 1 ? '---' : '---:'));
  return [rows[0]!, align, ...rows.slice(1)].map((r) => `| ${r.map(esc).join(' | ')} |`).join('\n');
}

export const RATIO_LEGEND = [
  'Ratios: throughput = Hadron ÷ peer (higher is better for Hadron); latency = peer p99 ÷ Hadron p99 (higher = Hadron lower).',
  'NATS rows: (a) is the best NATS client-level figure from Node; (b) is the server\'s own limit (core publish + reply) or the other ack mode.',
  'Kafka rows: (a) Kafka as deployed by default (acks=all, no fsync), (b) with flush.messages=1 (fsync per batch, like Hadron) — or, for client publish(), kafkajs and the Java producer.',
  'NATS 2.9.10 acks before fsync (fsync every 60 s); Hadron acks after fdatasync — the ratios favour NATS on durability.',
];

export function renderText(results: WorkloadResult[], cmps: ComparisonRow[]): string {
  return [textTable(resultRows(results)), '', textTable(comparisonRows(cmps)), '', ...RATIO_LEGEND].join('\n');
}

export function renderMarkdown(results: WorkloadResult[], cmps: ComparisonRow[]): { results: string; ratios: string } {
  return { results: mdTable(resultRows(results)), ratios: mdTable(comparisonRows(cmps)) };
}
