/**
 * Subscriber drain rate: `events` events are pre-filled into one partition (not timed), then a
 * new durable group with max batch size `maxBatch` reads them from the beginning, acking each
 * delivered batch (the server keeps one batch in flight per group, so this is ack-paced).
 *
 * Checks: batches are contiguous from offset 1 with attempt 1 (no redeliveries), the first event
 * of every batch decodes as a bench event with the right payload size, exactly `events` arrive,
 * and the server's `last_offset_processed` metric for the group reaches `events`.
 */
import { GrpcChannel } from '@hadron/core';
import {
  StreamSubscribeRequestSchema,
  SUBSCRIBE_ACK,
  create,
  decodeEvent,
  decodePublishResponse,
  decodeSubscribeResponse,
  toBinary,
} from '@hadron/proto';
import { EVENT_TYPE, publishRequestPool } from '../lib/events.js';
import { now } from '../lib/stats.js';
import { runWindowed } from '../lib/window.js';
import { check, throughput, type WorkloadResult, type WorkloadSpec } from '../types.js';
import { PUBLISH, SUBSCRIBE, withHadron, type HadronBench } from './cluster.js';

const GROUP = 'bench-drain';

export function hadronDrain(spec: WorkloadSpec): Promise<WorkloadResult> {
  return withHadron(spec, async (h) => {
    const n = spec.events;
    await prefill(h, spec);
    // Restart the partition so the drain is measured (and profiled) on its own: no pre-fill
    // flushes or garbage left over, and reads come from the segment files, not the tail cache.
    await h.stream.restart(0);
    await using ch = new GrpcChannel(h.stream.url(0));
    await ch.connect(AbortSignal.timeout(5000));

    const call = ch.bidi(SUBSCRIBE, { metadata: h.metadata });
    const setup = create(StreamSubscribeRequestSchema, {
      action: { case: 'setup', value: { groupName: GROUP, durable: true, maxBatchSize: spec.maxBatch, startingPoint: { case: 'beginning', value: {} } } },
    });
    let received = 0;
    let next = 1;
    let batches = 0;
    let largest = 0;
    const t0 = now();
    call.write(toBinary(StreamSubscribeRequestSchema, setup));
    for await (const msg of call.incoming) {
      const d = decodeSubscribeResponse(msg);
      const count = d.events.length;
      check(count > 0, 'non-empty delivery');
      check(d.attempt === 1, `batch ending at ${d.lastIncludedOffset} delivered once (attempt ${d.attempt})`);
      check(d.lastIncludedOffset - count + 1 === next, `batch starts at offset ${next} (got ${d.lastIncludedOffset - count + 1})`);
      const ev = decodeEvent(d.events[0]!);
      check(ev.type === EVENT_TYPE && ev.data.length === spec.eventSize, `event at offset ${next} is a ${spec.eventSize}-byte bench event`);
      call.write(SUBSCRIBE_ACK);
      received += count;
      next = d.lastIncludedOffset + 1;
      batches++;
      if (count > largest) largest = count;
      if (received >= n) break;
    }
    const seconds = (now() - t0) / 1000;
    check(received === n, `received exactly ${n} events (got ${received})`);
    await waitForGroupOffset(h, n);
    call.cancel();
    return {
      id: spec.id,
      system: 'hadron',
      kind: 'drain',
      title: spec.title,
      status: 'ok',
      ...throughput(spec, received, seconds),
      verified: [`${n} events in ${batches} contiguous batches from offset 1, none redelivered`, `server metric last_offset_processed{group} = ${n}`],
      params: { ...(spec.serverEnv ? { serverEnv: spec.serverEnv } : {}), partitions: 1, eventSize: spec.eventSize, maxBatchSize: spec.maxBatch, largestBatchSeen: largest, meanBatch: Math.round(received / batches), durable: true },
      notes: ['server restarted after the pre-fill (reads from segment files)', 'one batch in flight per group; each batch acked before the next is sent'],
    };
  });
}

async function prefill(h: HadronBench, spec: WorkloadSpec): Promise<void> {
  const batch = 1000;
  const pool = publishRequestPool({ size: spec.eventSize, batch, count: 8, fsync: false, tag: 'fill' });
  const full = Math.floor(spec.events / batch);
  const rest = spec.events - full * batch;
  const tail = rest > 0 ? publishRequestPool({ size: spec.eventSize, batch: rest, count: 1, fsync: false, tag: 'fillt' })[0] : undefined;
  let max = 0;
  await runWindowed(full + (tail ? 1 : 0), 8, async (i) => {
    const { offset } = decodePublishResponse(await h.channels[0]!.unary(PUBLISH, i === full ? tail! : pool[i % pool.length]!, { metadata: h.metadata }));
    if (offset > max) max = offset;
  });
  check(max === spec.events, `pre-fill: last offset ${max} = ${spec.events}`);
}

async function waitForGroupOffset(h: HadronBench, n: number): Promise<void> {
  const re = new RegExp(`^hadron_stream_subscriber_last_offset_processed\\{[^}]*group="${GROUP}"[^}]*\\} (\\d+)`, 'm');
  let seen = -1;
  for (let i = 0; i < 50; i++) {
    const text = await (await fetch(`${h.stream.metricsUrl(0)}/metrics`)).text();
    seen = Number(re.exec(text)?.[1] ?? -1);
    if (seen === n) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  check(false, `server's last_offset_processed for ${GROUP} = ${n} (saw ${seen})`);
}
