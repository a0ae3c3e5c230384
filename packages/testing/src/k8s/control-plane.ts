/**
 * A real Kubernetes control plane for tests: etcd + kube-apiserver (and, with `withNodes`,
 * kube-controller-manager, kube-scheduler and kwok with one fake Node), all bound to 127.0.0.1 on
 * free ports, with their data in a temp dir. Binaries come from scripts/k8s-bins.sh (built from Go
 * modules into a cache outside the repo; a no-op when cached). See docs/k8s-test-tier.md.
 *
 * Depends only on Node built-ins.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../ports.js';

export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface ControlPlaneOptions {
  /** Also run kube-controller-manager, kube-scheduler and kwok with one fake Node. */
  withNodes?: boolean;
  /** Directory holding the binaries; default: $HADRON_K8S_BIN_DIR, else run scripts/k8s-bins.sh. */
  binDir?: string;
  /** Aborting stops the plane (or cancels start-up). */
  signal?: AbortSignal;
  /**
   * Address the kube-apiserver binds to and advertises (default 127.0.0.1). A real node (startNode)
   * needs one that pods can reach: the node address inside the test's network namespace.
   */
  address?: string;
  /** With `withNodes`: also start kwok and its fake Node (default true; false for a real node). */
  kwok?: boolean;
}

export interface ControlPlaneProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
}

export interface ControlPlane {
  /** Admin kubeconfig (static token in group system:masters). */
  readonly kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  readonly server: string;
  readonly binDir: string;
  /** CA that signed the apiserver's serving certificate (PEM). */
  readonly caPem: string;
  readonly adminToken: string;
  /** Temp dir with etcd data, keys, kubeconfig and component logs; removed by stop(). */
  readonly dataDir: string;
  /** Name of the fake kwok Node (withNodes only). */
  readonly nodeName: string | undefined;
  readonly processes: readonly ControlPlaneProcess[];
  /** Start-up timings in milliseconds. */
  readonly timings: { readonly binDirMs: number; readonly apiReadyMs: number; readonly totalMs: number };
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const HOST = '127.0.0.1';
const BINS_SCRIPT = fileURLToPath(new URL('../../../../scripts/k8s-bins.sh', import.meta.url));
const NODE_NAME = 'kwok-node-0';

// ---------------------------------------------------------------------------------------------
// Child processes, with a safety net so that a crashing or signalled test run leaves none behind.

class Proc implements ControlPlaneProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  exitStatus: string | undefined;

  constructor(
    readonly name: string,
    bin: string,
    args: string[],
    readonly logPath: string,
  ) {
    const fd = openSync(logPath, 'a');
    try {
      this.child = spawn(bin, args, { stdio: ['ignore', fd, fd], env: { ...process.env } });
    } finally {
      closeSync(fd);
    }
    this.exited = new Promise<void>((resolve) => {
      this.child.once('exit', (code, sig) => {
        this.exitStatus = sig ? `signal ${sig}` : `exit code ${code}`;
        live.delete(this);
        updateSafetyNet();
        resolve();
      });
      this.child.once('error', (err) => {
        this.exitStatus = `spawn error: ${err.message}`;
        live.delete(this);
        updateSafetyNet();
        resolve();
      });
    });
    live.add(this);
    updateSafetyNet();
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exitStatus === undefined;
  }

  logTail(lines = 40): string {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async terminate(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

const live = new Set<Proc>();
const liveDirs = new Set<string>();
let netInstalled = false;

function killAllSync(): void {
  for (const p of live) {
    try {
      p.child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const d of liveDirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
}

function onSignal(sig: NodeJS.Signals): void {
  killAllSync();
  uninstallSafetyNet();
  // Re-raise with the default disposition so the exit status stays what it would have been.
  process.kill(process.pid, sig);
}

function uninstallSafetyNet(): void {
  if (!netInstalled) return;
  process.off('exit', killAllSync);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('SIGHUP', onSignal);
  netInstalled = false;
}

function updateSafetyNet(): void {
  const needed = live.size > 0 || liveDirs.size > 0;
  if (needed && !netInstalled) {
    process.on('exit', killAllSync);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
    netInstalled = true;
  } else if (!needed) {
    uninstallSafetyNet();
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

interface HttpResult {
  status: number;
  body: string;
}

function httpGet(
  url: string,
  opts: { ca?: string; token?: string; timeoutMs?: number } = {},
): Promise<HttpResult> {
  const u = new URL(url);
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<HttpResult>((resolve, reject) => {
    const req = request(
      u,
      {
        method: 'GET',
        agent: false,
        timeout: opts.timeoutMs ?? 3000,
        ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
        headers: opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: GET ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

function describeProcs(procs: Proc[]): string {
  return procs
    .map((p) => `--- ${p.name} (pid ${p.pid}, ${p.exitStatus ?? 'running'}) ${p.logPath}\n${p.logTail()}`)
    .join('\n');
}

/**
 * Poll `check` until it returns a value other than undefined, failing early when one of `procs`
 * exits, when `signal` aborts, or at the deadline.
 */
async function waitFor<T>(
  what: string,
  timeoutMs: number,
  procs: Proc[],
  signal: AbortSignal | undefined,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  for (let interval = 50; ; interval = Math.min(interval * 2, 500)) {
    signal?.throwIfAborted();
    const dead = procs.filter((p) => !p.running);
    if (dead.length > 0) {
      throw new Error(`${what}: ${dead.map((p) => p.name).join(', ')} exited\n${describeProcs(dead)}`);
    }
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${lastErr ? ` (last error: ${lastErr})` : ''}\n${describeProcs(procs)}`);
    }
    await delay(interval, undefined, signal ? { signal } : {});
  }
}

function run(bin: string, args: string[], input?: string): Promise<KubectlResult> {
  return new Promise<KubectlResult>((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.once('error', reject);
    child.once('close', (code, sig) => resolve({ stdout, stderr, code: code ?? (sig ? 128 : -1) }));
    child.stdin.on('error', () => {
      /* the process may exit without reading stdin */
    });
    child.stdin.end(input ?? '');
  });
}

async function resolveBinDir(opts: ControlPlaneOptions): Promise<string> {
  const given = opts.binDir ?? process.env['HADRON_K8S_BIN_DIR'];
  if (given) return given;
  const { signal } = opts;
  signal?.throwIfAborted();
  // Cold: builds everything (tens of minutes); warm: a fast no-op. Build progress goes to stderr.
  // Own process group, so that aborting also stops the `go build`s it runs.
  const child = spawn('bash', [BINS_SCRIPT], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  const onAbort = (): void => {
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  try {
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, sig) => resolve(c ?? (sig ? 128 : -1)));
    });
    signal?.throwIfAborted();
    const lines = stdout.trim().split('\n');
    const dir = lines[lines.length - 1]?.trim();
    if (code !== 0 || !dir) throw new Error(`${BINS_SCRIPT} failed (exit ${code}); see its stderr above`);
    return dir;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** The apiserver's self-generated apiserver.crt is "serving cert, then its CA". */
function caFromChain(chainPem: string): string | undefined {
  const pems = splitPem(chainPem);
  if (pems.length === 0) return undefined;
  for (const p of pems) {
    if (new X509Certificate(p).ca) return `${p}\n`;
  }
  return `${pems[pems.length - 1]}\n`;
}

function kubeconfig(server: string, caPem: string, token: string): string {
  const ca = Buffer.from(caPem).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: hadron-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${ca}`,
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: hadron-test',
    '  context:',
    '    cluster: hadron-test',
    '    user: admin',
    'current-context: hadron-test',
    '',
  ].join('\n');
}

function fakeNode(name: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'kwok.x-k8s.io/node': 'fake' },
      labels: {
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/role': 'agent',
        'node-role.kubernetes.io/agent': '',
        type: 'kwok',
      },
    },
    status: {
      allocatable: { cpu: '32', memory: '256Gi', pods: '110', 'ephemeral-storage': '100Gi' },
      capacity: { cpu: '32', memory: '256Gi', pods: '110', 'ephemeral-storage': '100Gi' },
      nodeInfo: {
        architecture: 'amd64',
        kubeProxyVersion: 'fake',
        kubeletVersion: 'fake',
        operatingSystem: 'linux',
      },
      phase: 'Running',
    },
  });
}

// ---------------------------------------------------------------------------------------------

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const apiHost = opts.address ?? HOST;
  const useKwok = opts.withNodes === true && opts.kwok !== false;
  const t0 = Date.now();
  const binDir = await resolveBinDir(opts);
  const binDirMs = Date.now() - t0;
  const bin = (name: string): string => {
    const p = join(binDir, name);
    if (!existsSync(p)) throw new Error(`missing ${p} (run scripts/k8s-bins.sh)`);
    return p;
  };

  const dataDir = await mkdtemp(join(tmpdir(), 'hadron-k8s-'));
  liveDirs.add(dataDir);
  updateSafetyNet();
  const procs: Proc[] = [];
  let stopping: Promise<void> | undefined;

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      signal?.removeEventListener('abort', onAbort);
      // Reverse start order; etcd last so the others can shut down cleanly.
      for (const p of [...procs].reverse()) await p.terminate();
      await rm(dataDir, { recursive: true, force: true });
      liveDirs.delete(dataDir);
      updateSafetyNet();
    })();
    return stopping;
  };
  const onAbort = (): void => void stop();
  signal?.addEventListener('abort', onAbort, { once: true });

  try {
    const logs = join(dataDir, 'logs');
    const pki = join(dataDir, 'pki');
    await mkdir(logs);
    await mkdir(pki, { mode: 0o700 });
    const start = (name: string, args: string[]): Proc => {
      signal?.throwIfAborted();
      const p = new Proc(name, bin(name), args, join(logs, `${name}.log`));
      procs.push(p);
      return p;
    };

    // Service-account signing keys.
    const sa = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    });
    const saKey = join(pki, 'sa.key');
    const saPub = join(pki, 'sa.pub');
    await writeFile(saKey, sa.privateKey, { mode: 0o600 });
    await writeFile(saPub, sa.publicKey);
    const adminToken = randomBytes(24).toString('hex');
    const tokenFile = join(pki, 'tokens.csv');
    await writeFile(tokenFile, `${adminToken},admin,admin,"system:masters"\n`, { mode: 0o600 });

    const [etcdPort, apiPort, kwokPort] = (await freePorts(3)) as [number, number, number];

    // etcd
    const etcdUrl = `http://${HOST}:${etcdPort}`;
    const etcd = start('etcd', [
      '--name=default',
      `--data-dir=${join(dataDir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://${HOST}:0`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ]);
    await waitFor('etcd /health', 30_000, [etcd], signal, async () => {
      const r = await httpGet(`${etcdUrl}/health`);
      return r.status === 200 && r.body.includes('"true"') ? true : undefined;
    });

    // kube-apiserver: serving cert self-generated into --cert-dir (IP SAN 127.0.0.1, own CA).
    const certDir = join(pki, 'apiserver');
    const server = `https://${apiHost}:${apiPort}`;
    const apiserver = start('kube-apiserver', [
      `--etcd-servers=${etcdUrl}`,
      `--advertise-address=${apiHost}`,
      `--bind-address=${apiHost}`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${certDir}`,
      `--token-auth-file=${tokenFile}`,
      '--authorization-mode=RBAC',
      '--service-cluster-ip-range=10.0.0.0/24',
      // The "kubernetes" Service's Endpoints cannot hold a loopback address; without this the
      // apiserver logs "unable to sync kubernetes service" forever. Nothing in-cluster needs it.
      // (With a real node the address is reachable from pods: keep the default reconciler.)
      ...(opts.address === undefined ? ['--endpoint-reconciler-type=none'] : []),
      '--allow-privileged=true',
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      // Without a controller-manager nothing creates the "default" ServiceAccounts the admission
      // plugin insists on.
      ...(opts.withNodes ? [] : ['--disable-admission-plugins=ServiceAccount']),
      // Webhooks (and aggregated APIs) are called at their Service's endpoint addresses rather
      // than its ClusterIP, so no kube-proxy is needed for the apiserver to reach them.
      ...(opts.address !== undefined ? ['--enable-aggregator-routing=true', '--kubelet-preferred-address-types=InternalIP'] : []),
    ]);
    const caPem = await waitFor('apiserver serving certificate', 60_000, [etcd, apiserver], signal, async () =>
      caFromChain(await readFile(join(certDir, 'apiserver.crt'), 'utf8')),
    );
    await waitFor('kube-apiserver /readyz', 120_000, [etcd, apiserver], signal, async () => {
      const r = await httpGet(`${server}/readyz`, { ca: caPem, token: adminToken });
      return r.status === 200 ? true : undefined;
    });
    const apiReadyMs = Date.now() - t0;

    const kubeconfigPath = join(dataDir, 'admin.kubeconfig');
    await writeFile(kubeconfigPath, kubeconfig(server, caPem, adminToken), { mode: 0o600 });
    const caFile = join(pki, 'ca.crt');
    await writeFile(caFile, caPem);
    const kubectlCache = join(dataDir, 'kubectl-cache');
    const kubectl = (args: string[], input?: string): Promise<KubectlResult> =>
      run(bin('kubectl'), [`--kubeconfig=${kubeconfigPath}`, `--cache-dir=${kubectlCache}`, ...args], input);

    let nodeName: string | undefined;
    if (opts.withNodes) {
      const kcm = start('kube-controller-manager', [
        `--kubeconfig=${kubeconfigPath}`,
        '--leader-elect=false',
        `--service-account-private-key-file=${saKey}`,
        `--root-ca-file=${caFile}`,
        `--bind-address=${HOST}`,
        '--secure-port=0',
        '--cluster-name=hadron-test',
      ]);
      const scheduler = start('kube-scheduler', [
        `--kubeconfig=${kubeconfigPath}`,
        '--leader-elect=false',
        `--bind-address=${HOST}`,
        '--secure-port=0',
      ]);
      const all = [etcd, apiserver, kcm, scheduler];
      if (useKwok) {
        const stages = join(binDir, 'kwok-stages.yaml');
        if (!existsSync(stages)) throw new Error(`missing ${stages} (re-run scripts/k8s-bins.sh)`);
        const kwok = start('kwok', [
          `--kubeconfig=${kubeconfigPath}`,
          `--config=${stages}`,
          '--manage-all-nodes=true',
          '--node-lease-duration-seconds=40',
          `--node-ip=${HOST}`,
          '--cidr=10.244.0.0/16',
          `--server-address=${HOST}:${kwokPort}`,
        ]);
        all.push(kwok);

        const created = await kubectl(['create', '-f', '-'], fakeNode(NODE_NAME));
        if (created.code !== 0) throw new Error(`creating Node ${NODE_NAME}: ${created.stderr}`);
        nodeName = NODE_NAME;
        await waitFor(`Node ${NODE_NAME} Ready (kwok)`, 60_000, all, signal, async () => {
          const r = await httpGet(`${server}/api/v1/nodes/${NODE_NAME}`, { ca: caPem, token: adminToken });
          if (r.status !== 200) return undefined;
          const node = JSON.parse(r.body) as {
            spec?: { taints?: { key: string }[] };
            status?: { conditions?: { type: string; status: string }[] };
          };
          const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
          // The node lifecycle controller lifts its not-ready taint once it sees the node Ready.
          const tainted = node.spec?.taints?.some((t) => t.key.startsWith('node.kubernetes.io/'));
          return ready && !tainted ? true : undefined;
        });
      }
      // The controller-manager is working once it has created the default ServiceAccount.
      await waitFor('ServiceAccount default/default (controller-manager)', 60_000, all, signal, async () => {
        const r = await httpGet(`${server}/api/v1/namespaces/default/serviceaccounts/default`, {
          ca: caPem,
          token: adminToken,
        });
        return r.status === 200 ? true : undefined;
      });
    }

    const totalMs = Date.now() - t0;
    const processes: ControlPlaneProcess[] = procs.map((p) => ({ name: p.name, pid: p.pid, logPath: p.logPath }));
    return {
      kubeconfigPath,
      server,
      binDir,
      caPem,
      adminToken,
      dataDir,
      nodeName,
      processes,
      timings: { binDirMs, apiReadyMs, totalMs },
      kubectl,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (err) {
    await stop();
    throw signal?.aborted ? signal.reason : err;
  }
}
