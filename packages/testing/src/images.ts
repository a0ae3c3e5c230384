/**
 * The container images for tests: build them (`scripts/images.mjs`, incremental) and run them with
 * podman in a private, throw-away storage root — no Docker engine, nothing left behind.
 *
 * podman flags that work on the CI VM (docker/README.md): the `runc` runtime (crun fails there),
 * cgroupfs, the vfs storage driver (no overlay mounts), host networking (tests only use loopback;
 * no CNI, no iptables), explicit ulimits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './cluster.js';

/** What `scripts/images.mjs` writes next to each archive (build/images/<name>.json). */
export interface ImageInfo {
  ref: string;
  archive: string;
  archiveBytes: number;
  uncompressedBytes: number;
  layerBytes: number[];
  configDigest: string;
  entrypoint: string;
  ports: number[];
  user: string;
  node: string;
}

export type ImageName = 'hadron-stream' | 'hadron-operator' | 'hadron';

interface Exec {
  code: number | null;
  stdout: string;
  stderr: string;
}

function exec(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 600_000 });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Builds (or reuses, when nothing changed) the named images, into build/images or `outDir`, with `scripts/images.mjs` and returns
 * their descriptions. Fails with the script's error, e.g. when umoci or skopeo is not installed.
 */
export async function buildImages(names: ImageName[], o: { outDir?: string } = {}): Promise<Record<string, ImageInfo & { archivePath: string }>> {
  const r = await exec(process.execPath, [path.join(REPO_ROOT, 'scripts', 'images.mjs'), ...names], { cwd: REPO_ROOT, env: o.outDir ? { ...process.env, HADRON_IMAGES_OUT: o.outDir } : undefined });
  if (r.code !== 0) throw new Error(`scripts/images.mjs ${names.join(' ')} failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
  const all = JSON.parse(r.stdout) as Record<string, ImageInfo>;
  return Object.fromEntries(Object.entries(all).map(([k, v]) => [k, { ...v, archivePath: path.join(REPO_ROOT, v.archive) }]));
}

/** A bind mount into a container. */
export interface Mount {
  host: string;
  container: string;
  readOnly?: boolean;
}

export interface RunOptions {
  image: string;
  /** Arguments after the image (to its entrypoint). */
  args?: string[];
  env?: Record<string, string>;
  mounts?: Mount[];
  /** Default: the image's user. */
  user?: string;
  /** Overrides the image's entrypoint. */
  entrypoint?: string;
  /** `--read-only` root filesystem (default true: what the chart's securityContext sets). */
  readOnly?: boolean;
}

/** A running (or finished) container, attached: its stdout lines and stderr are collected. */
export class Container {
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: Array<() => void> = [];

  constructor(
    readonly name: string,
    readonly client: ChildProcess,
  ) {
    let buf = '';
    client.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      this.wake();
    });
    client.stderr!.on('data', (c: Buffer) => {
      this.stderr += c.toString();
      this.wake();
    });
    this.exited = new Promise((resolve) => client.once('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then(() => this.wake());
  }

  private wake(): void {
    this.waiters.splice(0).forEach((w) => w());
  }

  /** Waits for a stdout line matching `re`; fails early when the container exits. */
  async waitFor(re: RegExp, ms = 60_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.lines.find((l) => re.test(l));
      if (hit !== undefined) return hit;
      if (Date.now() > end || this.client.exitCode !== null || this.client.signalCode !== null) {
        throw new Error(`container ${this.name}: no line matching ${re} (exit ${this.client.exitCode}); output:\n${this.lines.slice(-30).join('\n')}\n${this.stderr.slice(-2000)}`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, 250);
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }
}

/** A podman with its own storage under a temp dir. `await using` it: disposal removes everything. */
export class Podman {
  private readonly containers = new Set<Container>();
  private seq = 0;

  private constructor(readonly dir: string) {}

  /** Fails with how to install podman when it is missing. */
  static async create(): Promise<Podman> {
    const v = await exec('podman', ['--version']).catch((err: NodeJS.ErrnoException) => ({ code: -1, stdout: '', stderr: String(err.code ?? err) }));
    if (v.code !== 0) throw new Error(`podman is not usable (${v.stderr.trim()}); install it: apt-get install -y --no-install-recommends podman runc (see docker/README.md)`);
    return new Podman(fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-podman-')));
  }

  /** Global flags: private storage root, runc, cgroupfs, vfs. */
  get globalArgs(): string[] {
    const d = this.dir;
    return [
      '--root', path.join(d, 'root'), '--runroot', path.join(d, 'run'), '--tmpdir', path.join(d, 'tmp'),
      '--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--storage-driver', 'vfs', '--events-backend', 'file',
    ];
  }

  /** Runs a podman subcommand to completion. */
  exec(args: string[]): Promise<Exec> {
    return exec('podman', [...this.globalArgs, ...args]);
  }

  /** `podman load -i archive`; returns the loaded image names. */
  async load(archive: string): Promise<string[]> {
    const r = await this.exec(['load', '-i', archive]);
    if (r.code !== 0) throw new Error(`podman load ${archive}: ${r.stderr}`);
    return [...r.stdout.matchAll(/Loaded image(?:\(s\))?: (.+)/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim()));
  }

  /** Image config as `podman image inspect` reports it. */
  async inspect(ref: string): Promise<{ Config: { User?: string; Entrypoint?: string[]; ExposedPorts?: Record<string, unknown>; Labels?: Record<string, string>; Env?: string[] }; Size: number }> {
    const r = await this.exec(['image', 'inspect', ref]);
    if (r.code !== 0) throw new Error(`podman image inspect ${ref}: ${r.stderr}`);
    return (JSON.parse(r.stdout) as Array<{ Config: never; Size: number }>)[0]!;
  }

  /** `podman run --rm` attached, on the host network (bind servers to 127.0.0.1 only). */
  run(o: RunOptions): Container {
    const name = `hadron-test-${process.pid}-${++this.seq}`;
    const args = ['run', '--rm', '--name', name, '--network', 'host', '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=4096:4096'];
    if (o.readOnly !== false) args.push('--read-only');
    if (o.user) args.push('--user', o.user);
    if (o.entrypoint) args.push('--entrypoint', o.entrypoint);
    for (const [k, v] of Object.entries(o.env ?? {})) args.push('--env', `${k}=${v}`);
    for (const m of o.mounts ?? []) args.push('--volume', `${m.host}:${m.container}:${m.readOnly ? 'ro' : 'rw'}`);
    const c = new Container(name, spawn('podman', [...this.globalArgs, ...args, o.image, ...(o.args ?? [])], { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.containers.add(c);
    return c;
  }

  /** Runs a container to completion. */
  async runToEnd(o: RunOptions): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const c = this.run(o);
    const { code } = await c.exited;
    return { code, stdout: c.lines.join('\n'), stderr: c.stderr };
  }

  /** `podman stop` (SIGTERM, then SIGKILL after `graceSeconds`); resolves with the container's exit. */
  async stop(c: Container, graceSeconds = 10): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (c.client.exitCode === null && c.client.signalCode === null) await this.exec(['stop', '--time', String(graceSeconds), c.name]);
    return c.exited;
  }

  /** Mount points under this podman's temp dir (must be none after disposal). */
  mountsUnder(): string[] {
    return fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((m) => m === this.dir || m.startsWith(`${this.dir}/`));
  }

  /** Removes every container, unmounts what podman left mounted, deletes the storage. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.exec(['rm', '--all', '--force', '--time', '0']);
    await Promise.all([...this.containers].map((c) => c.exited));
    for (const m of this.mountsUnder().reverse()) await exec('umount', ['-l', m]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A private containerd (temp root, state and socket; CRI plugin off) to check what `kind load
 * image-archive`, `k3s ctr images import` and `ctr -n k8s.io images import` do with the archives.
 * Stop it with `await using` / disposal.
 */
export class Containerd {
  private constructor(
    readonly dir: string,
    readonly proc: ChildProcess,
    readonly exited: Promise<unknown>,
  ) {}

  get socket(): string {
    return path.join(this.dir, 'containerd.sock');
  }

  static async start(): Promise<Containerd> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-containerd-'));
    fs.writeFileSync(
      path.join(dir, 'config.toml'),
      [
        'version = 2',
        `root = ${JSON.stringify(path.join(dir, 'root'))}`,
        `state = ${JSON.stringify(path.join(dir, 'state'))}`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = ${JSON.stringify(path.join(dir, 'containerd.sock'))}`,
        '',
      ].join('\n'),
    );
    const proc = spawn('containerd', ['--config', path.join(dir, 'config.toml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    proc.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    const exited = new Promise((resolve) => proc.once('close', resolve));
    const spawned = await new Promise<boolean>((resolve) => {
      proc.once('error', () => resolve(false));
      proc.once('spawn', () => resolve(true));
    });
    if (!spawned) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error('containerd is not installed: apt-get install -y --no-install-recommends containerd (.ci/run does it)');
    }
    const c = new Containerd(dir, proc, exited);
    // containerd logs this once its gRPC socket accepts calls.
    const ready = await new Promise<boolean>((resolve) => {
      const check = (): void => {
        if (log.includes('containerd successfully booted')) resolve(true);
      };
      proc.stderr!.on('data', check);
      proc.once('close', () => resolve(false));
      check();
    });
    if (!ready) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`containerd did not start:\n${log.slice(-3000)}`);
    }
    return c;
  }

  /** `ctr -n <namespace> <args>`. */
  ctr(args: string[], namespace = 'k8s.io'): Promise<Exec> {
    return exec('ctr', ['--address', this.socket, '--namespace', namespace, ...args]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    await this.exited;
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${this.dir}/`));
    for (const m of mounts.reverse()) await exec('umount', ['-l', m]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
