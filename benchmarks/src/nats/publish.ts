/**
 * JetStream publish throughput, two ways:
 *  - `natsJsPublish`: the client-level figure, `js.publish()` (awaits a PubAck per message) with
 *    `window` messages in flight per stream;
 *  - `natsCorePublish`: the server's own limit, core `publish()` to the stream's subject with a
 *    reply inbox and `window` PubAcks outstanding — what JetStream can ingest when the Node
 *    client's per-message promise/timer overhead is taken away.
 * "Partitions" map to separate streams, each with its own connection.
 *
 * Check: PubAck sequences reach the count sent, and the stream holds exactly that many messages.
 */
import { createInbox, type NatsConnection } from 'nats';
import { payload } from '../lib/events.js';
import { now } from '../lib/stats.js';
import { runWindowed } from '../lib/window.js';
import { check, throughput, type WorkloadResult, type WorkloadSpec } from '../types.js';
import { addStream, checkPublished, subject, withNats } from './server.js';

export function natsJsPublish(spec: WorkloadSpec): Promise<WorkloadResult> {
  return runPublish(spec, 'js.publish()', (nc, i, count, data) => jsPublish(nc, subject(i), count, spec.window, data));
}

/** `js.publish()` calls with `window` PubAcks awaited at once; resolves with the highest seq acked. */
export async function jsPublish(nc: NatsConnection, subj: string, count: number, window: number, data: Uint8Array): Promise<number> {
  const js = nc.jetstream();
  let max = 0;
  await runWindowed(count, window, async () => {
    const ack = await js.publish(subj, data);
    if (ack.seq > max) max = ack.seq;
  });
  return max;
}

export function natsCorePublish(spec: WorkloadSpec): Promise<WorkloadResult> {
  return runPublish(spec, 'core publish + reply inbox', (nc, i, count, data) => corePublish(nc, subject(i), count, spec.window, data));
}

/** Core publishes with a reply inbox, `window` PubAcks outstanding; resolves with the last seq. */
export function corePublish(nc: NatsConnection, subj: string, count: number, window: number, data: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const inbox = createInbox();
    let sent = 0;
    let acked = 0;
    const sub = nc.subscribe(inbox, {
      callback: (err, m) => {
        if (err) {
          reject(err);
          return;
        }
        acked++;
        if (acked === count) {
          sub.unsubscribe();
          const ack = JSON.parse(new TextDecoder().decode(m.data)) as { seq?: number; error?: unknown };
          if (ack.error !== undefined || ack.seq === undefined) reject(new Error(`last PubAck is an error: ${JSON.stringify(ack)}`));
          else resolve(ack.seq);
        } else if (sent < count) {
          sent++;
          nc.publish(subj, data, { reply: inbox });
        }
      },
    });
    for (; sent < Math.min(window, count); ) {
      sent++;
      nc.publish(subj, data, { reply: inbox });
    }
  });
}

async function runPublish(
  spec: WorkloadSpec,
  how: string,
  publishAll: (nc: NatsConnection, stream: number, count: number, data: Uint8Array) => Promise<number>,
): Promise<WorkloadResult> {
  return withNats(async (srv) => {
    const perStream = Math.ceil(spec.events / spec.partitions);
    const conns = await Promise.all(Array.from({ length: spec.partitions }, () => srv.connect()));
    try {
      for (let i = 0; i < spec.partitions; i++) await addStream(conns[0]!, i);
      const data = payload(spec.eventSize);
      const t0 = now();
      const lastSeqs = await Promise.all(conns.map((nc, i) => publishAll(nc, i, perStream, data)));
      const seconds = (now() - t0) / 1000;
      await checkPublished(conns[0]!, lastSeqs, perStream);
      return {
        id: spec.id,
        system: 'nats',
        kind: 'publish',
        title: spec.title,
        status: 'ok',
        ...throughput(spec, perStream * spec.partitions, seconds),
        verified: [`each of ${spec.partitions} stream(s): last PubAck seq = stream message count = ${perStream}`],
        params: { streams: spec.partitions, eventSize: spec.eventSize, how, windowPerStream: spec.window, storage: 'file' },
        notes: [`${how}, ${spec.window} in flight per stream, one connection per stream`],
      };
    } finally {
      await Promise.allSettled(conns.map((nc) => nc.close()));
    }
  });
}
