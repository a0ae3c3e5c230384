/**
 * `hadron dev`: every Stream of a set of manifests as real `hadron-stream` processes on
 * loopback, kept in step with the manifests as they change.
 *
 * State directory (`--data`, default `.hadron/`):
 *   partitions/<stream>-<N>/   each partition's data (STORAGE_DATA_PATH = partitions/)
 *   secrets/<token>.yaml       the Secret of each Token, as the operator makes it
 *   tokens/<token>             the bare JWT of each Token
 *   logs/<stream>-<N>.log      each partition process's log
 *   replication/<stream>.key   the Stream's replication key (minted once, like the operator's
 *                              Secret <stream>-replication; HADRON_REPLICATION_KEY)
 *   dev.json                   port slots of the streams, pids, the URL of each stream
 *
 * Ports: the stream in slot k (slots are given in order of first appearance and kept in
 * dev.json, so addresses survive restarts and edits) serves partition N for clients on
 * `base + 100·k + N` and metrics on `base + 100·k + 50 + N`, and replicates (SERVER_PORT) on
 * `base + 5000 + 100·k + N`; at most 50 partitions per stream. Replicas of partition N live in
 * `partitions/<stream>-<M>/replicas/N/` of the pods M that hold them (docs/replication.md).
 * Every partition announces loopback addresses (HADRON_ADVERTISE_TEMPLATE) in its Metadata
 * stream, and reads the user's manifests plus `secrets/` (HADRON_MANIFESTS), so scaling,
 * Pipelines and Tokens take effect in the servers themselves; this supervisor only starts and
 * stops processes and keeps the Secrets in step with the Tokens.
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
import { HadronError, LocalManifests, type ControlPlaneView, type Stream } from '@hadron/core';
import { PartitionProcess, type ProcessEvent } from './partition-process.js';
import { syncTokens, writeAtomic } from './tokens.js';

export const MAX_DEV_PARTITIONS = 50;
/** Server (replication) ports sit this far above the client ports. */
export const SERVER_PORT_OFFSET = 5000;

export interface DevClusterOptions {
  /** Manifest files or directories (absolute). */
  manifests: string[];
  /** State directory (absolute). */
  dataDir: string;
  /** First port (default 7000). */
  basePort: number;
  namespace: string;
  /** Path of the `hadron-stream` bin. */
  streamBin: string;
  /** One line of status output (no trailing newline). */
  print: (line: string) => void;
  /** Extra environment for every partition process. */
  env?: Record<string, string>;
  /** Serve TLS with these files (`hadron dev --tls`); URLs become https://. */
  tls?: { caFile: string; certFile: string; keyFile: string };
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

  clientPort(slot: number, partition: number): number {
    return this.o.basePort + 100 * slot + partition;
  }

  /** SERVER_PORT (replication) of a partition: a window 5000 above the client ports. */
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
        if (list.length === 0 && hadProblems) o.print('manifests are valid again: every problem reported above is fixed');
        hadProblems = list.length > 0;
      },
    });
    if (fresh) {
      await this.manifests.start();
      await this.checkPorts(this.manifests.view());
    }
    for (const d of ['partitions', 'secrets', 'tokens', 'logs', 'replication']) fs.mkdirSync(path.join(o.dataDir, d), { recursive: true });
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
    if (view.streams.size === 0) o.print(`no Stream in ${o.manifests.join(', ')}; waiting for one to appear`);
    await this.reconcile(view, true);
    this.manifests.on('change', (v) => void this.enqueue(() => this.reconcile(v, false)));
    this.state = 'running';
    const procs = [...this.streams.values()].flatMap((r) => [...r.procs.values()]);
    let timer: NodeJS.Timeout | undefined;
    const slow = await Promise.race([
      Promise.all(procs.map((p) => p.whenRunning().catch(() => undefined))).then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 30_000))),
    ]);
    clearTimeout(timer);
    if (slow) o.print(`not every partition started within 30 s (see ${path.join(o.dataDir, 'logs')}/); going on`);
    this.printSummary();
    this.emit('ready');
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(fn).catch((err: unknown) => this.o.print(`error: ${(err as Error).message}`));
    return this.queue;
  }

  /** A pino logger for LocalManifests whose warnings become readable status lines. */
  private problemLogger(): pino.Logger {
    const print = this.o.print;
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
    this.o.print(`stopping ${ours.length} partition process(es) left running by a previous hadron dev on ${this.o.dataDir} (pids ${ours.join(', ')})`);
    for (const pid of ours) process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (ours.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const pid of ours.filter(alive)) process.kill(pid, 'SIGKILL');
  }

  private readState(): DevState {
    try {
      const s = JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as Partial<DevState>;
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
        partitions: Object.fromEntries([...r.procs.values()].map((p) => [p.o.partition, { pid: p.pid ?? null, port: p.o.clientPort, metricsPort: p.o.metricsPort, state: p.state }])),
      };
    }
    writeAtomic(this.stateFile, `${JSON.stringify({ pid: process.pid, basePort: this.o.basePort, slots: this.slots, streams }, null, 2)}\n`);
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
    for (const s of [...view.streams.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
      const slot = this.slotOf(s.metadata.name);
      for (let n = 0; n < Math.min(s.spec.partitions, MAX_DEV_PARTITIONS); n++) {
        for (const port of [this.clientPort(slot, n), this.clientPort(slot, n) + 50, this.serverPort(slot, n)]) {
          if (!(await portFree(port))) {
            throw new HadronError('CONFIG_INVALID', `port ${port} on 127.0.0.1 (stream ${s.metadata.name}, partition ${n}) is in use; is another hadron dev running? Choose other ports with --port`);
          }
        }
      }
    }
  }

  private async reconcile(view: ControlPlaneView, initial: boolean): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    const o = this.o;
    // Tokens first, so that partitions starting now already know every Secret.
    const t = syncTokens(view.tokens, this.secretsDir, this.tokensDir);
    this.tokens = t.tokens;
    if (!initial) {
      for (const name of t.created) o.print(`token ${name} created: ${this.exportLine(name)}`);
      for (const name of t.removed) o.print(`token ${name} removed: its Secret is deleted, the token no longer works`);
    }
    this.reportPipelines(view, initial);
    const stops: Promise<void>[] = [];
    for (const s of [...view.streams.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
      stops.push(...this.reconcileStream(s, initial));
    }
    for (const [name, r] of this.streams) {
      if (view.streams.has(name)) continue;
      o.print(`stream ${name} removed from the manifests: stopping its ${r.procs.size} partition(s) (data kept)`);
      stops.push(...[...r.procs.values()].map((p) => p.stop()));
      this.streams.delete(name);
    }
    this.writeState();
    await Promise.all(stops);
    this.writeState();
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
      if (!initial && before === undefined) o.print(`pipeline ${name} added: ${p.spec.stages.length} stage(s) on stream ${p.spec.sourceStream}`);
      else if (!initial && before !== key) o.print(`pipeline ${name} changed`);
      if ((initial || before !== key) && !view.streams.has(p.spec.sourceStream)) {
        o.print(`pipeline ${name}: its sourceStream ${p.spec.sourceStream} is not a Stream of the manifests; it runs once that Stream exists`);
      }
    }
    if (!initial) for (const name of this.pipelineSpecs.keys()) if (!next.has(name)) o.print(`pipeline ${name} removed (its state is deleted by the partitions)`);
    this.pipelineSpecs = next;
  }

  private reconcileStream(s: Stream, initial: boolean): Promise<void>[] {
    const o = this.o;
    const name = s.metadata.name;
    let wanted = s.spec.partitions;
    if (wanted > MAX_DEV_PARTITIONS) {
      o.print(`stream ${name} asks for ${wanted} partitions; hadron dev runs at most ${MAX_DEV_PARTITIONS}`);
      wanted = MAX_DEV_PARTITIONS;
    }
    let r = this.streams.get(name);
    if (!r) {
      r = { name, slot: this.slotOf(name), partitions: 0, procs: new Map() };
      this.streams.set(name, r);
      if (!initial) o.print(`stream ${name} added: ${wanted} partition(s), bootstrap URL ${this.url(name)}`);
    } else if (r.partitions !== wanted) {
      o.print(`stream ${name} scaled from ${r.partitions} to ${wanted} partitions`);
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
      stops.push(p.stop().then(() => o.print(`partition ${p.name} stopped (scaled down; its data is kept in ${path.join(o.dataDir, 'partitions', p.name)})`)));
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
      HADRON_MANIFESTS: [...o.manifests, this.secretsDir].join(path.delimiter),
      HADRON_BIND_HOST: '127.0.0.1',
      HADRON_ADVERTISE_TEMPLATE: '127.0.0.1:{port}',
      HADRON_PARTITION_PORT_BASE: String(this.clientPort(r.slot, 0)),
      HADRON_LOG_LEVEL: s.spec.debug ? 'debug' : 'info',
      ...(o.tls ? { HADRON_TLS_CERT_FILE: o.tls.certFile, HADRON_TLS_KEY_FILE: o.tls.keyFile } : {}),
      ...o.env,
    };
    const p = new PartitionProcess({ stream: r.name, partition: n, clientPort, metricsPort: clientPort + 50, env, bin: o.streamBin, logFile: path.join(o.dataDir, 'logs', `${r.name}-${n}.log`) });
    p.on('event', (e: ProcessEvent) => {
      if (e.kind === 'started') {
        o.print(`partition ${p.name} ${e.restarts ? 'restarted' : 'started'} (pid ${e.pid}) on 127.0.0.1:${clientPort}`);
        this.writeState();
      } else if (e.kind === 'exited') {
        const how = e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
        o.print(`partition ${p.name} ${how}${e.lastError ? ` (${e.lastError})` : ''}; restarting in ${e.restartInMs} ms`);
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

  private printSummary(): void {
    const o = this.o;
    for (const r of [...this.streams.values()].sort((a, b) => a.slot - b.slot)) {
      o.print(`stream ${r.name}: ${r.partitions} partition(s), bootstrap URL ${this.url(r.name)}`);
    }
    if (this.tokens.size) {
      o.print(`tokens (also in ${this.tokensDir}/); paste one of these lines in another terminal:`);
      for (const name of this.tokens.keys()) o.print(`  ${name}: ${this.exportLine(name)}`);
    } else o.print('no Token in the manifests: add one to call the cluster');
    if (o.tls) o.print(`TLS on: partitions serve https:// with ${o.tls.certFile}; clients verify it with the CA ${o.tls.caFile} (--ca or HADRON_CA_FILE)`);
    o.print(`ready; data in ${o.dataDir}; watching ${o.manifests.join(', ')} (Ctrl-C to stop)`);
  }

  /** Stops every partition (SIGTERM, waits) and the watcher. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
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
