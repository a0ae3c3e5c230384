/**
 * `hadron bench pub|sub` (like `nats bench`): publish or consume N events as fast as the
 * cluster allows, with progress on stderr while it runs and a summary (rate, throughput,
 * latency percentiles) on stdout. Bounded in count (`--count`) and time (`--max-time`).
 *
 * pub: `--concurrency` workers each publish batches of `--batch` events of `--size` bytes;
 * latency is per publish call (until acknowledged; on disk unless --no-fsync).
 * sub: joins `--group` (ephemeral unless --durable, from the beginning unless --latest) and
 * counts deliveries; events published by `bench pub` carry their send time (the `benchsent`
 * attribute), from which the end-to-end latency is measured.
 */
import { randomBytes } from 'node:crypto';
import { UsageError, intOption, type CommandContext, type CommandSpec } from '../args.js';
import { connect } from '../connect.js';
import { OUTPUT_OPTION, outputOf } from '../table.js';

/** Attribute bench pub stamps on every event: Unix ms when its batch was sent. */
export const BENCH_SENT_ATTRIBUTE = 'benchsent';
const MAX_COUNT = 10_000_000;

/** Latency summary in milliseconds (nearest-rank percentiles). */
export function percentiles(samples: number[]): { p50: number; p90: number; p99: number; max: number } {
  if (samples.length === 0) return { p50: 0, p90: 0, p99: 0, max: 0 };
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s[s.length - 1]! };
}

interface Summary {
  mode: 'pub' | 'sub';
  events: number;
  bytes: number;
  seconds: number;
  eventsPerSecond: number;
  mibPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  complete: boolean;
}

function report(ctx: CommandContext, s: Summary, output: 'text' | 'json'): void {
  if (output === 'json') {
    ctx.out(`${JSON.stringify(s)}\n`);
    return;
  }
  const l = s.latencyMs;
  ctx.out(
    `bench ${s.mode}: ${s.events} events, ${(s.bytes / 1048576).toFixed(1)} MiB in ${s.seconds.toFixed(2)} s = ${Math.round(s.eventsPerSecond)} events/s, ${s.mibPerSecond.toFixed(1)} MiB/s\n` +
      `latency ms: p50 ${l.p50.toFixed(1)}  p90 ${l.p90.toFixed(1)}  p99 ${l.p99.toFixed(1)}  max ${l.max.toFixed(1)}${s.complete ? '' : '\n(stopped before --count: --max-time or Ctrl-C)'}\n`,
  );
}

/** Prints progress to stderr once a second while `fn` runs. */
async function withProgress<T>(ctx: CommandContext, line: () => string, fn: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => ctx.err(`${line()}\n`), 1000);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}

const COMMON = {
  count: { type: 'string', value: 'N', help: `events (default 10000, at most ${MAX_COUNT})` },
  'max-time': { type: 'string', value: 'MS', help: 'stop after MS even if --count is not reached (default 60000)' },
  ...OUTPUT_OPTION,
} as const;

export const benchPub: CommandSpec = {
  path: ['bench', 'pub'],
  summary: 'Publish N events as fast as possible; print rate and latency percentiles.',
  positionals: [],
  options: {
    ...COMMON,
    size: { type: 'string', value: 'BYTES', help: 'data bytes per event (default 128)' },
    batch: { type: 'string', value: 'N', help: 'events per publish call (default 100)' },
    concurrency: { type: 'string', value: 'N', help: 'publish calls in flight (default 4)' },
    'no-fsync': { type: 'boolean', help: 'acknowledge without waiting for the disk' },
    type: { type: 'string', value: 'TYPE', help: 'event type (default hadron.bench)' },
  },
  async run(ctx) {
    const v = ctx.values;
    const output = outputOf(v, this);
    const count = intOption(v, 'count', this, { min: 1, max: MAX_COUNT }) ?? 10_000;
    const maxTime = intOption(v, 'max-time', this, { min: 1 }) ?? 60_000;
    const size = intOption(v, 'size', this, { max: 16 * 1024 * 1024 }) ?? 128;
    const batch = intOption(v, 'batch', this, { min: 1, max: 10_000 }) ?? 100;
    const concurrency = intOption(v, 'concurrency', this, { min: 1, max: 256 }) ?? 4;
    const type = (v.type as string | undefined) ?? 'hadron.bench';
    const data = randomBytes(size);
    const client = connect(ctx, { readyTimeoutMs: 10_000 });
    const stop = AbortSignal.any([ctx.signal, AbortSignal.timeout(maxTime)]);
    try {
      await client.ready({ signal: ctx.signal });
      let next = 0;
      let done = 0;
      const latencies: number[] = [];
      const started = performance.now();
      const worker = async (w: number): Promise<void> => {
        while (next < count && !stop.aborted) {
          const n = Math.min(batch, count - next);
          const first = next;
          next += n;
          const sent = Date.now();
          const events = Array.from({ length: n }, (_, i) => ({
            id: `bench-${w}-${first + i}`,
            source: 'hadron-bench',
            specversion: '1.0',
            type,
            optattrs: { [BENCH_SENT_ATTRIBUTE]: String(sent), partitionkey: String((first + i) % 1024) },
            data,
          }));
          const t0 = performance.now();
          await client.publish(events, { fsync: !v['no-fsync'] });
          latencies.push(performance.now() - t0);
          done += n;
        }
      };
      await withProgress(
        ctx,
        () => `bench pub: ${done}/${count} events, ${Math.round(done / ((performance.now() - started) / 1000))} events/s`,
        () => Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w))),
      );
      const seconds = (performance.now() - started) / 1000;
      report(ctx, { mode: 'pub', events: done, bytes: done * size, seconds, eventsPerSecond: done / seconds, mibPerSecond: (done * size) / 1048576 / seconds, latencyMs: percentiles(latencies), complete: done === count }, output);
      return 0;
    } finally {
      await client.close();
    }
  },
};

export const benchSub: CommandSpec = {
  path: ['bench', 'sub'],
  summary: 'Consume N events as fast as possible; print rate and end-to-end latency percentiles.',
  positionals: [],
  options: {
    ...COMMON,
    group: { type: 'string', value: 'G', help: 'consumer group (default hadron-bench-<random>)' },
    durable: { type: 'boolean', help: 'use a durable group (kept after the run)' },
    latest: { type: 'boolean', help: 'only events published after the group is created (default: from the beginning)' },
    batch: { type: 'string', value: 'N', help: 'most events per delivery (default 500)' },
  },
  async run(ctx) {
    const v = ctx.values;
    const output = outputOf(v, this);
    const count = intOption(v, 'count', this, { min: 1, max: MAX_COUNT }) ?? 10_000;
    const maxTime = intOption(v, 'max-time', this, { min: 1 }) ?? 60_000;
    const batchSize = intOption(v, 'batch', this, { min: 1, max: 100_000 }) ?? 500;
    const group = (v.group as string | undefined) ?? `hadron-bench-${randomBytes(4).toString('hex')}`;
    if (group === '') throw new UsageError('--group may not be empty', this.path);
    const client = connect(ctx, { readyTimeoutMs: 10_000 });
    try {
      await client.ready({ signal: ctx.signal });
      let got = 0;
      let bytes = 0;
      let firstAt: number | undefined;
      const latencies: number[] = [];
      let reached!: () => void;
      const enough = new Promise<void>((r) => (reached = r));
      const sub = client.subscribe({ group, durable: v.durable === true, batchSize, startPoint: v.latest ? 'latest' : 'beginning' }, (d) => {
        firstAt ??= performance.now();
        const now = Date.now();
        for (const e of d.events) {
          bytes += e.data.byteLength;
          const sent = Number(e.optattrs[BENCH_SENT_ATTRIBUTE]);
          if (Number.isFinite(sent) && sent > 0) latencies.push(now - sent);
        }
        got += d.events.length;
        if (got >= count) reached();
      });
      const stopped = new Promise<void>((r) => {
        const s = AbortSignal.any([ctx.signal, AbortSignal.timeout(maxTime)]);
        if (s.aborted) r();
        else s.addEventListener('abort', () => r(), { once: true });
      });
      await withProgress(ctx, () => `bench sub: ${got}/${count} events`, () => Promise.race([enough, stopped, sub.done]));
      const end = performance.now();
      await sub.close();
      const seconds = firstAt === undefined ? 0 : (end - firstAt) / 1000;
      report(
        ctx,
        { mode: 'sub', events: got, bytes, seconds, eventsPerSecond: seconds > 0 ? got / seconds : 0, mibPerSecond: seconds > 0 ? bytes / 1048576 / seconds : 0, latencyMs: percentiles(latencies), complete: got >= count },
        output,
      );
      return got >= count ? 0 : 1;
    } finally {
      await client.close();
    }
  },
};
