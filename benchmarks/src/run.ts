/**
 * `npm run bench`: runs the selected workloads one after another, each in its own child process
 * (its own servers, its own temp dir), prints the results and the Hadron/NATS ratios, and writes
 * results/latest.json and results/latest.md. Exit code 1 when a workload failed (crashed,
 * timed out or failed its correctness check), so a broken run cannot pass for a result.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAverage, machineInfo } from './lib/machine.js';
import { describePlan, pinServersOf, planCpus, type CpuPlan } from './lib/pin.js';
import { formatProfile, summarizeProfile, type ProfileSummary } from './lib/profile.js';
import { RATIO_LEGEND, compare, mdTable, renderMarkdown, renderText, textTable, type ComparisonRow } from './lib/report.js';
import { SWEEP_LEGEND, summarizeSweeps, sweepResults, sweepStopped, sweepTable, type SweepSummary } from './sweep.js';
import { ensureNatsServer } from './nats/install.js';
import { ensureKafka } from './kafka/install.js';
import { USAGE, parseOptions, type BenchOptions } from './options.js';
import { noResult, type WorkloadResult, type WorkloadSpec } from './types.js';
import { buildComparisons, buildWorkloads } from './workloads.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, 'child.js');

const log = (s: string): void => void process.stdout.write(`${s}\n`);

/** The child currently running, for cleanup on Ctrl-C. */
let current: { child: ChildProcess; tmp: string } | undefined;

interface RunRecord extends WorkloadResult {
  /** 1-minute load average when the workload ended (it mostly reflects that workload). */
  load1AtEnd: number;
  wallSeconds: number;
  profileSummaries?: ProfileSummary[];
  clientProfileSummaries?: ProfileSummary[];
}

async function runChild(spec: WorkloadSpec, pin: CpuPlan | undefined): Promise<WorkloadResult> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `hadron-bench-${spec.id}-`));
  // Give the peer its best Node client figure (PERF-NOTES: --stack-trace-limit=0 helps nats.js).
  const execArgv = spec.system === 'nats' ? ['--stack-trace-limit=0'] : [];
  // The load generator shares the 2 cores with the servers: profile it too, to tell its stalls
  // from theirs.
  if (spec.profileDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${path.join(spec.profileDir, 'client')}`);
  // Pinned: the child (the load generator) starts under taskset on its CPU; the watcher moves
  // the servers it starts to the other CPUs (lib/pin.ts).
  const child = fork(CHILD, [], {
    detached: true, // own process group: a timeout kills the child and every server it started
    env: { ...process.env, TMPDIR: tmp, BENCH_SPEC: JSON.stringify(spec) },
    ...(pin ? { execPath: 'taskset', execArgv: ['-c', pin.generator, process.execPath, ...execArgv] } : { execArgv }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  current = { child, tmp };
  const pinner = pin && child.pid !== undefined ? pinServersOf(child.pid, pin) : undefined;
  let result: WorkloadResult | undefined;
  let failure: string | undefined;
  child.on('message', (m: unknown) => {
    if (m && typeof m === 'object' && 'failed' in m) failure = String((m as { failed: unknown }).failed);
    else result = m as WorkloadResult;
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child, 'SIGKILL');
  }, spec.timeoutMs);
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  clearTimeout(timer);
  pinner?.stop();
  const strays = killGroup(child, 'SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
  current = undefined;
  const failed = (reason: string): WorkloadResult => noResult(spec, 'failed', reason);
  if (timedOut) return failed(`timed out after ${Math.round(spec.timeoutMs / 1000)} s (killed with its servers)`);
  if (failure !== undefined) return failed(failure);
  if (!result || exit.code !== 0) return failed(`child exited with code ${exit.code} signal ${exit.signal}`);
  if (strays) return { ...result, status: 'failed', reason: 'processes were left running after the workload (killed)' };
  const clientDir = spec.profileDir && path.join(spec.profileDir, 'client');
  if (clientDir && fs.existsSync(clientDir)) {
    const client = fs.readdirSync(clientDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(clientDir, f));
    return { ...result, clientProfiles: client };
  }
  return result;
}

/** Kills the child's process group; returns true when something was still running. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): boolean {
  if (child.pid === undefined) return false;
  try {
    process.kill(-child.pid, 0);
  } catch {
    return false;
  }
  try {
    process.kill(-child.pid, signal);
  } catch {
    // gone in between
  }
  return true;
}

function oneLine(r: WorkloadResult): string {
  if (r.status === 'skipped' || r.status === 'failed') return `  ${r.status.toUpperCase()}: ${r.reason}`;
  const l = r.latency;
  // A run without samples (e.g. unsustained from the start) has no percentiles: NaN crosses IPC as null.
  const f = (n: number | null, d: number): string => (n === null || Number.isNaN(n) ? '?' : n.toFixed(d));
  const lat = l ? `  p50 ${f(l.p50, 2)} p99 ${f(l.p99, 2)} p99.9 ${f(l.p999, 2)} max ${f(l.max, 1)} ms (send lag p99 ${f(l.sendLagP99, 2)} ms)` : '';
  const extra = r.status === 'unsustained' ? `  UNSUSTAINED: ${r.reason}` : '';
  return `  ${Math.round(r.eventsPerSec).toLocaleString('en-US')} events/s, ${f(r.mbPerSec, 1)} MB/s in ${f(r.seconds, 2)} s${lat}${extra}`;
}

async function main(): Promise<number> {
  const o: BenchOptions = parseOptions(process.argv.slice(2), process.env);
  if (o.help) {
    log(USAGE);
    return 0;
  }
  const specs = buildWorkloads(o);
  if (o.list) {
    for (const s of specs) log(`${s.id.padEnd(30)} ${s.title}`);
    return 0;
  }
  if (specs.length === 0) throw new Error(`no workload matches --only ${o.only.join(',')} --skip ${o.skip.join(',')} (see --list)`);

  let natsMissing: string | undefined;
  if (specs.some((s) => s.system === 'nats')) {
    const v = ensureNatsServer(o.install, log);
    if (typeof v !== 'string') natsMissing = v.missing;
  }
  // The second peer: its jars are fetched from Maven Central once (cached), or its rows skipped.
  let kafkaMissing: string | undefined;
  let kafka: string | undefined;
  if (specs.some((s) => s.system === 'kafka')) {
    const v = ensureKafka(o.install, log);
    if (typeof v === 'string') kafka = v;
    else kafkaMissing = v.missing;
  }
  const machine = machineInfo();
  const plan = planCpus(o.pin);
  const pinning = describePlan(plan);
  const startedAt = new Date();
  const loadStart = loadAverage();
  log(`Hadron benchmarks — ${machine.nproc} × ${machine.cpuModel}, node ${machine.node}, ${machine.natsServer ?? 'no nats-server'}${kafka ? `, ${kafka}` : ''}`);
  log(`load average at start: ${loadStart.join(' ')}   (${specs.length} workloads)`);
  log(pinning);

  const records: RunRecord[] = [];
  for (const [i, spec] of specs.entries()) {
    log(`\n[${i + 1}/${specs.length}] ${spec.id} — ${spec.title}`);
    // The sweep's stopping rule: a system's steps after its first miss are not run.
    if (spec.sweep && sweepStopped(spec.sweep, records, o.sweepP99Ms)) {
      log('  not run: this sweep stopped at an earlier step');
      continue;
    }
    const t0 = Date.now();
    const missing = spec.system === 'nats' ? natsMissing : spec.system === 'kafka' ? kafkaMissing : undefined;
    const r = missing ? noResult(spec, 'skipped', missing) : await runChild(spec, 'none' in plan ? undefined : plan);
    const rec: RunRecord = { ...r, load1AtEnd: loadAverage()[0], wallSeconds: (Date.now() - t0) / 1000 };
    if (r.profiles?.length) rec.profileSummaries = r.profiles.map((f) => summarizeProfile(f, 20));
    if (r.clientProfiles?.length) rec.clientProfileSummaries = r.clientProfiles.map((f) => summarizeProfile(f, 12));
    log(`${oneLine(r)}   [load ${rec.load1AtEnd}]`);
    records.push(rec);
  }
  const loadEnd = loadAverage();
  const sweeps = summarizeSweeps(o, records);
  const comparisons = compare(buildComparisons(o), [...records, ...sweepResults(sweeps)]);
  // The sweep's steps have their own table (below), not a row each in the results table.
  const rows = records.filter((r) => r.kind !== 'sweep');

  log(`\n${renderText(rows, comparisons)}`);
  if (sweeps.length) log(`\n${textTable(sweepTable(o, sweeps))}\n\n${SWEEP_LEGEND.join('\n')}`);
  log(`\nload average: start ${loadStart.join(' ')}, end ${loadEnd.join(' ')} (1/5/15 min); per workload in results`);
  for (const rec of records) {
    for (const s of rec.profileSummaries ?? []) log(`\nCPU profile of a Hadron server during ${rec.id}:\n${formatProfile(s)}`);
    for (const s of rec.clientProfileSummaries ?? []) log(`\nCPU profile of the load generator during ${rec.id}:\n${formatProfile(s)}`);
  }

  fs.mkdirSync(o.resultsDir, { recursive: true });
  const finishedAt = new Date();
  const json = {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    command: `node benchmarks/dist/run.js ${process.argv.slice(2).join(' ')}`.trim(),
    machine,
    pinning,
    loadAverage: { start: loadStart, end: loadEnd, perWorkload: Object.fromEntries(records.map((r) => [r.id, r.load1AtEnd])) },
    options: o,
    results: records,
    sweeps,
    comparisons,
  };
  fs.writeFileSync(path.join(o.resultsDir, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`);
  fs.writeFileSync(path.join(o.resultsDir, 'latest.md'), markdown(json, records, comparisons, sweeps.length ? { table: sweepTable(o, sweeps), summaries: sweeps } : undefined));
  log(`\nwrote ${path.relative(process.cwd(), path.join(o.resultsDir, 'latest.json'))} and latest.md`);
  return records.some((r) => r.status === 'failed') ? 1 : 0;
}

function markdown(
  json: { startedAt: string; finishedAt: string; command: string; machine: ReturnType<typeof machineInfo>; pinning: string; loadAverage: { start: number[]; end: number[] } },
  records: RunRecord[],
  comparisons: ComparisonRow[],
  sweep: { table: string[][]; summaries: SweepSummary[] } | undefined,
): string {
  const m = json.machine;
  const md = renderMarkdown(
    records.filter((r) => r.kind !== 'sweep'),
    comparisons,
  );
  const lines = [
    '# Hadron benchmark results',
    '',
    `Run ${json.startedAt} → ${json.finishedAt}: \`${json.command}\``,
    '',
    `Machine: ${m.nproc} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.platform} (kernel ${m.kernel}), node ${m.node}, ${m.natsServer ?? 'no nats-server'}.`,
    `${json.pinning}.`,
    `Load average (1/5/15 min): ${json.loadAverage.start.join(' ')} at start, ${json.loadAverage.end.join(' ')} at end; 1-min load at the end of each workload is in the last column below.`,
    '',
    '## Ratios',
    '',
    md.ratios,
    '',
    ...RATIO_LEGEND.map((l) => `- ${l}`),
    '',
    '## Results',
    '',
    md.results,
    '',
    ...(sweep ? ['## Rate sweep', '', mdTable(sweep.table), '', ...SWEEP_LEGEND.map((l) => `- ${l}`), ''] : []),
    '## Workloads',
    '',
    ...records.map((r) => `- **${r.id}** — ${r.title}. Load ${r.load1AtEnd}. ${r.notes.join('; ')}${r.verified.length ? `. Verified: ${r.verified.join('; ')}` : ''}${r.reason ? `. ${r.status}: ${r.reason}` : ''}`),
  ];
  for (const r of records) {
    for (const s of r.profileSummaries ?? []) lines.push('', `## CPU profile: ${r.id} (server)`, '', '```', formatProfile(s), '```');
    for (const s of r.clientProfileSummaries ?? []) lines.push('', `## CPU profile: ${r.id} (load generator)`, '', '```', formatProfile(s), '```');
  }
  return `${lines.join('\n')}\n`;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    if (current) {
      killGroup(current.child, 'SIGKILL');
      fs.rmSync(current.tmp, { recursive: true, force: true });
    }
    process.exit(130);
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
