/**
 * Resident memory of the partition servers during a workload: once before the load (idle), every
 * `everyMs` during it (peak), and once after it. Read by this process from `/proc/<pid>/status`
 * (VmRSS) of each server, not by scraping the server's /metrics: rendering every metric 4 times a
 * second blocked the server's event loop for milliseconds each time, which showed up in the
 * latency rows' p99 (issue 11; before/after in benchmarks/README.md). The servers' own
 * `process_resident_memory_bytes` is the fallback where /proc is not readable.
 */
import { readFile } from 'node:fs/promises';
import type { HadronBench } from './cluster.js';
import { scrape } from './server-metrics.js';

/** MiB, rounded to 0.1; per partition server. */
export interface ServerRss {
  idleMiB: number[];
  peakMiB: number[];
  endMiB: number[];
}

/**
 * CPU and GC time each partition server spent between the idle sample and the end sample
 * (issue 11): on a shared machine a server's CPU seconds per event vary far less than its
 * throughput, so this is the figure to compare changes by.
 */
export interface ServerCpu {
  cpuSeconds: number[];
  gcSeconds: number[];
  majorGcs: number[];
}

/** The value of `name` (first sample, optionally with a label matcher) in a metrics text. */
export function metricValue(metricsText: string, name: string, label?: string): number | undefined {
  const labels = label === undefined ? '(?:\\{[^}]*\\})?' : `\\{[^}]*${label}[^}]*\\}`;
  const m = new RegExp(`^${name}${labels} (\\S+)`, 'm').exec(metricsText);
  const v = m ? Number(m[1]) : NaN;
  return Number.isFinite(v) ? v : undefined;
}

interface CpuSample {
  cpu: number;
  gc: number;
  major: number;
}

function cpuSample(text: string): CpuSample | undefined {
  const cpu = metricValue(text, 'process_cpu_seconds_total');
  if (cpu === undefined) return undefined;
  let gc = 0;
  for (const m of text.matchAll(/^nodejs_gc_duration_seconds_sum\{[^}]*\} (\S+)/gm)) gc += Number(m[1]);
  return { cpu, gc, major: metricValue(text, 'nodejs_gc_duration_seconds_count', 'kind="major"') ?? 0 };
}

export function rssBytes(metricsText: string): number | undefined {
  // The server sets default labels (namespace, stream, partition, …) on every metric.
  const m = /^process_resident_memory_bytes(?:\{[^}]*\})? (\d+(?:\.\d+)?(?:e\+\d+)?)/m.exec(metricsText);
  return m ? Number(m[1]) : undefined;
}

const mib = (b: number | undefined): number => (b === undefined ? NaN : Math.round((10 * b) / 2 ** 20) / 10);

/** VmRSS of process `pid` in bytes, from `/proc/<pid>/status`; undefined when unreadable. */
export function vmRssBytes(status: string): number | undefined {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return m ? Number(m[1]) * 1024 : undefined;
}

async function sampleOne(h: HadronBench, p: number): Promise<number | undefined> {
  const pid = h.stream.procs.get(p)?.proc.pid;
  if (pid !== undefined) {
    const fromProc = await readFile(`/proc/${pid}/status`, 'utf8').then(vmRssBytes, () => undefined);
    if (fromProc !== undefined) return fromProc;
  }
  return scrape(h, p).then(rssBytes, () => undefined);
}

async function sampleAll(h: HadronBench): Promise<Array<number | undefined>> {
  return Promise.all(Array.from({ length: h.stream.partitions }, (_, p) => sampleOne(h, p)));
}

async function cpuAll(h: HadronBench): Promise<Array<CpuSample | undefined>> {
  return Promise.all(Array.from({ length: h.stream.partitions }, (_, p) => scrape(h, p).then(cpuSample, () => undefined)));
}

const round3 = (n: number): number => Math.round(n * 1000) / 1000;

/** Starts sampling; `stop()` ends it and returns the figures. A failed scrape is skipped. */
export async function watchRss(h: HadronBench, everyMs = 250): Promise<{ stop(): Promise<ServerRss & { cpu: ServerCpu }> }> {
  const idle = await sampleAll(h);
  const cpu0 = await cpuAll(h);
  const peak = idle.map((b) => b ?? 0);
  let pending: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    // One scrape at a time: a server stalled under load must not pile up requests.
    pending = pending.then(async () => {
      (await sampleAll(h)).forEach((b, p) => (peak[p] = Math.max(peak[p]!, b ?? 0)));
    });
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await pending;
      const end = await sampleAll(h);
      end.forEach((b, p) => (peak[p] = Math.max(peak[p]!, b ?? 0)));
      const cpu1 = await cpuAll(h);
      const diff = (f: (s: CpuSample) => number): number[] => cpu1.map((s, p) => (s && cpu0[p] ? round3(f(s) - f(cpu0[p]!)) : NaN));
      const cpu = { cpuSeconds: diff((s) => s.cpu), gcSeconds: diff((s) => s.gc), majorGcs: diff((s) => s.major) };
      return { idleMiB: idle.map(mib), peakMiB: peak.map((b) => mib(b || undefined)), endMiB: end.map(mib), cpu };
    },
  };
}
