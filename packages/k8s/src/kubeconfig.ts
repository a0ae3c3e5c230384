/**
 * Where the Kubernetes API is and how to authenticate to it, resolved the way client-go does:
 * `$KUBECONFIG` (first file of the path list, current context) if set, else the in-cluster
 * service-account mount (`KUBERNETES_SERVICE_HOST`/`_PORT` plus
 * /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt}).
 *
 * Supported credentials: bearer token (inline or a file, re-read so that projected tokens can
 * rotate), client certificate/key (inline data or files), and `insecure-skip-tls-verify`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { HadronError, type Env } from '@hadron/core';

export interface KubeConnection {
  /** e.g. https://10.0.0.1:443 — no trailing slash. */
  server: string;
  /** PEM CA bundle; undefined = system roots. */
  ca?: string;
  /** Bearer token (static). */
  token?: string;
  /** Bearer token file, re-read at most every minute (projected SA tokens rotate). */
  tokenFile?: string;
  cert?: string;
  key?: string;
  insecureSkipTlsVerify?: boolean;
}

export const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(msg: string): never {
  throw new HadronError('CONFIG_INVALID', `invalid configuration: ${msg}`, { context: { variable: 'KUBECONFIG' } });
}

function named(list: unknown, name: unknown, key: string): Obj {
  if (!Array.isArray(list)) bad(`kubeconfig has no ${key}s`);
  const e = list.find((x) => isObj(x) && x.name === name) as Obj | undefined;
  if (!e || !isObj(e[key])) bad(`kubeconfig has no ${key} named ${JSON.stringify(name)}`);
  return e[key] as Obj;
}

/** Parses one kubeconfig file (relative paths are resolved against its directory). */
export function connectionFromKubeconfig(file: string, contextName?: string): KubeConnection {
  const text = fs.readFileSync(file, 'utf8');
  const doc = parseYaml(text) as unknown;
  if (!isObj(doc)) bad(`${file} is not a kubeconfig`);
  const ctxName = contextName ?? doc['current-context'];
  const ctx = named(doc.contexts, ctxName, 'context');
  const cluster = named(doc.clusters, ctx.cluster, 'cluster');
  const user = ctx.user === undefined ? {} : named(doc.users, ctx.user, 'user');
  const dir = path.dirname(file);
  const read = (p: unknown): string | undefined => (typeof p === 'string' ? fs.readFileSync(path.resolve(dir, p), 'utf8') : undefined);
  const b64 = (s: unknown): string | undefined => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : undefined);
  if (typeof cluster.server !== 'string') bad(`cluster ${String(ctx.cluster)} has no server`);
  const conn: KubeConnection = { server: cluster.server.replace(/\/+$/, '') };
  const ca = b64(cluster['certificate-authority-data']) ?? read(cluster['certificate-authority']);
  if (ca) conn.ca = ca;
  if (cluster['insecure-skip-tls-verify'] === true) conn.insecureSkipTlsVerify = true;
  if (typeof user.token === 'string') conn.token = user.token;
  if (typeof user.tokenFile === 'string') conn.tokenFile = path.resolve(dir, user.tokenFile);
  const cert = b64(user['client-certificate-data']) ?? read(user['client-certificate']);
  const key = b64(user['client-key-data']) ?? read(user['client-key']);
  if (cert && key) {
    conn.cert = cert;
    conn.key = key;
  }
  return conn;
}

/** `$KUBECONFIG`, else in-cluster, else ~/.kube/config; throws CONFIG_INVALID if none works. */
export function loadConnection(env: Env = process.env, inClusterDir = IN_CLUSTER_DIR): KubeConnection {
  const kc = (env.KUBECONFIG ?? '').split(path.delimiter).find((p) => p !== '');
  if (kc) return connectionFromKubeconfig(kc);
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (host && port && fs.existsSync(path.join(inClusterDir, 'token'))) {
    const h = host.includes(':') ? `[${host}]` : host;
    return {
      server: `https://${h}:${port}`,
      ca: fs.readFileSync(path.join(inClusterDir, 'ca.crt'), 'utf8'),
      tokenFile: path.join(inClusterDir, 'token'),
    };
  }
  const home = path.join(os.homedir(), '.kube', 'config');
  if (fs.existsSync(home)) return connectionFromKubeconfig(home);
  bad('no Kubernetes API found: set KUBECONFIG, or run in a pod with a service-account token mounted');
}
