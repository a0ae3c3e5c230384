/** Reads the partition server's own Prometheus metrics, to split end-to-end numbers. */
import type { HadronBench } from './cluster.js';

export async function scrape(h: HadronBench, partition = 0): Promise<string> {
  return (await fetch(`${h.stream.metricsUrl(partition)}/metrics`)).text();
}

/**
 * The server-side publish latency (receive → acknowledge, fsync included) from the
 * `hadron_stream_publish_duration_seconds{fsync="true"}` histogram: the share of requests
 * within each bucket bound and the bucket bound the p50/p99 fall under.
 */
export function serverPublishLatency(text: string): { requests: number; p50UpToMs: number; p99UpToMs: number; shareWithinMs: Record<string, number> } | undefined {
  const buckets: Array<[number, number]> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('hadron_stream_publish_duration_seconds_bucket{') || !line.includes('fsync="true"')) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    const count = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (le !== undefined) buckets.push([le === '+Inf' ? Infinity : Number(le) * 1000, count]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return undefined;
  const upTo = (q: number): number => buckets.find(([, n]) => n >= q * total)![0];
  const shareWithinMs: Record<string, number> = {};
  for (const [ms, n] of buckets) if (Number.isFinite(ms)) shareWithinMs[String(ms)] = Math.round((10000 * n) / total) / 100;
  return { requests: total, p50UpToMs: upTo(0.5), p99UpToMs: upTo(0.99), shareWithinMs };
}
