/**
 * Publish latency under a fixed offered load (open loop, see lib/open-loop.ts): `rate` events/s
 * of `eventSize` bytes to one partition (partition 0), fsync on, with the workload's ack mode. Events are sent as they come due, at most
 * `batch` per StreamPublish request, with no limit on requests in flight.
 *
 * Check: every event is answered and the partition's last offset equals the events sent.
 */
import { decodePublishResponse, encodePublishRequest } from '@hadron/proto';
import { eventPool } from '../lib/events.js';
import { latencyResult, runOpenLoop } from '../lib/open-loop.js';
import { check, type WorkloadResult, type WorkloadSpec } from '../types.js';
import { PUBLISH, replicationParams, withHadron } from './cluster.js';
import { scrape, serverPublishLatency } from './server-metrics.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';

export function hadronLatency(spec: WorkloadSpec): Promise<WorkloadResult> {
  return withHadron(spec, async (h) => {
    const ch = h.channels[0]!;
    const pool = eventPool({ size: spec.eventSize, count: 1024, tag: 'lat' });
    let maxOffset = 0;
    // The load generator's own event-loop delay: its stalls inflate the measured latency too.
    const eld = monitorEventLoopDelay({ resolution: 1 });
    eld.enable();
    const r = await runOpenLoop({
      rate: spec.rate,
      seconds: spec.seconds,
      warmupSeconds: spec.warmupSeconds,
      maxBatch: spec.batch,
      maxOutstanding: spec.rate * 5,
      send: async (first, count) => {
        const evs: Buffer[] = [];
        for (let i = first; i < first + count; i++) evs.push(pool[i % pool.length]!);
        const res = decodePublishResponse(await ch.unary(PUBLISH, encodePublishRequest(evs, true, spec.ack ?? 0), { metadata: h.metadata }));
        if (res.offset > maxOffset) maxOffset = res.offset;
      },
    });
    eld.disable();
    const server = serverPublishLatency(await scrape(h));
    const notes = ['acked after fdatasync', `events sent as they come due, ≤ ${spec.batch} per request, no in-flight limit`];
    if (server) {
      notes.push(
        `server-side (receive → ack, whole run incl. warm-up, ${server.requests} requests): p50 ≤ ${server.p50UpToMs} ms, p99 ≤ ${server.p99UpToMs} ms; ` +
          `within 1/2.5/5/10 ms: ${['1', '2.5', '5', '10'].map((k) => `${server.shareWithinMs[k] ?? '?'}%`).join(' / ')}`,
      );
    }
    notes.push(`load generator event-loop delay p99 ${(eld.percentile(99) / 1e6).toFixed(1)} ms, max ${(eld.max / 1e6).toFixed(1)} ms (1 ms timer resolution)`);
    if (r.unsustainable) notes.push(`NOT SUSTAINED: ${r.unsustainable}`);
    else {
      check(r.acked === r.sent, `all ${r.sent} events answered (got ${r.acked})`);
      check(maxOffset === r.sent, `last offset ${maxOffset} = events sent ${r.sent}`);
    }
    return latencyResult(spec, r, {
      verified: `${r.sent} events answered; last offset = ${r.sent}`,
      params: {
        ...(spec.serverEnv ? { serverEnv: spec.serverEnv } : {}),
        ...replicationParams(spec),
        partitions: spec.partitions,
        eventSize: spec.eventSize,
        rate: spec.rate,
        maxBatch: spec.batch,
        seconds: spec.seconds,
        warmupSeconds: spec.warmupSeconds,
        fsync: true,
        ...(server ? { serverSide: server } : {}),
        clientEventLoopDelayMs: { p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6 },
      },
      notes,
    });
  });
}
