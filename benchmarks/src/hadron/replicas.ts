/**
 * Start-up fairness for the replication rows: a Hadron stream with r > 1 is only measured once
 * every partition's leader reports all its r − 1 replicas in sync (`hadron_stream_replica_in_sync`
 * = 1: fetched within the replication timeout and holding everything) — as the NATS peer waits
 * for its streams' replicas to be current. Without it the first publishes with ack ALL/MAJORITY
 * wait for replica processes that are still starting, which on a loaded machine took long enough
 * for a latency run to be abandoned as unsustained.
 */
import { until } from '@hadron/testing';
import type { HadronBench } from './cluster.js';
import { scrape } from './server-metrics.js';

/** The `replica` label → value of every `hadron_stream_replica_in_sync` series in a scrape. */
export function replicasInSync(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('hadron_stream_replica_in_sync{')) continue;
    const replica = /replica="([^"]*)"/.exec(line)?.[1];
    if (replica !== undefined) out.set(replica, Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** Resolves when each of the stream's partitions has `replicationFactor - 1` replicas in sync. */
export async function awaitReplicasInSync(h: HadronBench, partitions: number, replicationFactor: number, timeoutMs = 60_000): Promise<void> {
  if (replicationFactor <= 1) return;
  await until(
    async () => {
      for (let p = 0; p < partitions; p++) {
        const s = replicasInSync(await scrape(h, p).catch(() => ''));
        if (s.size !== replicationFactor - 1 || [...s.values()].some((v) => v !== 1)) return false;
      }
      return true;
    },
    timeoutMs,
    `every partition's ${replicationFactor - 1} replica(s) in sync before measuring`,
  );
}
