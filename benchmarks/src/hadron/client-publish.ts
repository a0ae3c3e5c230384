/**
 * Client-level publish: many small `publish()` calls through `@hadron/client`, one event each,
 * `window` calls outstanding (like `js.publish()` with a window on the NATS side), fsync on. The
 * client's automatic batching decides the requests actually sent.
 *
 * The client package is developed alongside this one, so it is loaded at run time: when it is
 * missing or does not export `createClient`, the workload is reported as skipped with the reason
 * ("client not available") instead of failing the whole run.
 *
 * Check: every publish() resolves and the partition's last offset (read from the server's
 * `current_offset` metric) equals the number of events published.
 */
import { benchEvent, payload } from '../lib/events.js';
import { now } from '../lib/stats.js';
import { runWindowed } from '../lib/window.js';
import { check, noResult, throughput, type WorkloadResult, type WorkloadSpec } from '../types.js';
import { withHadron, type HadronBench } from './cluster.js';

/** The slice of `@hadron/client` this workload uses. */
interface ClientLike {
  publish(events: unknown[], opts: { fsync: boolean }): Promise<unknown>;
  ready?(): Promise<void>;
  close?(): Promise<void> | void;
  /** Requests actually sent by the client's batching (absent in older clients). */
  publishStats?: { batches: number; events: number };
}
type CreateClient = (opts: { url: string; token: string }) => ClientLike | Promise<ClientLike>;

/** Loads `createClient`, or returns why it cannot be used. */
export async function loadClient(): Promise<CreateClient | string> {
  const spec = '@hadron/client';
  try {
    const mod = (await import(spec)) as { createClient?: unknown };
    if (typeof mod.createClient !== 'function') return 'client not available: @hadron/client does not export createClient() yet';
    return mod.createClient as CreateClient;
  } catch (err) {
    return `client not available: cannot load @hadron/client (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
  }
}

export async function hadronClientPublish(spec: WorkloadSpec): Promise<WorkloadResult> {
  const createClient = await loadClient();
  if (typeof createClient === 'string') {
    return noResult(spec, 'skipped', createClient);
  }
  return withHadron(spec, async (h) => {
    const client = await createClient({ url: h.stream.url(0), token: h.stream.tokens.full });
    try {
      // Measure steady-state publishing, not partition discovery.
      await client.ready?.();
      const data = payload(spec.eventSize);
      const events = Array.from({ length: 1024 }, (_, i) => benchEvent(`c-${i}`, data));
      const t0 = now();
      await runWindowed(spec.events, spec.window, async (i) => {
        await client.publish([events[i % events.length]!], { fsync: true });
      });
      const seconds = (now() - t0) / 1000;
      const batches = client.publishStats?.batches;
      const offset = await currentOffset(h);
      check(offset === spec.events, `server offsets sum to ${spec.events} events published (got ${offset})`);
      return {
        id: spec.id,
        system: 'hadron',
        kind: 'client',
        title: spec.title,
        status: 'ok',
        ...throughput(spec, spec.events, seconds),
        verified: [`${spec.events} publish() calls resolved; server current_offset = ${spec.events}`],
        params: { partitions: spec.partitions, eventSize: spec.eventSize, eventsPerCall: 1, callsInFlight: spec.window, fsync: true, requestsSent: batches, meanEventsPerRequest: batches ? Math.round(spec.events / batches) : undefined },
        notes: ['@hadron/client publish(), one event per call; batching is the client library’s'],
      };
    } finally {
      await client.close?.();
    }
  });
}

/** Sum of `hadron_stream_current_offset` over the stream's partitions. */
async function currentOffset(h: HadronBench): Promise<number> {
  let total = 0;
  for (let p = 0; p < h.stream.partitions; p++) {
    const text = await (await fetch(`${h.stream.metricsUrl(p)}/metrics`)).text();
    total += Number(/^hadron_stream_current_offset(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? NaN);
  }
  return total;
}
