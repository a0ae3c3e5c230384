/**
 * The CloudEvents HTTP ingress of one partition server (docs/http.md): `POST /` in binary,
 * structured or batched mode (ce-codec.ts), authenticated with the same bearer tokens and the
 * `pub` permission as gRPC publish, stored on the partition the placement rule chooses.
 *
 * Placement (the same hash as the client, packages/proto/src/partition-hash.ts):
 *   - an event with a `partitionkey` (else a `subject`) goes to xxHash64(key) mod partitions,
 *     forwarded over gRPC to that partition when it arrived elsewhere;
 *   - an event without either has no order to keep: it stays on the partition that received it
 *     (the Service spreads such traffic), or, inside a batch, goes with the batch's keyed events;
 *   - a batch is stored by one append on one partition, so it is all-or-nothing; a batch whose
 *     keys hash to different partitions is refused (400) rather than stored partially.
 *
 * Transport: cleartext serves HTTP/1.1 and h2c with prior knowledge on the same port (the first
 * bytes of a connection tell which: the HTTP/2 preface starts with "PRI"); `Upgrade: h2c` is not
 * offered. With HADRON_TLS_* set the port serves HTTPS (HTTP/1.1 and h2 by ALPN) with the client
 * port's certificate, reloaded with it.
 *
 * Answers: 200 `{"events":[{"id","partition","offset"}…]}`; errors as JSON
 * `{"code","message"}` with the status of http-status.ts; 413 for a body over the limit; 429 with
 * `Retry-After` when HADRON_HTTP_MAX_INFLIGHT requests are already in flight.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { HadronError, serverTlsOptions, type GrpcServerTls, type Logger } from '@hadron/core';
import { partitionOfKey } from '@hadron/proto';
import { Counter, type Registry } from 'prom-client';
import type { Authenticator } from '../auth.js';
import type { StreamMetrics } from '../metrics.js';
import type { PartitionStore } from '../storage/partition-store.js';
import { decodeBinary, decodeJson, modeOf, placementKey, type DecodedEvent } from './ce-codec.js';
import type { PartitionForwarder } from './forwarder.js';
import { RETRY_AFTER_SECONDS, httpStatusOf } from './http-status.js';

/** Metric names of the HTTP ingress (docs/metrics.md). */
export const HTTP_METRIC = {
  requests: 'hadron_stream_http_requests_total',
  events: 'hadron_stream_http_events_total',
  forwarded: 'hadron_stream_http_forwarded_events_total',
} as const;

export interface IngressOptions {
  stream: string;
  partition: number;
  /** The Stream's partition count, undefined while the Stream is unknown. */
  partitionCount: () => number | undefined;
  auth: Authenticator;
  store: PartitionStore;
  metrics: StreamMetrics;
  forwarder: PartitionForwarder;
  logger: Logger;
  maxBodyBytes: number;
  maxEventsPerRequest: number;
  maxInflight: number;
  requestBodyTimeoutMs: number;
  tls?: GrpcServerTls;
  /**
   * Waits for the replicas (docs/replication.md): HTTP publishes use WriteAck ALL, like the
   * client's default and like events this ingress forwards to other partitions.
   */
  replicate?: (last: number) => Promise<void>;
}

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

export class HttpIngress {
  private readonly h1: http.Server | undefined;
  private readonly h2: http2.Http2Server | http2.Http2SecureServer;
  private readonly listener: net.Server | http2.Http2SecureServer;
  private readonly sockets = new Set<net.Socket>();
  private inflight = 0;
  private readonly requests: Counter<'status'>;
  private readonly events: Counter;
  private readonly forwarded: Counter;

  constructor(private readonly o: IngressOptions) {
    const r: Registry = o.metrics.registry;
    this.requests = new Counter({ name: HTTP_METRIC.requests, help: 'CloudEvents HTTP requests answered, by HTTP status.', labelNames: ['status'], registers: [r] });
    this.events = new Counter({ name: HTTP_METRIC.events, help: 'Events accepted over the CloudEvents HTTP ingress (stored here or forwarded).', registers: [r] });
    this.forwarded = new Counter({ name: HTTP_METRIC.forwarded, help: 'Events received over HTTP and forwarded to the partition that owns their key.', registers: [r] });
    const handler = (req: Req, res: Res): void => void this.handle(req, res);
    if (o.tls) {
      this.h2 = http2.createSecureServer({ ...serverTlsOptions(o.tls), allowHTTP1: true }, handler);
      this.listener = this.h2;
    } else {
      this.h1 = http.createServer(handler);
      this.h1.requestTimeout = o.requestBodyTimeoutMs;
      this.h2 = http2.createServer(handler);
      this.listener = net.createServer((s) => this.route(s));
    }
    this.listener.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  /** Cleartext: peek at the first bytes and hand the socket to the HTTP/1.1 or the h2c server. */
  private route(socket: net.Socket): void {
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      // The HTTP/2 connection preface (RFC 9113 §3.4) begins "PRI * HTTP/2.0"; no HTTP/1 method is PRI.
      if (chunk.subarray(0, 3).toString('latin1') === 'PRI') {
        // The session reads what is buffered on the next tick (node: "socket already has some
        // buffered data"); resuming here would hand those bytes to nobody.
        this.h2.emit('connection', socket);
      } else {
        this.h1!.emit('connection', socket);
        socket.resume();
      }
    });
    socket.on('error', () => socket.destroy());
  }

  async listen(port: number, host: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(port, host, () => resolve());
    });
    return (this.listener.address() as AddressInfo).port;
  }

  setSecureContext(tls: GrpcServerTls): void {
    if ('setSecureContext' in this.listener) this.listener.setSecureContext(serverTlsOptions(tls));
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((r) => (this.listener.listening ? this.listener.close(() => r()) : r()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private async handle(req: Req, res: Res): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/') return this.fail(res, 404, 'NOT_FOUND', `no such path ${url.pathname}; POST CloudEvents to /`);
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return this.fail(res, 405, 'INVALID_ARGUMENT', `method ${req.method ?? ''} not allowed; POST CloudEvents to /`);
    }
    if (this.inflight >= this.o.maxInflight) {
      res.setHeader('retry-after', String(RETRY_AFTER_SECONDS));
      return this.fail(res, 429, 'SERVER_BUSY', `too many CloudEvents HTTP requests in flight (HADRON_HTTP_MAX_INFLIGHT=${this.o.maxInflight}); retry later`);
    }
    this.inflight++;
    try {
      const authorization = typeof req.headers.authorization === 'string' ? req.headers.authorization : undefined;
      this.o.auth.authorize(this.o.auth.authenticate(req.headers.authorization), 'pub', this.o.stream);
      const body = await this.readBody(req);
      const mode = modeOf(req.headers);
      const events = mode === 'binary' ? [decodeBinary(req.headers, body)] : decodeJson(mode, body);
      if (events.length === 0) throw new HadronError('EMPTY_BATCH', 'validation error: entries batch was empty, no-op');
      if (events.length > this.o.maxEventsPerRequest) {
        throw new HadronError('TOO_MANY_EVENTS', `the batch has ${events.length} events, at most ${this.o.maxEventsPerRequest} allowed (HADRON_MAX_EVENTS_PER_REQUEST)`);
      }
      const fsync = fsyncOf(url, req.headers['hadron-fsync']);
      const target = this.placement(events);
      const bytes = events.map((e) => e.bytes);
      let last: number;
      if (target === this.o.partition) {
        ({ last } = await this.o.store.append(bytes, { fsync }));
        await this.o.replicate?.(last);
        const m = this.o.metrics;
        m.publishedEvents.inc(bytes.length);
        m.publishedBytes.inc(bytes.reduce((n, b) => n + b.length, 0));
        m.publishBatchSize.observe(bytes.length);
        m.currentOffset.set(last);
      } else {
        ({ last } = await this.o.forwarder.publish(target, bytes, { fsync, authorization }));
        this.forwarded.inc(bytes.length);
      }
      this.events.inc(bytes.length);
      const first = last - events.length + 1;
      const out = { events: events.map((e, i) => ({ id: e.wire.id, partition: target, offset: first + i })) };
      this.answer(res, 200, out);
    } catch (err) {
      const e = err instanceof HadronError ? err : new HadronError('INTERNAL', 'internal server error');
      if (!(err instanceof HadronError)) this.o.logger.error({ err }, 'CloudEvents HTTP request failed');
      const status = httpStatusOf(e.code);
      if (status === 429 || status === 503) res.setHeader('retry-after', String(RETRY_AFTER_SECONDS));
      if (status === 401) res.setHeader('www-authenticate', 'Bearer');
      this.fail(res, status, e.code, e.message);
    } finally {
      this.inflight--;
    }
  }

  /** The partition of a request's events (see the module comment). */
  private placement(events: DecodedEvent[]): number {
    const count = this.o.partitionCount();
    if (count === undefined) throw new HadronError('UNAVAILABLE', `Stream ${this.o.stream} is not known yet on this partition; retry later`);
    let target: number | undefined;
    let firstKeyed = -1;
    for (let i = 0; i < events.length; i++) {
      const key = placementKey(events[i]!.wire);
      if (key === undefined) continue;
      const p = partitionOfKey(Buffer.from(key, 'utf8'), count);
      if (target === undefined) {
        target = p;
        firstKeyed = i;
      } else if (p !== target) {
        throw new HadronError(
          'INVALID_ARGUMENT',
          `the batch spans partitions: event ${firstKeyed}'s key places it on partition ${target}, event ${i}'s on partition ${p}; a batch is stored atomically on one partition, so send events whose keys differ in separate requests`,
        );
      }
    }
    return target ?? this.o.partition;
  }

  private readBody(req: Req): Promise<Buffer> {
    const max = this.o.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > max) return Promise.reject(tooLarge(declared, max));
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let n = 0;
      const timer = setTimeout(() => fail(new HadronError('DEADLINE_EXCEEDED', `request body not received within ${this.o.requestBodyTimeoutMs} ms (HADRON_REQUEST_BODY_TIMEOUT_MS)`)), this.o.requestBodyTimeoutMs);
      const fail = (err: unknown): void => {
        clearTimeout(timer);
        req.removeAllListeners('data');
        req.resume();
        reject(err);
      };
      req.on('data', (c: Buffer) => {
        n += c.length;
        if (n > max) return fail(tooLarge(n, max));
        chunks.push(c);
      });
      req.once('end', () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks, n));
      });
      req.once('error', fail);
    });
  }

  private answer(res: Res, status: number, body: unknown): void {
    this.requests.inc({ status: String(status) });
    const text = JSON.stringify(body);
    (res as http.ServerResponse).writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private fail(res: Res, status: number, code: string, message: string): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    // A 413 sent before the body was read: close rather than drain an oversized upload.
    if (status === 413 && 'shouldKeepAlive' in res) res.shouldKeepAlive = false;
    this.answer(res, status, { code, message });
  }
}

function tooLarge(n: number, max: number): HadronError {
  return new HadronError('MESSAGE_TOO_LARGE', `request body of ${n} bytes exceeds the limit of ${max} bytes (HADRON_MAX_MESSAGE_BYTES)`);
}

/** `?fsync=false` or `hadron-fsync: false` ask for no fsync before the answer; default true. */
function fsyncOf(url: URL, header: string | string[] | undefined): boolean {
  const v = url.searchParams.get('fsync') ?? (Array.isArray(header) ? header[0] : header);
  if (v === undefined || v === null) return true;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new HadronError('INVALID_ARGUMENT', `fsync must be true or false, got ${JSON.stringify(v)}`);
}
