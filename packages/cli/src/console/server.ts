/**
 * The web console's HTTP server (`hadron console`, docs/console.md): static assets from the
 * package's `console/` directory (no CDN: the page works without internet access) and a small
 * JSON API that calls the cluster with the token the browser sends (`authorization: Bearer`),
 * through one HadronClient per token. The server holds no token of its own: without a valid
 * one the API answers 401 and the page asks for it.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HadronError, createClient, type ClientOptions, type HadronClient } from '@hadron/client';
import type { Logger } from '@hadron/core';

/** The static assets shipped with the CLI package. */
export const CONSOLE_ASSETS = fileURLToPath(new URL('../../console/', import.meta.url));
/** Clients kept for distinct tokens (oldest closed first). */
const MAX_CLIENTS = 16;

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

export interface ConsoleServerOptions {
  /** Cluster bootstrap URL (as --url). */
  url: string;
  /** TLS and other client options for the cluster. */
  client?: Partial<ClientOptions>;
  logger: Logger;
}

export class ConsoleServer {
  private readonly server: http.Server;
  private readonly clients = new Map<string, HadronClient>();

  constructor(private readonly o: ConsoleServerOptions) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  /** Listens on `host:port` (port 0: any free port); resolves with the console URL. */
  async listen(host: string, port: number): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    const a = this.server.address() as { address: string; port: number };
    return `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}/`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.clients.values()].map((c) => c.close().catch(() => undefined)));
    this.clients.clear();
  }

  private client(token: string): HadronClient {
    let c = this.clients.get(token);
    if (!c) {
      if (this.clients.size >= MAX_CLIENTS) {
        const [oldest, oc] = this.clients.entries().next().value as [string, HadronClient];
        this.clients.delete(oldest);
        void oc.close().catch(() => undefined);
      }
      c = createClient({ ...this.o.client, url: this.o.url, token, logger: this.o.logger });
      this.clients.set(token, c);
    }
    return c;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://console');
    try {
      if (u.pathname.startsWith('/api/')) return await this.api(u, req, res);
      const name = u.pathname === '/' ? 'index.html' : u.pathname.slice(1);
      // Only the flat list of shipped files: no path from the request reaches the file system.
      const files = fs.readdirSync(CONSOLE_ASSETS);
      if (!files.includes(name)) return send(res, 404, 'text/plain; charset=utf-8', 'not found');
      send(res, 200, TYPES[path.extname(name)] ?? 'application/octet-stream', fs.readFileSync(path.join(CONSOLE_ASSETS, name)));
    } catch (err) {
      this.o.logger.warn({ err, path: u.pathname }, 'console request failed');
      json(res, 500, { error: 'internal error', code: 'INTERNAL' });
    }
  }

  private async api(u: URL, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const m = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return json(res, 401, { error: 'a token is required: send authorization: Bearer <token>', code: 'UNAUTHENTICATED' });
    const client = this.client(m[1]!);
    try {
      await client.ready({ timeoutMs: 5000 });
      switch (u.pathname) {
        case '/api/stream': {
          const info = await client.streamInfo();
          const health = new Map(client.partitions().map((p) => [p.partition, p.health]));
          return json(res, 200, { ...info, now: Date.now(), partitions: info.partitions.map((p) => ({ ...p, state: health.get(p.partition) ?? 'unknown' })) });
        }
        case '/api/events': {
          const num = (k: string): number | undefined => (u.searchParams.get(k) ? Number(u.searchParams.get(k)) : undefined);
          const partition = num('partition');
          if (partition === undefined || !Number.isInteger(partition)) return json(res, 400, { error: 'partition is required', code: 'INVALID_ARGUMENT' });
          const offset = num('offset');
          const r = await client.read({ partition, count: num('count') ?? 20, ...(offset !== undefined ? { offset } : {}) });
          return json(res, 200, {
            ...r,
            events: r.events.map((e) => ({
              offset: e.offset,
              timeMs: e.timeMs,
              event: e.event ? { id: e.event.id, source: e.event.source, specversion: e.event.specversion, type: e.event.type, optattrs: e.event.optattrs, data: Buffer.from(e.event.data ?? []).toString('base64') } : undefined,
            })),
          });
        }
        case '/api/pipeline': {
          const name = u.searchParams.get('name') ?? '';
          // Stage outputs' data as base64, like events.
          const partitions = (await client.pipelineStatus(name)).map((p) =>
            'error' in p
              ? p
              : { ...p, instances: p.instances.map((i) => ({ ...i, stages: i.stages.map((st) => (st.output ? { ...st, output: { ...st.output, data: Buffer.from(st.output.data ?? []).toString('base64') } } : st)) })) },
          );
          return json(res, 200, { name, partitions });
        }
        case '/api/pipelines':
          return json(res, 200, { pipelines: await client.pipelines() });
        case '/api/tokens':
          // Names and permissions only (ListTokens never returns keys or JWTs). It needs all: true;
          // a narrower token gets the reason instead of a 403, which would sign the page out.
          try {
            return json(res, 200, { tokens: await client.tokens() });
          } catch (err) {
            if (err instanceof HadronError && err.code === 'PERMISSION_DENIED') return json(res, 200, { tokens: null, refused: err.message });
            throw err;
          }
        default:
          return json(res, 404, { error: `no API ${u.pathname}`, code: 'NOT_FOUND' });
      }
    } catch (err) {
      const code = err instanceof HadronError ? err.code : 'INTERNAL';
      const status = code === 'UNAUTHENTICATED' ? 401 : code === 'PERMISSION_DENIED' ? 403 : code === 'NOT_FOUND' ? 404 : code.startsWith('INVALID') ? 400 : 502;
      // A refused token must not keep a client (and its reconnect loop) around.
      if (status === 401 || status === 403) {
        this.clients.delete(m[1]!);
        void client.close().catch(() => undefined);
      }
      json(res, status, { error: err instanceof Error ? err.message : String(err), code });
    }
  }
}

function send(res: http.ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body));
}
