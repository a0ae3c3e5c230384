/**
 * Summarises V8 `.cpuprofile` files (written by `node --cpu-prof`): self time per function and per
 * area of the code, as a share of all samples and of the non-idle ones. Also a CLI:
 *   node benchmarks/dist/lib/profile.js FILE.cpuprofile [...] [--top 25]
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame }>;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  where: string;
  selfMs: number;
  pctTotal: number;
  pctBusy: number;
}

export interface GcSummary {
  /** Per kind (major, minor, incremental, weakcb): pauses, total and longest ms. */
  kinds: Record<string, { count: number; totalMs: number; maxMs: number }>;
  /** Pauses of 5 ms or more (what shows in a p99). */
  over5ms: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  busyMs: number;
  functions: ProfileRow[];
  areas: ProfileRow[];
  gc?: GcSummary;
  /** Stretches of ≥ 5 ms without an idle sample (event-loop stalls), longest first, with their main cause. */
  stalls: { count: number; longest: Array<{ ms: number; top: string }> };
}

/** Reads `<pid>.gc.json` written next to the profile by cpu-profile-preload. */
export function summarizeGc(file: string): GcSummary | undefined {
  if (!fs.existsSync(file)) return undefined;
  const entries = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<[string, number, number]>;
  const kinds: GcSummary['kinds'] = {};
  let over5ms = 0;
  for (const [kind, ms] of entries) {
    const k = (kinds[kind] ??= { count: 0, totalMs: 0, maxMs: 0 });
    k.count++;
    k.totalMs += ms;
    k.maxMs = Math.max(k.maxMs, ms);
    if (ms >= 5) over5ms++;
  }
  return { kinds, over5ms };
}

const NOT_BUSY = new Set(['(idle)']);
const STARTUP_MS = 2000;

/** Groups a script URL into an area a reader recognises (our packages, node internals, deps). */
export function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /\/packages\/([^/]+)\/dist\/(.+?)\.js$/.exec(url);
  if (pkg) return `@hadron/${pkg[1]} ${pkg[2]}`;
  const mod = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (mod) return mod[1]!;
  const internal = /^node:internal\/(.+)$/.exec(url);
  if (internal) return `node:${internal[1]!.split('/').slice(0, 2).join('/')}`;
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\/.*\/(packages|node_modules)\//, '$1/');
}

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const frames = new Map<number, CallFrame>();
  for (const n of prof.nodes) frames.set(n.id, n.callFrame);
  const stalls: Array<{ ms: number; top: string }> = [];
  let run = 0;
  let runBy = new Map<string, number>();
  let elapsed = 0;
  const endRun = (): void => {
    // The first 2 s are start-up (module compilation, manifest parsing), not serving.
    if (run >= 5 && elapsed > STARTUP_MS) {
      const [top, ms] = [...runBy].sort((a, b) => b[1] - a[1])[0] ?? ['?', 0];
      stalls.push({ ms: run, top: `${top} ${Math.round((100 * ms) / run)}%` });
    }
    run = 0;
    runBy = new Map();
  };
  const byFn = new Map<string, { name: string; where: string; ms: number }>();
  const byArea = new Map<string, number>();
  let total = 0;
  let busy = 0;
  // timeDeltas[i] is the time since the previous sample; charge it to sample i's node.
  for (let i = 0; i < prof.samples.length; i++) {
    const f = frames.get(prof.samples[i]!)!;
    const ms = (prof.timeDeltas[i] ?? 0) / 1000;
    elapsed += ms;
    total += ms;
    if (!NOT_BUSY.has(f.functionName)) {
      busy += ms;
      run += ms;
      const fn = f.functionName || '(anonymous)';
      runBy.set(fn, (runBy.get(fn) ?? 0) + ms);
    } else endRun();
    const name = f.functionName || '(anonymous)';
    const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '';
    const key = `${name}\u0000${where}`;
    const row = byFn.get(key) ?? { name, where, ms: 0 };
    row.ms += ms;
    byFn.set(key, row);
    const area = areaOf(f);
    byArea.set(area, (byArea.get(area) ?? 0) + ms);
  }
  const pct = (ms: number, of: number): number => (of > 0 ? (100 * ms) / of : 0);
  const rows = [...byFn.values()]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top)
    .map((r) => ({ name: r.name, where: r.where, selfMs: r.ms, pctTotal: pct(r.ms, total), pctBusy: NOT_BUSY.has(r.name) ? 0 : pct(r.ms, busy) }));
  const areas = [...byArea.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, ms]) => ({ name, where: '', selfMs: ms, pctTotal: pct(ms, total), pctBusy: NOT_BUSY.has(name) ? 0 : pct(ms, busy) }));
  endRun();
  stalls.sort((a, b) => b.ms - a.ms);
  const gc = summarizeGc(file.replace(/\.cpuprofile$/, '.gc.json'));
  return { file, totalMs: total, busyMs: busy, functions: rows, areas, ...(gc ? { gc } : {}), stalls: { count: stalls.length, longest: stalls.slice(0, 5) } };
}

export function formatProfile(s: ProfileSummary): string {
  const lines = [
    `${s.file}`,
    `  sampled ${(s.totalMs / 1000).toFixed(1)} s, busy (not idle) ${(s.busyMs / 1000).toFixed(1)} s = ${((100 * s.busyMs) / Math.max(1, s.totalMs)).toFixed(0)}% of one core`,
    `  top self time by function            %busy  %total  where`,
  ];
  for (const r of s.functions) lines.push(`    ${r.name.slice(0, 34).padEnd(34)} ${r.pctBusy.toFixed(1).padStart(5)}  ${r.pctTotal.toFixed(1).padStart(6)}  ${r.where}`);
  lines.push(`  self time by area                    %busy  %total`);
  for (const r of s.areas) lines.push(`    ${r.name.slice(0, 34).padEnd(34)} ${r.pctBusy.toFixed(1).padStart(5)}  ${r.pctTotal.toFixed(1).padStart(6)}`);
  if (s.gc) {
    const kinds = Object.entries(s.gc.kinds).map(([k, v]) => `${k} ${v.count}× ${v.totalMs.toFixed(0)} ms (max ${v.maxMs.toFixed(1)})`);
    lines.push(`  GC pauses: ${kinds.join(', ')}; ${s.gc.over5ms} pauses ≥ 5 ms`);
  }
  lines.push(`  event-loop stalls ≥ 5 ms after start-up (no idle sample): ${s.stalls.count}; longest: ${s.stalls.longest.map((x) => `${x.ms.toFixed(1)} ms (${x.top})`).join(', ')}`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const ti = args.indexOf('--top');
  const top = ti >= 0 ? Number(args.splice(ti, 2)[1]) : 25;
  for (const f of args) console.log(formatProfile(summarizeProfile(f, top)));
}
