/**
 * Helpers for the operator's Kubernetes-tier tests: a namespace on a real control plane with the
 * chart's CRDs and RBAC installed from `helm template`, ServiceAccount kubeconfigs made through the
 * TokenRequest API (so operators and partition servers run with the chart's permissions, not as
 * cluster-admin), operator processes, and polling with deadlines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { parseAllDocuments } from 'yaml';
import { KubeClient, RT, resourcePath, type KubeObject } from '@hadron/k8s';
import type { ControlPlane } from '@hadron/testing/k8s/control-plane';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
export const CHART_DIR = path.join(REPO_ROOT, 'charts', 'hadron-operator');
export const OPERATOR_BIN = path.join(REPO_ROOT, 'packages', 'operator', 'bin', 'hadron-operator.js');
export const STREAM_BIN = path.join(REPO_ROOT, 'packages', 'stream', 'bin', 'hadron-stream.js');
/** The repository's reference example (reference §7), applied with `kubectl apply -n NS -f`. */
export const EXAMPLE_FILE = path.join(REPO_ROOT, 'examples', 'full.yaml');

/** Applies examples/full.yaml into `namespace`, or the equivalent fixture when the file is absent. */
export async function applyExample(cp: ControlPlane, namespace: string, fixture: string): Promise<{ code: number; stderr: string }> {
  if (fs.existsSync(EXAMPLE_FILE)) return cp.kubectl(['apply', '-n', namespace, '-f', EXAMPLE_FILE]);
  return cp.kubectl(['apply', '-f', '-'], fixture);
}

/** Cold caches build Kubernetes from source first. */
export const K8S_TEST_TIMEOUT = 60 * 60_000;

/** Polls until `check` returns something other than undefined; fails at the deadline with the last error. */
export async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let interval = 50; ; interval = Math.min(interval * 2, 500)) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await delay(interval);
  }
}

export function adminClient(cp: ControlPlane): KubeClient {
  return new KubeClient({ server: cp.server, ca: cp.caPem, token: cp.adminToken });
}

export async function kubectl(cp: ControlPlane, args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** `helm template` of the chart, parsed into objects. */
export async function helmTemplate(cp: ControlPlane, namespace: string, sets: string[] = [], extra: string[] = []): Promise<KubeObject[]> {
  const args = ['template', 'hadron', CHART_DIR, '--namespace', namespace, '--kube-version', '1.33.13', ...sets.flatMap((s) => ['--set', s]), ...extra];
  const out = await run(path.join(cp.binDir, 'helm'), args);
  if (out.code !== 0) throw new Error(`helm ${args.join(' ')} failed: ${out.stderr}`);
  return parseAllDocuments(out.stdout)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null && typeof o === 'object');
}

export function run(bin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    p.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export interface InstalledChart {
  namespace: string;
  objects: KubeObject[];
  /** The chart-generated webhook serving pair and CA (certManager disabled). */
  tls: { cert: string; key: string; ca: string };
}

/**
 * Creates the namespace and installs from `helm template` (with `--include-crds`): the CRDs, the
 * ServiceAccounts, Roles and RoleBindings, and — when `webhooks` — the generated TLS Secret and
 * the ValidatingWebhookConfiguration. Waits until the CRDs are Established.
 */
export async function installChart(cp: ControlPlane, namespace: string, o: { sets?: string[]; webhooks?: boolean } = {}): Promise<InstalledChart> {
  await kubectl(cp, ['create', 'namespace', namespace]);
  const objects = await helmTemplate(cp, namespace, o.sets ?? [], ['--include-crds']);
  const kinds = new Set(['CustomResourceDefinition', 'ServiceAccount', 'Role', 'RoleBinding', ...(o.webhooks ? ['ValidatingWebhookConfiguration'] : [])]);
  const wanted = objects.filter((x) => kinds.has(x.kind ?? ''));
  await kubectl(cp, ['apply', '--server-side', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: wanted.filter((x) => x.kind === 'CustomResourceDefinition') }));
  await kubectl(cp, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/streams.hadron.rs', 'crd/pipelines.hadron.rs', 'crd/tokens.hadron.rs', 'crd/triggers.hadron.rs']);
  await kubectl(cp, ['apply', '--server-side', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: wanted.filter((x) => x.kind !== 'CustomResourceDefinition') }));
  const secret = objects.find((x) => x.kind === 'Secret' && x.metadata.name === 'hadron-webhooks') as (KubeObject & { data: Record<string, string> }) | undefined;
  if (!secret) throw new Error('the chart rendered no hadron-webhooks Secret');
  const b = (k: string): string => Buffer.from(secret.data[k] ?? '', 'base64').toString('utf8');
  return { namespace, objects, tls: { cert: b('tls.crt'), key: b('tls.key'), ca: b('ca.crt') } };
}

/** A kubeconfig for ServiceAccount `sa`, with a token from the TokenRequest API. */
export async function serviceAccountKubeconfig(cp: ControlPlane, namespace: string, sa: string, dir: string): Promise<string> {
  const admin = adminClient(cp);
  try {
    const tr = await admin.create<KubeObject & { status: { token: string } }>(resourcePath(RT.serviceaccounts, namespace, sa, 'token'), {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 3600 },
    });
    const file = path.join(dir, `${sa}.kubeconfig`);
    const ca = Buffer.from(cp.caPem).toString('base64');
    fs.writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: test, cluster: {server: "${cp.server}", certificate-authority-data: ${ca}}}]`,
        `users: [{name: ${sa}, user: {token: ${tr.status.token}}}]`,
        `contexts: [{name: test, context: {cluster: test, user: ${sa}, namespace: ${namespace}}}]`,
        'current-context: test',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    return file;
  } finally {
    admin.close();
  }
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A `hadron-operator` process. */
export class OperatorProcess {
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  ports = { client: 0, webhooks: 0, metrics: 0 };
  private constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static async start(o: { name: string; namespace: string; kubeconfig: string; tls: { cert: string; key: string }; leaseDurationSeconds?: number; leaseRenewSeconds?: number; webhooksPort?: number; env?: Record<string, string> }): Promise<OperatorProcess> {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KUBECONFIG: o.kubeconfig,
      HADRON_LOG_LEVEL: 'info',
      HADRON_BIND_HOST: '127.0.0.1',
      CLIENT_PORT: '0',
      WEBHOOKS_PORT: String(o.webhooksPort ?? 0),
      METRICS_PORT: '0',
      NAMESPACE: o.namespace,
      POD_NAME: o.name,
      LEASE_DURATION_SECONDS: String(o.leaseDurationSeconds ?? 6),
      LEASE_RENEW_SECONDS: String(o.leaseRenewSeconds ?? 3),
      WEBHOOK_CERT: o.tls.cert,
      WEBHOOK_KEY: o.tls.key,
      ...o.env,
    };
    const proc = spawn(process.execPath, [OPERATOR_BIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const op = new OperatorProcess(o.name, proc);
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      proc.stdout!.on('data', (c: Buffer) => {
        buf += c.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          op.output.push(line);
          if (line.includes('"operator started"')) {
            const j = JSON.parse(line) as { client: number; webhooks: number; metrics: number };
            op.ports = { client: j.client, webhooks: j.webhooks, metrics: j.metrics };
            resolve();
          }
        }
      });
      proc.stderr!.on('data', (c: Buffer) => op.output.push(c.toString()));
      void op.exited.then(({ code, signal }) => reject(new Error(`operator ${o.name} exited during start-up (${code ?? signal}):\n${op.output.slice(-20).join('\n')}`)));
    });
    return op;
  }

  /** Scrapes /metrics into `name{labels}` → value (labels namespace/pod dropped). */
  async metrics(): Promise<Map<string, number>> {
    const res = await fetch(`http://127.0.0.1:${this.ports.metrics}/metrics`);
    const text = await res.text();
    const out = new Map<string, number>();
    for (const line of text.split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = (m[2] ?? '').replace(/,?(namespace|pod)="[^"]*"/g, '').replace(/^\{,?/, '{').replace(/\{\}$/, '');
      out.set(`${m[1]}${labels === '{' ? '' : labels}`, Number(m[3]));
    }
    return out;
  }

  /** Sum of every series of `name`. */
  async metricSum(name: string): Promise<number> {
    let sum = 0;
    for (const [k, v] of await this.metrics()) if (k === name || k.startsWith(`${name}{`)) sum += v;
    return sum;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    await this.exited;
  }
}

/** The bin dir of the Kubernetes test tools (builds them on a cold cache), as startControlPlane finds it. */
export async function k8sBinDir(): Promise<string> {
  if (process.env.HADRON_K8S_BIN_DIR) return process.env.HADRON_K8S_BIN_DIR;
  const r = await run('bash', [path.join(REPO_ROOT, 'scripts', 'k8s-bins.sh')]);
  const dir = r.stdout.trim().split('\n').pop()?.trim();
  if (r.code !== 0 || !dir) throw new Error(`scripts/k8s-bins.sh failed: ${r.stderr.slice(-2000)}`);
  return dir;
}
