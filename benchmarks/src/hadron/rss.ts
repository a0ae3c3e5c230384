/**
 * Resident memory of the partition servers during a workload, from their own
 * `process_resident_memory_bytes` metric (prom-client's default metrics, read from /proc):
 * once before the load (idle), every `everyMs` during it (peak), and once after it.
 */
import type { HadronBench } from './cluster.js';
import { scrape } from './server-metrics.js';

/** MiB, rounded to 0.1; per partition server. */
export interface ServerRss {
  idleMiB: number[];
  peakMiB: number[];
  endMiB: number[];
}

export function rssBytes(metricsText: string): number | undefined {
  // The server sets default labels (namespace, stream, partition, …) on every metric.
  const m = /^process_resident_memory_bytes(?:\{[^}]*\})? (\d+(?:\.\d+)?(?:e\+\d+)?)/m.exec(metricsText);
  return m ? Number(m[1]) : undefined;
}

const mib = (b: number | undefined): number => (b === undefined ? NaN : Math.round((10 * b) / 2 ** 20) / 10);

async function sampleAll(h: HadronBench): Promise<Array<number | undefined>> {
  return Promise.all(Array.from({ length: h.stream.partitions }, (_, p) => scrape(h, p).then(rssBytes, () => undefined)));
}

/** Starts sampling; `stop()` ends it and returns the figures. A failed scrape is skipped. */
export async function watchRss(h: HadronBench, everyMs = 250): Promise<{ stop(): Promise<ServerRss> }> {
  const idle = await sampleAll(h);
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
      return { idleMiB: idle.map(mib), peakMiB: peak.map((b) => mib(b || undefined)), endMiB: end.map(mib) };
    },
  };
}
