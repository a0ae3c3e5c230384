/**
 * An open-loop load schedule: event i is due at `t0 + i / rate`, whether or not earlier events
 * were answered. Latency is measured from the due time, not the send time, so a stalled client
 * or server shows up in the percentiles instead of silently lowering the offered load (the
 * "coordinated omission" trap).
 *
 * Node timers fire at best every ~1 ms, so each tick sends everything that has come due, cut
 * into batches of at most `maxBatch` events. The send lag (due → handed to the transport) is
 * reported separately so client-side scheduling delay is visible.
 */
import { Samples, now } from './stats.js';
import type { WorkloadResult, WorkloadSpec } from '../types.js';

export interface OpenLoopOptions {
  rate: number;
  seconds: number;
  warmupSeconds: number;
  maxBatch: number;
  /** Give up when this many events are unanswered (the system cannot sustain the rate). */
  maxOutstanding: number;
  /** Sends events [first, first+count); resolves when they are acknowledged. */
  send: (first: number, count: number) => Promise<void>;
}

export interface OpenLoopResult {
  latency: Samples;
  sendLag: Samples;
  sent: number;
  acked: number;
  /** Events/s answered during the measured window. */
  achievedRate: number;
  /** Set when the run was abandoned. */
  unsustainable?: string;
}

export function runOpenLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const latency = new Samples();
  const sendLag = new Samples();
  const total = Math.round(o.rate * (o.seconds + o.warmupSeconds));
  const warmupEvents = Math.round(o.rate * o.warmupSeconds);
  const msPer = 1000 / o.rate;
  return new Promise((resolve, reject) => {
    const t0 = now() + 5;
    let sent = 0;
    let acked = 0;
    let measuredAcked = 0;
    let firstMeasuredAt = 0;
    let lastAckAt = 0;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (unsustainable?: string): void => {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      const span = (lastAckAt - firstMeasuredAt) / 1000;
      resolve({ latency, sendLag, sent, acked, achievedRate: span > 0 ? measuredAcked / span : 0, ...(unsustainable ? { unsustainable } : {}) });
    };
    const tick = (): void => {
      if (stopped) return;
      const t = now();
      const due = Math.min(total, Math.floor((t - t0) / msPer) + 1);
      while (sent < due) {
        const first = sent;
        const count = Math.min(o.maxBatch, due - sent);
        sent += count;
        sendLag.add(t - (t0 + first * msPer));
        o.send(first, count).then(
          () => {
            if (stopped) return;
            const at = now();
            acked += count;
            for (let i = first; i < first + count; i++) {
              if (i < warmupEvents) continue;
              if (measuredAcked === 0) firstMeasuredAt = t0 + i * msPer;
              latency.add(at - (t0 + i * msPer));
              measuredAcked++;
            }
            lastAckAt = at;
            if (acked === total) finish();
          },
          (err: unknown) => {
            stopped = true;
            if (timer) clearTimeout(timer);
            reject(err);
          },
        );
      }
      if (sent - acked > o.maxOutstanding) {
        finish(`more than ${o.maxOutstanding} events unanswered after ${((t - t0) / 1000).toFixed(1)} s: the system does not sustain ${o.rate} events/s`);
        return;
      }
      if (sent < total) {
        const wait = t0 + sent * msPer - now();
        timer = setTimeout(tick, Math.max(0, Math.min(1, wait)));
      } else {
        timer = setTimeout(() => finish(`${sent - acked} events still unanswered 10 s after the last send`), 10_000);
      }
    };
    timer = setTimeout(tick, 5);
  });
}

/**
 * A latency run whose answered rate (over the measured window) stays below this share of the
 * offered rate did not sustain it, even if the open loop did not give up: its p99 is that of a
 * growing queue, not of the offered load. The Kafka latency row uses the same share.
 */
export const SUSTAINED_SHARE = 0.95;

/**
 * The result of a latency workload from its open-loop run: shared by every system so the
 * numbers mean the same for Hadron and NATS. A run that could not sustain the rate (gave up, or
 * answered less than SUSTAINED_SHARE of it) is reported as `unsustained`; one that gave up has no
 * verification claims.
 */
export function latencyResult(
  spec: WorkloadSpec,
  r: OpenLoopResult,
  extra: { verified: string; params: Record<string, unknown>; notes: string[] },
): WorkloadResult {
  const lat = r.latency.summary();
  const behind = r.achievedRate < spec.rate * SUSTAINED_SHARE ? `answered ${Math.round(r.achievedRate)}/s of the offered ${spec.rate}/s (< ${SUSTAINED_SHARE * 100}%)` : undefined;
  const unsustained = r.unsustainable ?? behind;
  return {
    id: spec.id,
    system: spec.system,
    kind: spec.kind,
    title: spec.title,
    status: unsustained ? 'unsustained' : 'ok',
    ...(unsustained ? { reason: unsustained } : {}),
    events: lat.samples,
    seconds: spec.seconds,
    eventsPerSec: r.achievedRate,
    mbPerSec: (r.achievedRate * spec.eventSize) / 1e6,
    latency: { ...lat, offeredRate: spec.rate, achievedRate: r.achievedRate, sendLagP99: r.sendLag.summary().p99 },
    verified: r.unsustainable ? [] : [extra.verified],
    params: extra.params,
    notes: extra.notes,
  };
}
