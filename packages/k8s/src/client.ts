/**
 * A small typed client for the Kubernetes REST API over `node:https` (keep-alive): CRUD,
 * server-side apply (`application/apply-patch+yaml`, https://kubernetes.io/docs/reference/using-api/server-side-apply/),
 * merge patch and streaming watches (newline-delimited JSON `WatchEvent`s,
 * https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes).
 *
 * Errors: every non-2xx answer becomes a `KubeApiError` carrying the HTTP status and the
 * `Status.reason` (NotFound, Conflict, AlreadyExists, Expired/Gone, Invalid, Forbidden…).
 * 429, 5xx and network failures are retriable; everything else is not.
 */
import fs from 'node:fs';
import https from 'node:https';
import { HadronError, type ErrorCode } from '@hadron/core';
import type { KubeConnection } from './kubeconfig.js';
import type { KubeObject, ResourceType, WatchEvent } from './types.js';

export class KubeApiError extends HadronError {
  override name = 'KubeApiError';
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(codeOf(statusCode), message, {
      retriable: statusCode === 0 || statusCode === 429 || statusCode >= 500,
      context: { statusCode, reason },
    });
  }
  get notFound(): boolean {
    return this.statusCode === 404;
  }
  get conflict(): boolean {
    return this.statusCode === 409;
  }
  /** 410 Gone: a watch or list resourceVersion is too old; relist. */
  get gone(): boolean {
    return this.statusCode === 410;
  }
}

function codeOf(status: number): ErrorCode {
  if (status === 0 || status === 429 || status >= 500) return 'UNAVAILABLE';
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'PERMISSION_DENIED';
  if (status === 404) return 'NOT_FOUND';
  if (status === 400 || status === 422) return 'INVALID_ARGUMENT';
  return 'INTERNAL';
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** Default 30 s; 0 = none (watches). */
  timeoutMs?: number;
}

export interface ApplyOptions {
  fieldManager: string;
  force?: boolean;
  signal?: AbortSignal;
}

/** `/apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}[/{sub}]]` (core group: `/api/v1`). */
export function resourcePath(rt: ResourceType, namespace?: string, name?: string, sub?: string): string {
  const base = rt.group === '' ? `/api/${rt.version}` : `/apis/${rt.group}/${rt.version}`;
  const ns = rt.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const n = name === undefined ? '' : `/${encodeURIComponent(name)}`;
  return `${base}${ns}/${rt.plural}${n}${sub ? `/${sub}` : ''}`;
}

const TOKEN_REREAD_MS = 60_000;

export class KubeClient {
  private readonly agent: https.Agent;
  private tokenCache: { value: string; at: number } | undefined;

  constructor(
    readonly conn: KubeConnection,
    private readonly opts: { userAgent?: string } = {},
  ) {
    const tls: https.AgentOptions = { keepAlive: true, maxSockets: 16 };
    if (conn.ca) tls.ca = conn.ca;
    if (conn.cert) tls.cert = conn.cert;
    if (conn.key) tls.key = conn.key;
    if (conn.insecureSkipTlsVerify) tls.rejectUnauthorized = false;
    this.agent = new https.Agent(tls);
  }

  private bearer(): string | undefined {
    if (this.conn.token) return this.conn.token;
    if (!this.conn.tokenFile) return undefined;
    const now = Date.now();
    if (!this.tokenCache || now - this.tokenCache.at > TOKEN_REREAD_MS) {
      this.tokenCache = { value: fs.readFileSync(this.conn.tokenFile, 'utf8').trim(), at: now };
    }
    return this.tokenCache.value;
  }

  private open(method: string, path: string, o: RequestOptions): Promise<import('node:http').IncomingMessage> {
    const url = new URL(this.conn.server + path);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.opts.userAgent ?? 'hadron' };
    const token = this.bearer();
    if (token) headers.authorization = `Bearer ${token}`;
    let payload: Buffer | undefined;
    if (o.body !== undefined) {
      payload = Buffer.from(JSON.stringify(o.body));
      headers['content-type'] = o.contentType ?? 'application/json';
      headers['content-length'] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, headers, agent: this.agent, signal: o.signal }, resolve);
      const timeout = o.timeoutMs ?? 30_000;
      if (timeout > 0) {
        req.setTimeout(timeout, () => req.destroy(new KubeApiError(0, 'Timeout', `${method} ${path}: no answer within ${timeout} ms`)));
      }
      req.once('error', (err) => reject(err instanceof HadronError || o.signal?.aborted ? err : new KubeApiError(0, 'NetworkError', `${method} ${path}: ${err.message}`)));
      req.end(payload);
    });
  }

  /** One request; resolves with the parsed JSON body, rejects with KubeApiError. */
  async request<T = unknown>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const res = await this.open(method, path, o);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const status = res.statusCode ?? 0;
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = text;
    }
    if (status < 200 || status >= 300) throw apiError(method, path, status, body);
    return body as T;
  }

  get<T extends KubeObject = KubeObject>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, { signal });
  }

  /** GET, or undefined on 404. */
  async getOrUndefined<T extends KubeObject = KubeObject>(path: string, signal?: AbortSignal): Promise<T | undefined> {
    try {
      return await this.get<T>(path, signal);
    } catch (err) {
      if (err instanceof KubeApiError && err.notFound) return undefined;
      throw err;
    }
  }

  create<T extends KubeObject = KubeObject>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    return this.request<T>('POST', path, { body, signal });
  }

  replace<T extends KubeObject = KubeObject>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    return this.request<T>('PUT', path, { body, signal });
  }

  /** Server-side apply. The body is JSON, which is valid YAML. */
  apply<T extends KubeObject = KubeObject>(path: string, body: unknown, o: ApplyOptions): Promise<T> {
    return this.request<T>('PATCH', path, {
      body,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: o.fieldManager, force: o.force ? true : undefined },
      signal: o.signal,
    });
  }

  mergePatch<T extends KubeObject = KubeObject>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: 'application/merge-patch+json', signal });
  }

  /** DELETE; resolves false when the object was already gone. */
  async delete(path: string, o: { propagationPolicy?: 'Background' | 'Foreground' | 'Orphan'; uid?: string; signal?: AbortSignal } = {}): Promise<boolean> {
    const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions' };
    if (o.propagationPolicy) body.propagationPolicy = o.propagationPolicy;
    if (o.uid) body.preconditions = { uid: o.uid };
    try {
      await this.request('DELETE', path, { body, signal: o.signal });
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.notFound) return false;
      throw err;
    }
  }

  /**
   * Opens a watch and yields its events until the server ends it (timeoutSeconds), the signal
   * aborts, or it fails. A 410 answer — or an ERROR event with code 410 — throws a KubeApiError
   * whose `gone` is true.
   */
  async *watch<T extends KubeObject = KubeObject>(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    signal?: AbortSignal,
  ): AsyncGenerator<WatchEvent<T>> {
    const res = await this.open('GET', path, { query: { ...query, watch: true }, signal, timeoutMs: 0 });
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* keep text */
      }
      throw apiError('WATCH', path, status, body);
    }
    let buf = '';
    try {
      for await (const chunk of res) {
        buf += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          const ev = JSON.parse(line) as WatchEvent<T>;
          if (ev.type === 'ERROR') {
            const st = ev.object as unknown as { code?: number; reason?: string; message?: string };
            throw new KubeApiError(st.code ?? 500, st.reason ?? 'WatchError', `watch ${path}: ${st.message ?? 'error event'}`, st);
          }
          yield ev;
        }
      }
    } finally {
      res.destroy();
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

function apiError(method: string, path: string, status: number, body: unknown): KubeApiError {
  const st = (typeof body === 'object' && body !== null ? body : {}) as { reason?: string; message?: string; details?: unknown };
  const msg = st.message ?? (typeof body === 'string' && body !== '' ? body : `HTTP ${status}`);
  return new KubeApiError(status, st.reason ?? `HTTP${status}`, `${method} ${path}: ${msg}`, st.details);
}
