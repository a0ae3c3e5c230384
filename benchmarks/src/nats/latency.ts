/**
 * JetStream publish latency at a fixed offered rate (open loop, lib/open-loop.ts), one stream,
 * each event published on its own as it comes due:
 *  - `js`: `js.publish()` → PubAck;
 *  - `core`: `nc.request()` to the stream subject (the PubAck is the reply) — the raw path.
 * Check: every event is answered and the stream holds exactly the events sent.
 */
import type { NatsConnection } from 'nats';
import { payload } from '../lib/events.js';
import { latencyResult, runOpenLoop } from '../lib/open-loop.js';
import { check, type WorkloadResult, type WorkloadSpec } from '../types.js';
import { addStream, streamState, subject, withNats } from './server.js';

export function natsLatency(spec: WorkloadSpec, mode: 'js' | 'core'): Promise<WorkloadResult> {
  return withNats(async (srv) => {
    const nc = await srv.connect();
    try {
      await addStream(nc, 0);
      return await measureLatency(spec, mode, nc, { streams: 1 });
    } finally {
      await nc.close();
    }
  });
}

/** The open-loop run against stream 0 (already created) over `nc`; `params` are added to the result's. */
export async function measureLatency(spec: WorkloadSpec, mode: 'js' | 'core', nc: NatsConnection, params: Record<string, unknown>): Promise<WorkloadResult> {
  const js = nc.jetstream();
  const data = payload(spec.eventSize);
  const subj = subject(0);
  const one = mode === 'js' ? () => js.publish(subj, data).then(() => undefined) : () => nc.request(subj, data, { timeout: 60_000 }).then(() => undefined);
  const r = await runOpenLoop({
    rate: spec.rate,
    seconds: spec.seconds,
    warmupSeconds: spec.warmupSeconds,
    maxBatch: 1,
    maxOutstanding: spec.rate * 5,
    send: async (_first, count) => {
      for (let i = 0; i < count; i++) await one();
    },
  });
  const how = mode === 'js' ? 'js.publish()' : 'nc.request() (core publish + reply)';
  const notes = [`${how}, each event sent on its own as it comes due`];
  if (r.unsustainable) notes.push(`NOT SUSTAINED: ${r.unsustainable}`);
  else {
    check(r.acked === r.sent, `all ${r.sent} events answered (got ${r.acked})`);
    const st = await streamState(nc, 0);
    check(st.messages === r.sent, `stream holds ${r.sent} messages (has ${st.messages})`);
  }
  return latencyResult(spec, r, {
    verified: `${r.sent} events answered; stream holds ${r.sent} messages`,
    params: { ...params, eventSize: spec.eventSize, rate: spec.rate, how, seconds: spec.seconds, warmupSeconds: spec.warmupSeconds },
    notes,
  });
}
