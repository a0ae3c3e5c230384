/**
 * `hadron dev`: every Stream of a set of manifests as real `hadron-stream` processes on
 * loopback, kept in step with the manifests as they change.
 *
 * State directory (`--data`, default `.hadron/`):
 *   partitions/<stream>-<N>/   each partition's data (STORAGE_DATA_PATH = partitions/)
 *   secrets/<token>.yaml       the Secret of each Token, as the operator makes it
 *   tokens/<token>             the bare JWT of each Token
 *   logs/<stream>-<N>.log      each partition process's log
 *   manifests/NNN-<file>       the manifests in force: copies of the user's files as last
 *                              accepted, which is what the partitions read (see below)
 *   replication/<stream>.key   the Stream's replication key (minted once, like the operator's
 *                              Secret <stream>-replication; HADRON_REPLICATION_KEY)
 *   dev.json                   port slots of the streams, pids, the URL of each stream
 *
 * Ports: the stream in slot k (slots are given in order of first appearance and kept in
 * dev.json, so addresses survive restarts and edits) serves partition N for clients on
 * `base + 100·k + N` and metrics on `base + 100·k + 50 + N`; at most 50 partitions per stream;
 * it replicates (SERVER_PORT) on `base + 6000 + 100·k + N`. Replicas of partition N live in
 * `partitions/<stream>-<M>/replicas/N/` of the pods M that hold them (docs/replication.md).
 * The CloudEvents HTTP ingress (docs/http.md) of partition N is on `httpBase + 100·k + N` (a
 * separate base, `--http-port`, default base + 5000: the client slot has no free port). Any
 * partition accepts any event and forwards keyed ones to their owner by the placement rule,
 * so partition 0's HTTP port is the stream's one HTTP URL, as partition 0 is its bootstrap URL.
 * Every partition gets HADRON_STREAM_URLS naming every stream of the manifests, so dead-letter
 * and reply Streams are reached in dev as through their Service in Kubernetes.
 * Every partition announces loopback addresses (HADRON_ADVERTISE_TEMPLATE) in its Metadata
 * stream, and reads the accepted manifests plus `secrets/` (HADRON_MANIFESTS), so scaling,
 * Pipelines and Tokens take effect in the servers themselves; this supervisor only starts and
 * stops processes, keeps the Secrets in step with the Tokens, and decides which version of the
 * manifests is in force.
 *
 * Scale-down safety (issue 10, as the operator's webhook does in Kubernetes): a change that
 * removes partitions is accepted only when every removed partition answers that no durable group
 * or Pipeline has undelivered events on it (core `checkPartitionLoss`), or the Stream carries
 * `hadron.rs/allow-partition-loss` (then what is left behind is reported and kept in dev.json).
 * A refused change is not handed to the partitions: the previous manifests stay in force, and
 * the check is repeated every few seconds and on every edit until it passes or is undone.
 *
 * States: new → starting → running → stopping → stopped. Reconciliations are serialized.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { HadronError, LocalManifests, describePartitionLoss, type ControlPlaneView, type LeftBehind, type Stream } from '@hadron/core';
import { PartitionProcess, type ProcessEvent } from './partition-process.js';
import { checkDevScaleDown } from './scale-down.js';
import { syncTokens, writeAtomic } from './tokens.js';

export const MAX_DEV_PARTITIONS = 50;

/**
 * Why the manifests cannot run here: a Stream with more partitions than the port layout has
 * slots. Running fewer would change where keys land (placement hashes over spec.partitions), so
 * the start is refused, and a live edit is refused like a scale-down (the previous manifests stay).
 */
export function tooManyPartitions(view: ControlPlaneView): string | undefined {
  const over = [...view.streams.values()].filter((s) => s.spec.partitions > MAX_DEV_PARTITIONS).map((s) => `stream ${s.metadata.name} asks for ${s.spec.partitions} partitions`);
  return over.length ? `${over.join('; ')}; hadron dev runs at most ${MAX_DEV_PARTITIONS} partitions per stream (its port layout has ${MAX_DEV_PARTITIONS} slots)` : undefined;
}
/** While a scale-down is refused, how often it is checked again. */
export const SCALE_DOWN_RECHECK_MS = 3000;

/** Server (replication) ports sit this far above the client ports. */
export const SERVER_PORT_OFFSET = 6000;

export interface DevClusterOptions {
  /** Manifest files or directories (absolute). */
  manifests: string[];
  /** State directory (absolute). */
  dataDir: string;
  /** First port (default 7000). */
  basePort: number;
  /** First CloudEvents HTTP port (default basePort + 5000). */
  httpBasePort?: number;
  namespace: string;
  /** Path of the `hadron-stream` bin. */
  streamBin: string;
  /**
   * One line for stdout (no trailing newline): what a script would parse — bootstrap URLs, the
   * token export lines, the console URL, the ready line.
   */
  print: (line: string) => void;
  /** One line of diagnostics for stderr: everything that happens (partitions, manifests, …). */
  note: (line: string) => void;
  /** Extra environment for every partition process. */
  env?: Record<string, string>;
  /** Serve TLS with these files (`hadron dev --tls`); URLs become https://. */
  tls?: { caFile: string; certFile: string; keyFile: string };
  /** Runs once every partition has started, before the ready line; its lines are printed first. */
  beforeReady?: (c: DevCluster) => Promise<string[]>;
}

interface StreamRun {
  name: string;
  slot: number;
  partitions: number;
  procs: Map<number, PartitionProcess>;
}

interface DevState {
  slots: Record<string, number>;
}

export class DevCluster extends EventEmitter<{ ready: [] }> {
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private manifests!: LocalManifests;
  private readonly streams = new Map<string, StreamRun>();
  private slots: Record<string, number> = {};
  private queue: Promise<void> = Promise.resolve();
  private tokens = new Map<string, string>();
  private lockFile: string;
  /** Pipeline name → its spec as last reported. */
  private pipelineSpecs = new Map<string, string>();
  /** The data directory is set up and locked by this run. */
  private created = false;
  /** The refusal last printed (printed again only when it changes). */
  private refusal: string | undefined;
  private recheck: NodeJS.Timeout | undefined;
  /** Per stream: what removing partitions left behind (allowed by the annotation). */
  private leftBehind: Record<string, { at: string; from: number; to: number; items: LeftBehind[]; unreachable: Array<{ partition: number; error: string }> }> = {};

  constructor(private readonly o: DevClusterOptions) {
    super();
    this.lockFile = path.join(o.dataDir, 'dev.pid');
  }

  private get secretsDir(): string {
    return path.join(this.o.dataDir, 'secrets');
  }
  private get tokensDir(): string {
    return path.join(this.o.dataDir, 'tokens');
  }
  private get stateFile(): string {
    return path.join(this.o.dataDir, 'dev.json');
  }
  /** The manifests in force, as the partitions read them. */
  private get acceptedDir(): string {
    return path.join(this.o.dataDir, 'manifests');
  }

  clientPort(slot: number, partition: number): number {
    return this.o.basePort + 100 * slot + partition;
  }

  /** The first stream (in slot order), if any runs. */
  firstStream(): string | undefined {
    return [...this.streams.values()].sort((a, b) => a.slot - b.slot)[0]?.name;
  }

  /** Partition `partition`'s CloudEvents HTTP port. */
  httpPort(slot: number, partition: number): number {
    return (this.o.httpBasePort ?? this.o.basePort + 5000) + 100 * slot + partition;
  }

  /** The CloudEvents HTTP URL of a stream (its partition 0, which forwards by key), if it runs. */
  httpUrl(stream: string): string | undefined {
    const r = this.streams.get(stream);
    return r ? `${this.o.tls ? 'https' : 'http'}://127.0.0.1:${this.httpPort(r.slot, 0)}/` : undefined;
  }

  /** SERVER_PORT (replication) of a partition: a window 6000 above the client ports. */
  serverPort(slot: number, partition: number): number {
    return this.clientPort(slot, partition) + SERVER_PORT_OFFSET;
  }

  /** The Stream's replication key, minted on first use and kept (0600) in `replication/`. */
  private replicationKey(stream: string): string {
    const file = path.join(this.o.dataDir, 'replication', `${stream}.key`);
    try {
      return fs.readFileSync(file, 'utf8').trim();
    } catch {
      const key = randomBytes(32).toString('base64url');
      writeAtomic(file, key, 0o600);
      return key;
    }
  }

  /** Bootstrap URL of a stream (its partition 0), if it runs. */
  url(stream: string): string | undefined {
    const r = this.streams.get(stream);
    return r ? `${this.o.tls ? 'https' : 'http'}://127.0.0.1:${this.clientPort(r.slot, 0)}` : undefined;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`DevCluster.start() called in state ${this.state}`);
    this.state = 'starting';
    const o = this.o;
    for (const p of o.manifests) {
      if (!fs.existsSync(p)) throw new HadronError('CONFIG_INVALID', `manifest path ${p} does not exist`);
    }
    // A first start creates nothing until it is known to work: a refused start (a port in use)
    // leaves no data directory behind and mints no token (issue 10).
    const fresh = !fs.existsSync(o.dataDir);
    let hadProblems = false;
    this.manifests = new LocalManifests({
      paths: o.manifests,
      namespace: o.namespace,
      logger: this.problemLogger(),
      pollMs: 500,
      onProblems: (list) => {
        if (list.length === 0 && hadProblems) o.note('manifests are valid again: every problem reported above is fixed');
        hadProblems = list.length > 0;
      },
    });
    if (fresh) {
      await this.manifests.start();
      await this.checkPorts(this.manifests.view());
    }
    for (const d of ['partitions', 'secrets', 'tokens', 'logs', 'manifests', 'replication']) fs.mkdirSync(path.join(o.dataDir, d), { recursive: true });
    this.lock();
    this.created = true;
    if (!fresh) {
      this.slots = this.readState().slots;
      // Before the port check: a killed previous run's partitions hold the ports.
      await this.reapOrphans();
      await this.manifests.start();
      await this.checkPorts(this.manifests.view());
    }
    const view = this.manifests.view();
    if (view.streams.size === 0) o.note(`no Stream in ${o.manifests.join(', ')}; waiting for one to appear`);
    await this.reconcile(view, true);
    // Always the latest view (with the texts it was read from), not the one the event carried.
    this.manifests.on('change', () => void this.enqueue(() => this.reconcile(this.manifests.view(), false)));
    this.state = 'running';
    const procs = [...this.streams.values()].flatMap((r) => [...r.procs.values()]);
    let timer: NodeJS.Timeout | undefined;
    const slow = await Promise.race([
      Promise.all(procs.map((p) => p.whenRunning().catch(() => undefined))).then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 30_000))),
    ]);
    clearTimeout(timer);
    if (slow) o.note(`not every partition started within 30 s (see ${path.join(o.dataDir, 'logs')}/); going on`);
    this.printSummary(o.beforeReady ? await o.beforeReady(this) : []);
    this.emit('ready');
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(fn).catch((err: unknown) => this.o.note(`error: ${(err as Error).message}`));
    return this.queue;
  }

  /** A pino logger for LocalManifests whose warnings become readable status lines. */
  private problemLogger(): pino.Logger {
    const print = this.o.note;
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (!line) continue;
          try {
            const j = JSON.parse(line) as { msg?: string; problem?: string };
            print(j.problem ? `invalid manifest: ${j.problem}` : `manifests: ${j.msg ?? line}`);
          } catch {
            print(line);
          }
        }
        cb();
      },
    });
    return pino({ level: 'warn', base: {} }, sink);
  }

  private lock(): void {
    try {
      const pid = Number(fs.readFileSync(this.lockFile, 'utf8'));
      if (pid && pid !== process.pid && alive(pid)) {
        throw new HadronError('CONFIG_INVALID', `another hadron dev (pid ${pid}) is running on ${this.o.dataDir}; stop it or use another --data directory`);
      }
    } catch (err) {
      if (err instanceof HadronError) throw err;
    }
    fs.writeFileSync(this.lockFile, String(process.pid));
  }

  /**
   * Partition processes left running by a previous `hadron dev` of this data directory that was
   * killed (so could not stop them): they hold its ports. Only processes that are `hadron-stream`
   * with this very data directory are stopped.
   */
  private async reapOrphans(): Promise<void> {
    let pids: number[] = [];
    try {
      const s = JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as { streams?: Record<string, { partitions?: Record<string, { pid?: number | null }> }> };
      pids = Object.values(s.streams ?? {}).flatMap((st) => Object.values(st.partitions ?? {}).map((p) => p.pid ?? 0));
    } catch {
      return;
    }
    const dataPath = path.join(this.o.dataDir, 'partitions');
    const ours = pids.filter((pid) => {
      if (!pid || !alive(pid)) return false;
      try {
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
        return cmd.includes('hadron-stream') && env.includes(`STORAGE_DATA_PATH=${dataPath}`);
      } catch {
        return false;
      }
    });
    if (ours.length === 0) return;
    this.o.note(`stopping ${ours.length} partition process(es) left running by a previous hadron dev on ${this.o.dataDir} (pids ${ours.join(', ')})`);
    for (const pid of ours) process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (ours.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const pid of ours.filter(alive)) process.kill(pid, 'SIGKILL');
  }

  private readState(): DevState {
    try {
      const s = JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as Partial<DevState> & { leftBehind?: DevCluster['leftBehind'] };
      this.leftBehind = s.leftBehind ?? {};
      return { slots: s.slots ?? {} };
    } catch {
      return { slots: {} };
    }
  }

  private writeState(): void {
    const streams: Record<string, unknown> = {};
    for (const r of this.streams.values()) {
      streams[r.name] = {
        url: this.url(r.name),
        httpUrl: this.httpUrl(r.name),
        partitions: Object.fromEntries([...r.procs.values()].map((p) => [p.o.partition, { pid: p.pid ?? null, port: p.o.clientPort, metricsPort: p.o.metricsPort, httpPort: this.httpPort(r.slot, p.o.partition), state: p.state }])),
      };
    }
    writeAtomic(this.stateFile, `${JSON.stringify({ pid: process.pid, basePort: this.o.basePort, slots: this.slots, streams, leftBehind: this.leftBehind }, null, 2)}\n`);
  }

  private slotOf(stream: string): number {
    let s = this.slots[stream];
    if (s === undefined) {
      const used = new Set(Object.values(this.slots));
      for (s = 0; used.has(s); s++);
      this.slots[stream] = s;
    }
    return s;
  }

  /** Refuses to start when a port a partition needs is taken (another hadron dev, say). */
  private async checkPorts(view: ControlPlaneView): Promise<void> {
    const tooMany = tooManyPartitions(view);
    if (tooMany !== undefined) throw new HadronError('CONFIG_INVALID', tooMany);
    for (const s of [...view.streams.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
      const slot = this.slotOf(s.metadata.name);
      for (let n = 0; n < Math.min(s.spec.partitions, MAX_DEV_PARTITIONS); n++) {
        for (const port of [this.clientPort(slot, n), this.clientPort(slot, n) + 50, this.httpPort(slot, n), this.serverPort(slot, n)]) {
          if (!(await portFree(port))) {
            throw new HadronError('CONFIG_INVALID', `port ${port} on 127.0.0.1 (stream ${s.metadata.name}, partition ${n}) is in use; is another hadron dev running? Choose other ports with --port (and --http-port)`);
          }
        }
      }
    }
  }

  private async reconcile(view: ControlPlaneView, initial: boolean): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    const o = this.o;
    const sources = this.manifests.sources();
    if (!initial) {
      const refusal = tooManyPartitions(view) ?? (await this.scaleDownRefusal(view));
      if (refusal !== undefined) {
        if (refusal !== this.refusal) o.note(`${refusal}; the previous manifests stay in force (checked again every ${SCALE_DOWN_RECHECK_MS / 1000} s and on every edit)`);
        this.refusal = refusal;
        this.recheck ??= setInterval(() => void this.enqueue(() => this.reconcile(this.manifests.view(), false)), SCALE_DOWN_RECHECK_MS);
        return;
      }
      if (this.refusal !== undefined) o.note('the refused scale-down is resolved; the manifests as they are now are in force');
    }
    this.refusal = undefined;
    clearInterval(this.recheck);
    this.recheck = undefined;
    this.writeAccepted(sources);
    // Tokens first, so that partitions starting now already know every Secret.
    const t = syncTokens(view.tokens, this.secretsDir, this.tokensDir);
    this.tokens = t.tokens;
    if (!initial) {
      for (const name of t.created) o.print(`token ${name} created: ${this.exportLine(name)}`);
      for (const name of t.removed) o.note(`token ${name} removed: its Secret is deleted, the token no longer works`);
    }
    this.reportPipelines(view, initial);
    const stops: Promise<void>[] = [];
    for (const s of [...view.streams.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
      stops.push(...this.reconcileStream(s, initial));
    }
    for (const [name, r] of this.streams) {
      if (view.streams.has(name)) continue;
      o.note(`stream ${name} removed from the manifests: stopping its ${r.procs.size} partition(s) (data kept)`);
      stops.push(...[...r.procs.values()].map((p) => p.stop()));
      this.streams.delete(name);
    }
    this.writeState();
    await Promise.all(stops);
    this.writeState();
  }

  /**
   * Asks the partitions a change would remove what they still hold (scale-down.ts). Returns why
   * the change is refused, or undefined when it may go ahead (reporting, when the annotation
   * allowed it, what is left behind).
   */
  private async scaleDownRefusal(view: ControlPlaneView): Promise<string | undefined> {
    const o = this.o;
    const scheme = o.tls ? 'https' : 'http';
    const r = await checkDevScaleDown({
      view,
      running: [...this.streams.values()].map((run) => ({ name: run.name, partitions: run.partitions, urlOf: (n) => `${scheme}://127.0.0.1:${this.clientPort(run.slot, n)}` })),
      wanted: (n) => Math.min(n, MAX_DEV_PARTITIONS),
      tokens: this.tokens,
      ...(o.tls ? { caFile: o.tls.caFile } : {}),
    });
    if (r.refusals.length) return r.refusals.join('; ');
    for (const l of r.allowedLoss) this.leftBehind[l.stream] = { at: new Date().toISOString(), from: l.from, to: l.to, items: l.leftBehind, unreachable: l.unreachable };
    // In dev.json before the message says it is there: a reader acting on the message (a script,
    // the e2e test) could otherwise read the previous file.
    if (r.allowedLoss.length) this.writeState();
    for (const l of r.allowedLoss) {
      o.note(`stream ${l.stream}: scaling from ${l.from} to ${l.to} partitions as annotation allows; left behind (kept on disk in ${path.join(o.dataDir, 'partitions')}/, in dev.json): ${describePartitionLoss(l)}`);
    }
    return undefined;
  }

  /** Puts `sources` in force: what the partitions read (HADRON_MANIFESTS). */
  private writeAccepted(sources: ReadonlyArray<{ file: string; text: string }>): void {
    const names = sources.map((s, i) => `${String(i).padStart(3, '0')}-${path.basename(s.file)}`);
    sources.forEach((s, i) => {
      const file = path.join(this.acceptedDir, names[i]!);
      // Unchanged files are not rewritten: every write wakes the partitions' watchers.
      if (readOrUndefined(file) !== s.text) writeAtomic(file, s.text);
    });
    const keep = new Set(names);
    for (const f of fs.readdirSync(this.acceptedDir)) if (!keep.has(f)) fs.rmSync(path.join(this.acceptedDir, f), { force: true });
  }

  /**
   * Pipelines run inside their source stream's partitions; hadron dev only reports them: added,
   * changed, removed, and a sourceStream that is not a Stream of the manifests.
   */
  private reportPipelines(view: ControlPlaneView, initial: boolean): void {
    const o = this.o;
    const next = new Map<string, string>();
    for (const p of [...view.pipelines.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
      const name = p.metadata.name;
      const key = JSON.stringify(p.spec);
      next.set(name, key);
      const before = this.pipelineSpecs.get(name);
      if (!initial && before === undefined) o.note(`pipeline ${name} added: ${p.spec.stages.length} stage(s) on stream ${p.spec.sourceStream}`);
      else if (!initial && before !== key) o.note(`pipeline ${name} changed`);
      if ((initial || before !== key) && !view.streams.has(p.spec.sourceStream)) {
        o.note(`pipeline ${name}: its sourceStream ${p.spec.sourceStream} is not a Stream of the manifests; it runs once that Stream exists`);
      }
    }
    if (!initial) for (const name of this.pipelineSpecs.keys()) if (!next.has(name)) o.note(`pipeline ${name} removed (its state is deleted by the partitions)`);
    this.pipelineSpecs = next;
  }

  private reconcileStream(s: Stream, initial: boolean): Promise<void>[] {
    const o = this.o;
    const name = s.metadata.name;
    let wanted = s.spec.partitions;
    if (wanted > MAX_DEV_PARTITIONS) {
      o.note(`stream ${name} asks for ${wanted} partitions; hadron dev runs at most ${MAX_DEV_PARTITIONS}`);
      wanted = MAX_DEV_PARTITIONS;
    }
    let r = this.streams.get(name);
    if (!r) {
      r = { name, slot: this.slotOf(name), partitions: 0, procs: new Map() };
      this.streams.set(name, r);
      if (!initial) o.print(`stream ${name} added: ${wanted} partition(s), bootstrap URL ${this.url(name)}, CloudEvents over HTTP at ${this.httpUrl(name)}`);
    } else if (r.partitions !== wanted) {
      o.note(`stream ${name} scaled from ${r.partitions} to ${wanted} partitions`);
    }
    r.partitions = wanted;
    for (let n = 0; n < wanted; n++) {
      if (r.procs.has(n)) continue;
      const p = this.newProcess(s, r, n);
      r.procs.set(n, p);
      p.start();
    }
    const stops: Promise<void>[] = [];
    for (const [n, p] of r.procs) {
      if (n < wanted) continue;
      r.procs.delete(n);
      stops.push(p.stop().then(() => o.note(`partition ${p.name} stopped (scaled down; its data is kept in ${path.join(o.dataDir, 'partitions', p.name)})`)));
    }
    return stops;
  }

  private newProcess(s: Stream, r: StreamRun, n: number): PartitionProcess {
    const o = this.o;
    const clientPort = this.clientPort(r.slot, n);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CLIENT_PORT: String(clientPort),
      SERVER_PORT: String(this.serverPort(r.slot, n)),
      HADRON_SERVER_PORT_BASE: String(this.serverPort(r.slot, 0)),
      HADRON_REPLICATION_KEY: this.replicationKey(r.name),
      METRICS_PORT: String(clientPort + 50),
      NAMESPACE: o.namespace,
      STREAM: r.name,
      STATEFULSET: r.name,
      POD_NAME: `${r.name}-${n}`,
      STORAGE_DATA_PATH: path.join(o.dataDir, 'partitions'),
      HADRON_MANIFESTS: [this.acceptedDir, this.secretsDir].join(path.delimiter),
      HADRON_BIND_HOST: '127.0.0.1',
      HADRON_ADVERTISE_TEMPLATE: '127.0.0.1:{port}',
      HADRON_PARTITION_PORT_BASE: String(this.clientPort(r.slot, 0)),
      HADRON_HTTP_PORT: String(this.httpPort(r.slot, n)),
      HADRON_STREAM_URLS: Object.entries(this.slots)
        .map(([name, slot]) => `${name}=${o.tls ? 'https' : 'http'}://127.0.0.1:${this.clientPort(slot, 0)}`)
        .join(','),
      HADRON_LOG_LEVEL: s.spec.debug ? 'debug' : 'info',
      ...(o.tls ? { HADRON_TLS_CERT_FILE: o.tls.certFile, HADRON_TLS_KEY_FILE: o.tls.keyFile } : {}),
      ...o.env,
    };
    const p = new PartitionProcess({ stream: r.name, partition: n, clientPort, metricsPort: clientPort + 50, env, bin: o.streamBin, logFile: path.join(o.dataDir, 'logs', `${r.name}-${n}.log`) });
    p.on('event', (e: ProcessEvent) => {
      if (e.kind === 'started') {
        o.note(`partition ${p.name} ${e.restarts ? 'restarted' : 'started'} (pid ${e.pid}) on 127.0.0.1:${clientPort}`);
        this.writeState();
      } else if (e.kind === 'exited') {
        const how = e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
        o.note(`partition ${p.name} ${how}${e.lastError ? ` (${e.lastError})` : ''}; restarting in ${e.restartInMs} ms`);
        this.writeState();
      }
    });
    return p;
  }

  private exportLine(token: string): string {
    const first = [...this.streams.values()].sort((a, b) => a.slot - b.slot)[0];
    const url = first ? this.url(first.name) : `${this.o.tls ? 'https' : 'http'}://127.0.0.1:${this.o.basePort}`;
    const ca = this.o.tls ? ` HADRON_CA_FILE=${this.o.tls.caFile}` : '';
    return `export HADRON_URL=${url} HADRON_TOKEN=${this.tokens.get(token) ?? ''}${ca}`;
  }

  private printSummary(extra: string[]): void {
    const o = this.o;
    for (const r of [...this.streams.values()].sort((a, b) => a.slot - b.slot)) {
      o.print(`stream ${r.name}: ${r.partitions} partition(s), bootstrap URL ${this.url(r.name)}, CloudEvents over HTTP at ${this.httpUrl(r.name)}`);
    }
    if (this.tokens.size) {
      o.print(`tokens (also in ${this.tokensDir}/); paste one of these lines in another terminal:`);
      for (const name of this.tokens.keys()) o.print(`  ${name}: ${this.exportLine(name)}`);
    } else o.note('no Token in the manifests: add one to call the cluster');
    if (o.tls) o.print(`TLS on: partitions serve https:// with ${o.tls.certFile}; clients verify it with the CA ${o.tls.caFile} (--ca or HADRON_CA_FILE)`);
    for (const line of extra) o.print(line);
    o.print(`ready; data in ${o.dataDir}; watching ${o.manifests.join(', ')} (Ctrl-C to stop)`);
  }

  /** Stops every partition (SIGTERM, waits) and the watcher. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    clearInterval(this.recheck);
    await this.manifests?.close();
    await this.queue;
    await Promise.all([...this.streams.values()].flatMap((r) => [...r.procs.values()].map((p) => p.stop())));
    if (this.created) {
      this.writeState();
      fs.rmSync(this.lockFile, { force: true });
    }
    this.state = 'stopped';
  }

  /** SIGKILL everything now (second Ctrl-C). */
  kill(): void {
    for (const r of this.streams.values()) for (const p of r.procs.values()) p.kill();
    fs.rmSync(this.lockFile, { force: true });
  }
}

function readOrUndefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
