/**
 * `startStream()`: a real Stream on loopback for integration tests — one `hadron-stream`
 * process per partition, each with its own data dir under a temp root, a manifests dir with the
 * Stream, four Tokens and their Secrets, and helpers to kill, restart and edit live.
 *
 *   await using c = await startStream({ partitions: 3 });
 *   c.url(0)            // http://127.0.0.1:PORT of partition 0
 *   c.tokens.full       // JWT with `all: true`; also .reader (sub), .writer (pub+sub), .none
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TokenSpec } from '@hadron/core';
import { freePortRange } from './ports.js';
import { streamManifest, tokenManifest, tokenSecret } from './manifests.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (…/packages/testing/dist → …). */
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
export const STREAM_BIN = path.join(REPO_ROOT, 'packages', 'stream', 'bin', 'hadron-stream.js');

/** The replication key every test partition gets (HADRON_REPLICATION_KEY; tests may override it in `env`). */
export const REPLICATION_KEY = 'test-replication-key-0123456789abcdef';

export interface StartStreamOptions {
  partitions?: number;
  stream?: string;
  namespace?: string;
  /** Extra environment for every partition process. */
  env?: Record<string, string>;
  retention?: { strategy: 'time' | 'retain'; retentionSeconds?: number };
  /** Reuse an existing root (data + manifests) — e.g. to restart a whole cluster. */
  root?: string;
  /** More Stream spec fields (e.g. `deadLetter`), in the manifest before the first start. */
  spec?: Record<string, unknown>;
  /** More manifest files (name → YAML) written before the first start. */
  manifests?: Record<string, string>;
  /** Keep the temp root after stop (for debugging). */
  keep?: boolean;
}

export interface PartitionProc {
  partition: number;
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: string[];
}

export class TestStream {
  readonly procs = new Map<number, PartitionProc>();
  tokens: Record<'full' | 'reader' | 'writer' | 'none', string> = { full: '', reader: '', writer: '', none: '' };

  constructor(
    readonly root: string,
    readonly stream: string,
    readonly namespace: string,
    public partitions: number,
    readonly clientBase: number,
    readonly metricsBase: number,
    readonly httpBase: number,
    readonly serverBase: number,
    private readonly env: Record<string, string>,
    private readonly keep: boolean,
  ) {}

  get manifestsDir(): string {
    return path.join(this.root, 'manifests');
  }
  get dataDir(): string {
    return path.join(this.root, 'data');
  }
  url(p = 0): string {
    return `http://127.0.0.1:${this.clientBase + p}`;
  }
  /** The CloudEvents HTTP ingress of partition `p` (HADRON_HTTP_PORT). */
  httpUrl(p = 0): string {
    return `http://127.0.0.1:${this.httpBase + p}`;
  }
  metricsUrl(p = 0): string {
    return `http://127.0.0.1:${this.metricsBase + p}`;
  }

  /** Writes (or replaces) one manifest file; the servers pick it up live. */
  writeManifest(file: string, yaml: string): void {
    const target = path.join(this.manifestsDir, file);
    fs.writeFileSync(`${target}.tmp`, yaml);
    fs.renameSync(`${target}.tmp`, target);
  }
  removeManifest(file: string): void {
    fs.rmSync(path.join(this.manifestsDir, file), { force: true });
  }

  /** Starts (or restarts) partition `p` and waits until it reports started. */
  async startPartition(p: number, extraEnv: Record<string, string> = {}): Promise<PartitionProc> {
    const env = {
      ...process.env,
      CLIENT_PORT: String(this.clientBase + p),
      SERVER_PORT: String(this.serverBase + p),
      HADRON_SERVER_PORT_BASE: String(this.serverBase),
      HADRON_REPLICATION_KEY: REPLICATION_KEY,
      METRICS_PORT: String(this.metricsBase + p),
      HADRON_HTTP_PORT: String(this.httpBase + p),
      NAMESPACE: this.namespace,
      STREAM: this.stream,
      STATEFULSET: this.stream,
      POD_NAME: `${this.stream}-${p}`,
      STORAGE_DATA_PATH: this.dataDir,
      HADRON_MANIFESTS: this.manifestsDir,
      HADRON_BIND_HOST: '127.0.0.1',
      HADRON_ADVERTISE_TEMPLATE: '127.0.0.1:{port}',
      HADRON_PARTITION_PORT_BASE: String(this.clientBase),
      HADRON_LOG_LEVEL: 'info',
      HADRON_SHUTDOWN_GRACE_MS: '2000',
      ...this.env,
      ...extraEnv,
    };
    // Extra node flags (e.g. --cpu-prof, which NODE_OPTIONS does not allow) from HADRON_TEST_NODE_ARGS.
    const nodeArgs = (process.env.HADRON_TEST_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    const proc = spawn(process.execPath, [...nodeArgs, STREAM_BIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      proc.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const started = new Promise<void>((resolve, reject) => {
      let buf = '';
      const onData = (chunk: Buffer): void => {
        buf += chunk.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          output.push(line);
          if (line.includes('"partition server started"')) resolve();
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
      void exited.then(({ code, signal }) =>
        reject(new Error(`partition ${p} exited during start-up (code ${code}, signal ${signal}):\n${output.slice(-20).join('\n')}`)),
      );
    });
    const pp: PartitionProc = { partition: p, proc, exited, output };
    this.procs.set(p, pp);
    await started;
    return pp;
  }

  /** Sends a signal to partition `p` and waits for it to exit. */
  async kill(p: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const pp = this.procs.get(p);
    if (!pp) throw new Error(`partition ${p} is not running`);
    pp.proc.kill(signal);
    const r = await pp.exited;
    this.procs.delete(p);
    return r;
  }

  async restart(p: number, extraEnv: Record<string, string> = {}): Promise<PartitionProc> {
    if (this.procs.has(p)) await this.kill(p, 'SIGTERM');
    return this.startPartition(p, extraEnv);
  }

  /** SIGTERM every partition; resolves with their exit results. Removes the root unless kept. */
  async stop(): Promise<Array<{ partition: number; code: number | null; signal: NodeJS.Signals | null }>> {
    const results = await Promise.all(
      [...this.procs.keys()].map(async (p) => ({ partition: p, ...(await this.kill(p, 'SIGTERM')) })),
    );
    if (!this.keep) fs.rmSync(this.root, { recursive: true, force: true });
    return results;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const pp of this.procs.values()) pp.proc.kill('SIGKILL');
    await Promise.all([...this.procs.values()].map((pp) => pp.exited));
    this.procs.clear();
    if (!this.keep) fs.rmSync(this.root, { recursive: true, force: true });
  }
}

export async function startStream(opts: StartStreamOptions = {}): Promise<TestStream> {
  const partitions = opts.partitions ?? 1;
  const stream = opts.stream ?? 'events';
  const root = opts.root ?? fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-test-'));
  const fresh = opts.root === undefined;
  // Leave room for scaling up to 8 partitions without port clashes.
  const span = Math.max(8, partitions);
  const clientBase = await freePortRange(span);
  const metricsBase = await freePortRange(span);
  const httpBase = await freePortRange(span);
  const serverBase = await freePortRange(span);
  const c = new TestStream(root, stream, opts.namespace ?? 'default', partitions, clientBase, metricsBase, httpBase, serverBase, opts.env ?? {}, opts.keep ?? false);
  fs.mkdirSync(c.manifestsDir, { recursive: true });
  const tokenSpecs: Record<string, Partial<TokenSpec>> = {
    full: { all: true },
    reader: { streams: { pub: [], sub: [stream] } },
    writer: { streams: { pub: [stream], sub: [stream] } },
    none: { streams: { pub: [], sub: [] } },
  };
  if (fresh) {
    c.writeManifest('stream.yaml', streamManifest(stream, partitions, opts.retention, opts.spec));
    for (const [file, yaml] of Object.entries(opts.manifests ?? {})) c.writeManifest(file, yaml);
    for (const [name, spec] of Object.entries(tokenSpecs)) {
      c.writeManifest(`token-${name}.yaml`, tokenManifest(`t-${name}`, spec));
      const s = tokenSecret(`t-${name}`);
      c.writeManifest(`secret-${name}.yaml`, s.yaml);
      c.tokens[name as keyof TestStream['tokens']] = s.token;
    }
    fs.writeFileSync(path.join(root, 'tokens.json'), JSON.stringify(c.tokens));
  } else {
    c.tokens = JSON.parse(fs.readFileSync(path.join(root, 'tokens.json'), 'utf8')) as TestStream['tokens'];
  }
  try {
    await Promise.all(Array.from({ length: partitions }, (_, p) => c.startPartition(p)));
  } catch (err) {
    await c[Symbol.asyncDispose]();
    throw err;
  }
  return c;
}
