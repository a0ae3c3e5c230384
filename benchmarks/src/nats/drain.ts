/**
 * JetStream drain rate: `events` messages are pre-filled into one file stream (core publish +
 * reply, not timed), then a new durable pull consumer reads them with `consume()` pulling
 * batches of `maxBatch`, acking:
 *  - `batch` mode: AckPolicy.All, one ack per `maxBatch` messages (the like-for-like of Hadron's
 *    one ack per delivered batch, and the fastest option the peer has);
 *  - `each` mode: AckPolicy.Explicit, `m.ack()` on every message (the common usage).
 * Checks: stream sequences arrive in order 1..events (sampled every `maxBatch`), exactly `events`
 * arrive, and the consumer's ack floor reaches `events` with nothing pending.
 */
import { AckPolicy, DeliverPolicy } from 'nats';
import { payload } from '../lib/events.js';
import { now } from '../lib/stats.js';
import { check, throughput, type WorkloadResult, type WorkloadSpec } from '../types.js';
import { corePublish } from './publish.js';
import { addStream, streamName, streamState, subject, withNats } from './server.js';

const DURABLE = 'bench-drain';

export function natsDrain(spec: WorkloadSpec): Promise<WorkloadResult> {
  const mode = spec.ackMode ?? 'batch';
  return withNats(async (srv) => {
    const nc = await srv.connect();
    try {
      const n = spec.events;
      await addStream(nc, 0);
      const last = await corePublish(nc, subject(0), n, 1000, payload(spec.eventSize));
      check(last === n, `pre-fill: last seq ${last} = ${n}`);
      check((await streamState(nc, 0)).messages === n, `pre-fill: stream holds ${n} messages`);

      const jsm = await nc.jetstreamManager();
      await jsm.consumers.add(streamName(0), {
        durable_name: DURABLE,
        ack_policy: mode === 'each' ? AckPolicy.Explicit : AckPolicy.All,
        deliver_policy: DeliverPolicy.All,
        max_ack_pending: 20 * spec.maxBatch,
      });
      const consumer = await nc.jetstream().consumers.get(streamName(0), DURABLE);
      let count = 0;
      const t0 = now();
      const msgs = await consumer.consume({ max_messages: spec.maxBatch });
      for await (const m of msgs) {
        count++;
        if (mode === 'each') m.ack();
        if (count % spec.maxBatch === 0 || count === n) {
          check(m.seq === count, `message ${count} has stream seq ${count} (got ${m.seq})`);
          check(m.data.length === spec.eventSize, `message ${count} has a ${spec.eventSize}-byte payload`);
          if (mode === 'batch') m.ack();
        }
        if (count === n) break;
      }
      const seconds = (now() - t0) / 1000;
      // stop(), not close(): close() waits for the iterator to be drained, which we left early.
      msgs.stop();
      check(count === n, `received exactly ${n} messages (got ${count})`);
      let info = await jsm.consumers.info(streamName(0), DURABLE);
      for (let i = 0; i < 50 && (info.ack_floor.stream_seq !== n || info.num_ack_pending !== 0); i++) {
        await new Promise((r) => setTimeout(r, 100));
        info = await jsm.consumers.info(streamName(0), DURABLE);
      }
      check(info.ack_floor.stream_seq === n && info.num_ack_pending === 0, `consumer ack floor = ${n} with nothing pending (floor ${info.ack_floor.stream_seq}, pending ${info.num_ack_pending})`);
      return {
        id: spec.id,
        system: 'nats',
        kind: 'drain',
        title: spec.title,
        status: 'ok',
        ...throughput(spec, count, seconds),
        verified: [`${n} messages in stream order`, `consumer ack floor = ${n}, nothing pending`],
        params: { streams: 1, eventSize: spec.eventSize, pullBatch: spec.maxBatch, ackPolicy: mode === 'each' ? 'explicit (every message)' : `all (one ack per ${spec.maxBatch})`, maxAckPending: 20 * spec.maxBatch },
        notes: [`durable pull consumer, consume() in batches of ${spec.maxBatch}`],
      };
    } finally {
      await nc.close();
    }
  });
}
