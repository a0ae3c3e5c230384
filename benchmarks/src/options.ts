/**
 * Command-line flags (each also settable as an environment variable BENCH_<FLAG>, e.g.
 * BENCH_EVENTS=100000). Defaults are the full sizes; use smaller ones for a quick run:
 *   node benchmarks/dist/run.js --only publish --events 100000
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchOptions {
  /** Workload filters: a kind (publish, latency, drain, client), a system (hadron, nats, kafka) or part of an id. */
  only: string[];
  skip: string[];
  /** Events per publish workload (spread over the partitions). */
  events: number;
  /** Events pre-filled and drained. */
  drainEvents: number;
  pipelineInstances: number;
  sizes: number[];
  partitions: number[];
  /** Hadron: events per publish request and requests in flight per partition. */
  batch: number;
  window: number;
  /** NATS / Hadron client: messages (publish() calls) in flight per stream. */
  natsWindow: number;
  /** Latency: offered events/s of each set of latency rows (`--rates`); `rate` is the first (the replication rows run at it). */
  rates: number[];
  rate: number;
  latencySeconds: number;
  warmupSeconds: number;
  latencyBatch: number;
  /** Rate sweep (sweep.ts): offered rates in order, measured and warm-up seconds per step, the p99 bound in ms. */
  sweepRates: number[];
  sweepSeconds: number;
  sweepWarmupSeconds: number;
  sweepP99Ms: number;
  /** Drain: Hadron group max batch size; NATS pull batch size. */
  drainBatch: number;
  natsPullBatch: number;
  /** Extra environment for every Hadron server (tuning experiments), e.g. HADRON_MAX_DELIVERY_BYTES. */
  serverEnv: Record<string, string>;
  /** Write and summarise CPU profiles of the Hadron servers. */
  profile: boolean;
  /** Pin the load generator and the servers to different CPUs with taskset (lib/pin.ts). */
  pin: boolean;
  /** Install nats-server with apt-get, and fetch the Kafka jars (mvn), when missing. */
  install: boolean;
  /** Where latest.json / latest.md go. */
  resultsDir: string;
  list: boolean;
  help: boolean;
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const BENCH_ROOT = path.resolve(here, '..');

export const DEFAULTS: BenchOptions = {
  only: [],
  skip: [],
  events: 1_000_000,
  drainEvents: 1_000_000,
  pipelineInstances: 10_000,
  sizes: [1024, 256],
  partitions: [1, 3],
  batch: 1000,
  window: 4,
  natsWindow: 1000,
  rates: [20_000, 50_000],
  rate: 20_000,
  latencySeconds: 15,
  warmupSeconds: 2,
  latencyBatch: 10,
  sweepRates: [5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 75_000, 100_000, 150_000],
  sweepSeconds: 6,
  sweepWarmupSeconds: 1,
  sweepP99Ms: 10,
  drainBatch: 10_000,
  natsPullBatch: 1000,
  serverEnv: {},
  profile: false,
  pin: false,
  install: true,
  resultsDir: path.join(BENCH_ROOT, 'results'),
  list: false,
  help: false,
};

export const USAGE = `usage: node benchmarks/dist/run.js [flags]   (or: npm run bench -- [flags])

  --only A,B          run only workloads matching: a kind (publish, latency, drain, client, sweep),
                      a system (hadron, nats, kafka) or part of an id (see --list;
                      repl: the replication rows, Hadron and the NATS cluster)
  --skip A,B          leave those out
  --events N          events per publish workload (default ${DEFAULTS.events})
  --drain-events N    events pre-filled and drained (default ${DEFAULTS.drainEvents})
  --pipeline-instances N  pipeline instances for the 5-stage pipeline run (default ${DEFAULTS.pipelineInstances})
  --sizes 1024,256    event payload sizes in bytes for the publish workloads
  --partitions 1,3    partition (stream) counts for the publish workloads
  --batch N           Hadron events per publish request (default ${DEFAULTS.batch})
  --window N          Hadron publish requests in flight per partition (default ${DEFAULTS.window})
  --nats-window N     NATS messages / client publish() calls in flight (default ${DEFAULTS.natsWindow})
  --rates N,M         latency workloads: offered events/s, one set of latency rows per rate
                      (default ${DEFAULTS.rates.join(',')}); the first rate keeps the plain ids
                      (hadron.latency.1k, …) and runs the replication rows, the others get a
                      rate suffix (hadron.latency.1k.50k)
  --rate N            the same as --rates N (one rate)
  --latency-seconds S measured seconds (default ${DEFAULTS.latencySeconds}, after --warmup-seconds ${DEFAULTS.warmupSeconds})
  --latency-batch N   Hadron: at most N due events per request (default ${DEFAULTS.latencyBatch})
  --sweep-rates A,B,… rate sweep (--only sweep): offered events/s of its steps, increasing;
                      each system stops at its first step whose p99 > --sweep-p99-ms or
                      whose rate is not sustained (default
                      ${DEFAULTS.sweepRates.join(',')})
  --sweep-seconds S   measured seconds per sweep step (default ${DEFAULTS.sweepSeconds}, after
                      --sweep-warmup-seconds ${DEFAULTS.sweepWarmupSeconds})
  --sweep-p99-ms N    the sweep's p99 bound in ms (default ${DEFAULTS.sweepP99Ms})
  --drain-batch N     Hadron group max batch size (default ${DEFAULTS.drainBatch})
  --nats-pull-batch N NATS pull batch size (default ${DEFAULTS.natsPullBatch})
  --server-env K=V,…  extra environment for the Hadron servers (e.g. HADRON_MAX_DELIVERY_BYTES=16777216)
  --profile           CPU-profile the Hadron servers and print the top self-time functions
  --pin               pin the load generator and the servers to different CPUs (taskset: the
                      generator gets the last CPU, the servers the others); off by default:
                      on 2 CPUs it puts every server on one core (benchmarks/README.md)
  --no-pin            do not pin (the default)
  --no-install        do not apt-get install nats-server (or maven) nor fetch the Kafka jars
                      from Maven Central when they are missing
  --results DIR       where latest.json and latest.md are written (default benchmarks/results)
  --list              list the selected workloads and exit
Every flag can also be given as an environment variable, e.g. BENCH_EVENTS=20000 BENCH_ONLY=hadron.`;

const INT_FLAGS = {
  events: 'events',
  'drain-events': 'drainEvents',
  'pipeline-instances': 'pipelineInstances',
  batch: 'batch',
  window: 'window',
  'nats-window': 'natsWindow',
  'latency-seconds': 'latencySeconds',
  'warmup-seconds': 'warmupSeconds',
  'latency-batch': 'latencyBatch',
  'sweep-seconds': 'sweepSeconds',
  'sweep-warmup-seconds': 'sweepWarmupSeconds',
  'sweep-p99-ms': 'sweepP99Ms',
  'drain-batch': 'drainBatch',
  'nats-pull-batch': 'natsPullBatch',
} as const satisfies Record<string, keyof BenchOptions>;
const LIST_FLAGS = { only: 'only', skip: 'skip' } as const;
const NUM_LIST_FLAGS = { sizes: 'sizes', partitions: 'partitions', rates: 'rates', 'sweep-rates': 'sweepRates' } as const;
/** `--rate N` is `--rates N`. */
const RATE_FLAG = 'rate';
const BOOL_FLAGS = { profile: 'profile', list: 'list', help: 'help' } as const;

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions {
  const o: BenchOptions = { ...DEFAULTS };
  const set = (flag: string, value: string | undefined, from: string): void => {
    const need = (): string => {
      if (value === undefined || value === '') throw new Error(`${from} needs a value`);
      return value;
    };
    if (flag in INT_FLAGS) {
      const n = Number(need().replaceAll('_', ''));
      if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${from} must be a positive integer, got ${JSON.stringify(value)}`);
      o[INT_FLAGS[flag as keyof typeof INT_FLAGS]] = n;
    } else if (flag in LIST_FLAGS) {
      o[LIST_FLAGS[flag as keyof typeof LIST_FLAGS]] = need().split(',').map((s) => s.trim()).filter(Boolean);
    } else if (flag in NUM_LIST_FLAGS || flag === RATE_FLAG) {
      const ns = need().split(',').map((s) => Number(s.trim().replaceAll('_', '')));
      if (ns.length === 0 || ns.some((n) => !Number.isSafeInteger(n) || n <= 0)) throw new Error(`${from} must be a comma-separated list of positive integers, got ${JSON.stringify(value)}`);
      if (flag === RATE_FLAG && ns.length !== 1) throw new Error(`${from} must be a positive integer, got ${JSON.stringify(value)} (several rates: --rates)`);
      if ((flag === RATE_FLAG || flag === 'rates' || flag === 'sweep-rates') && new Set(ns).size !== ns.length) throw new Error(`${from} names a rate twice: ${JSON.stringify(value)}`);
      // A sweep stops at its first failing step: its steps must go up.
      if (flag === 'sweep-rates' && ns.some((n, i) => i > 0 && n <= ns[i - 1]!)) throw new Error(`${from} must be increasing, got ${JSON.stringify(value)}`);
      o[flag === RATE_FLAG ? 'rates' : NUM_LIST_FLAGS[flag as keyof typeof NUM_LIST_FLAGS]] = ns;
    } else if (flag in BOOL_FLAGS) {
      o[BOOL_FLAGS[flag as keyof typeof BOOL_FLAGS]] = value === undefined || !['0', 'false', 'no'].includes(value);
    } else if (flag === 'no-install') {
      o.install = false;
    } else if (flag === 'no-pin') {
      o.pin = false;
    } else if (flag === 'pin') {
      o.pin = value === undefined || !['0', 'false', 'no'].includes(value);
    } else if (flag === 'server-env') {
      for (const kv of need().split(',').filter(Boolean)) {
        const eq = kv.indexOf('=');
        if (eq <= 0) throw new Error(`${from}: expected KEY=VALUE, got ${JSON.stringify(kv)}`);
        o.serverEnv = { ...o.serverEnv, [kv.slice(0, eq)]: kv.slice(eq + 1) };
      }
    } else if (flag === 'results') {
      o.resultsDir = path.resolve(need());
    } else {
      throw new Error(`unknown ${from.startsWith('--') ? 'flag' : 'variable'} ${from}\n\n${USAGE}`);
    }
  };
  const known = [...Object.keys(INT_FLAGS), ...Object.keys(LIST_FLAGS), RATE_FLAG, ...Object.keys(NUM_LIST_FLAGS), ...Object.keys(BOOL_FLAGS), 'no-install', 'no-pin', 'pin', 'results', 'server-env'];
  for (const flag of known) {
    const v = env[`BENCH_${flag.toUpperCase().replaceAll('-', '_')}`];
    if (v !== undefined && v !== '') set(flag, flag === 'no-install' || flag === 'no-pin' ? undefined : v, `BENCH_${flag.toUpperCase().replaceAll('-', '_')}`);
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h') {
      o.help = true;
      continue;
    }
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(a)}\n\n${USAGE}`);
    const eq = a.indexOf('=');
    const flag = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    let value = eq >= 0 ? a.slice(eq + 1) : undefined;
    const takesValue = !(flag in BOOL_FLAGS) && flag !== 'no-install' && flag !== 'no-pin' && flag !== 'pin';
    if (takesValue && value === undefined) value = argv[++i];
    set(flag, value, `--${flag}`);
  }
  o.rate = o.rates[0]!;
  return o;
}
