/**
 * Durable publish throughput: `events` events of `eventSize` bytes spread evenly over
 * `partitions` partitions, `batch` events per StreamPublish request (fsync: true), `window`
 * requests in flight per partition over one HTTP/2 connection per partition.
 *
 * Check: every request is answered with a distinct last offset, and each partition's highest
 * offset equals the number of events sent to it (offsets are dense and start at 1).
 */
import { decodePublishResponse } from '@hadron/proto';
import { publishRequestPool } from '../lib/events.js';
import { now } from '../lib/stats.js';
import { runWindowed } from '../lib/window.js';
import { check, throughputResult, type WorkloadResult, type WorkloadSpec } from '../types.js';
import { PUBLISH, replicationParams, withHadron } from './cluster.js';

/** Distinct pre-encoded requests cycled per partition. */
const POOL = 8;

export function hadronPublish(spec: WorkloadSpec): Promise<WorkloadResult> {
  return withHadron(spec, async (h) => {
    // Round up so every run publishes at least `events` in total.
    const perPartition = Math.ceil(spec.events / spec.partitions);
    check(perPartition > 0, 'at least one event per partition');
    const full = Math.floor(perPartition / spec.batch);
    const rest = perPartition - full * spec.batch;
    const requests = full + (rest > 0 ? 1 : 0);
    const plans = h.channels.map((ch, p) => ({
      ch,
      pool: publishRequestPool({ size: spec.eventSize, batch: spec.batch, count: POOL, fsync: true, tag: `p${p}`, ack: spec.ack ?? 0 }),
      tail: rest > 0 ? publishRequestPool({ size: spec.eventSize, batch: rest, count: 1, fsync: true, tag: `p${p}t`, ack: spec.ack ?? 0 })[0] : undefined,
      offsets: new Set<number>(),
      max: 0,
    }));
    const t0 = now();
    await Promise.all(
      plans.map((pl) =>
        runWindowed(requests, spec.window, async (i) => {
          const req = i === full ? pl.tail! : pl.pool[i % POOL]!;
          const { offset } = decodePublishResponse(await pl.ch.unary(PUBLISH, req, { metadata: h.metadata }));
          pl.offsets.add(offset);
          if (offset > pl.max) pl.max = offset;
        }),
      ),
    );
    const seconds = (now() - t0) / 1000;
    for (const [p, pl] of plans.entries()) {
      check(pl.offsets.size === requests, `partition ${p}: ${requests} distinct last offsets (got ${pl.offsets.size})`);
      check(pl.max === perPartition, `partition ${p}: last offset ${pl.max} = events sent ${perPartition}`);
    }
    return throughputResult(spec, perPartition * spec.partitions, seconds, {
      verified: [`each of ${spec.partitions} partition(s): ${requests} requests answered with distinct offsets, last offset = ${perPartition}`],
      params: { ...(spec.serverEnv ? { serverEnv: spec.serverEnv } : {}), ...replicationParams(spec), partitions: spec.partitions, eventSize: spec.eventSize, batch: spec.batch, windowPerPartition: spec.window, fsync: true },
      notes: ['acked after fdatasync (group commit)'],
    });
  });
}
