/**
 * A gRPC server on `node:http2` (h2c, or h2 over TLS when `tls` is given), implementing the parts of PROTOCOL-HTTP2.md Hadron uses:
 * unary, server-streaming and bidi calls with length-prefixed protobuf messages, `grpc-timeout`,
 * trailers-only error responses, and the `grpc-status` / `grpc-message` trailers.
 *
 * Why not @grpc/grpc-js: it cannot raise HTTP/2 flow-control windows, and its per-message cost
 * caps a stream at ~35k messages/s here (PERF-NOTES). Standard gRPC clients (grpc-js, tonic,
 * grpc-go) interoperate with this server; a test keeps that true.
 *
 * Call lifecycle: headers are sent with the first response message, or earlier when the handler
 * calls `sendHeaders()` — streaming handlers do so as soon as the call is accepted (after auth),
 * because the original Rust client awaits each call's response headers before it subscribes to
 * the next partition (issue 14 item 13). A handler that
 * throws ends the call with the status of the error (`grpcStatusOf`); if nothing was sent yet
 * this is a trailers-only response. Every handler gets an AbortSignal that fires when the client
 * cancels, the deadline passes, or the server shuts down.
 *
 * Resource limits (connections, handshake/idle/request-body timeouts, request bytes in flight)
 * live in limits.ts; this file only reserves request bytes per call and runs the body timer.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { HadronError, Status, grpcStatusOf, type StatusCode } from '../errors.js';
import { AsyncQueue } from './async-queue.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  HTTP2_SESSION_WINDOW_BYTES,
  MessageDecoder,
  encodeGrpcMessage,
  frame,
  frameHeader,
  http2Settings,
} from './framing.js';
import { ByteBudget, ConnectionGuard, DEFAULT_SERVER_LIMITS, type LimitObserver, type ServerLimits } from './limits.js';

export interface CallContext {
  /** Full method path, e.g. `/stream.StreamController/StreamPublish`. */
  readonly method: string;
  readonly metadata: http2.IncomingHttpHeaders;
  /** Fires when the client cancels or disconnects, the deadline passes, or the server stops. */
  readonly signal: AbortSignal;
  readonly peer: string;
}

export interface ServerStreamCall extends CallContext {
  /**
   * Sends the response HEADERS now (idempotent; a no-op once the call has ended). Streaming
   * handlers call it once the call is accepted so that clients waiting for headers proceed
   * even when there is nothing to deliver yet.
   */
  sendHeaders(): void;
  /** Sends one message; resolves once it is handed to HTTP/2 and the stream is not congested. */
  send(msg: Uint8Array): Promise<void>;
  /** Ends the call from outside the handler with this error's status. */
  fail(err: unknown): void;
}

export interface BidiCall extends ServerStreamCall {
  /** The client's messages; ends when the client half-closes, throws on a framing error. */
  readonly incoming: AsyncIterableIterator<Buffer>;
}

export type MethodDef =
  | { kind: 'unary'; handler: (req: Buffer, ctx: CallContext) => Promise<Uint8Array> }
  | { kind: 'serverStream'; handler: (req: Buffer, call: ServerStreamCall) => Promise<void> }
  | { kind: 'bidi'; handler: (call: BidiCall) => Promise<void> };

/** TLS material (PEM). With `clientCa`, clients must present a certificate signed by it. */
export interface GrpcServerTls {
  cert: string | Buffer;
  key: string | Buffer;
  clientCa?: string | Buffer;
}

export interface GrpcServerOptions {
  methods: Record<string, MethodDef>;
  logger: Logger;
  maxMessageBytes?: number;
  /** Connection and request limits (see limits.ts); unset fields take their defaults. */
  limits?: Partial<ServerLimits>;
  /** Told about every limit hit (for metrics). */
  observer?: LimitObserver;
  /** Serve gRPC over TLS (ALPN h2 only, TLS ≥ 1.2); plaintext h2c when absent. */
  tls?: GrpcServerTls;
}

/** What a call needs of the server's limits. */
interface CallLimits {
  kind: MethodDef['kind'];
  budget: ByteBudget;
  bodyTimeoutMs: number;
  observer: LimitObserver | undefined;
}

/** node:tls options for a GrpcServerTls (also used to validate material before a reload). */
export function serverTlsOptions(tls: GrpcServerTls): import('node:tls').SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
  const mtls = tls.clientCa !== undefined;
  return { cert: tls.cert, key: tls.key, ...(mtls ? { ca: tls.clientCa } : {}), requestCert: mtls, rejectUnauthorized: mtls, minVersion: 'TLSv1.2' };
}

type ServerState = 'new' | 'listening' | 'closing' | 'closed';

const LARGE_MESSAGE = 64 * 1024;
/** How long a failed call's unread response may stay buffered before the stream is reset. */
const FAILED_CALL_FLUSH_MS = 5_000;

export class GrpcServer {
  private readonly server: http2.Http2Server | http2.Http2SecureServer;
  private readonly maxMessageBytes: number;
  private readonly calls = new Set<ServerCallImpl>();
  private readonly unaryInFlight = new Set<Promise<unknown>>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /** A Map, not the options object: `:path` is client input (`/__proto__`, `/toString`…). */
  private readonly methods: ReadonlyMap<string, MethodDef>;
  private state: ServerState = 'new';
  private readonly limits: Readonly<ServerLimits>;
  private readonly guard: ConnectionGuard;
  private readonly budget: ByteBudget;

  constructor(private readonly opts: GrpcServerOptions) {
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.methods = new Map(Object.entries(opts.methods));
    this.limits = { ...DEFAULT_SERVER_LIMITS, ...opts.limits };
    this.guard = new ConnectionGuard(this.limits, opts.observer);
    this.budget = new ByteBudget(this.limits.maxInflightRequestBytes);
    const h2opts: http2.ServerOptions = {
      settings: { ...http2Settings, maxHeaderListSize: 64 * 1024 },
      maxSessionMemory: 1024,
      // Ping-less idle connections are normal for subscribers; do not time them out.
    };
    // TLS: ALPN offers only h2 and allowHTTP1 stays false, so nothing but gRPC-over-h2 is spoken.
    this.server = opts.tls ? http2.createSecureServer({ ...h2opts, ...serverTlsOptions(opts.tls), ALPNProtocols: ['h2'], handshakeTimeout: this.limits.handshakeTimeoutMs }) : http2.createServer(h2opts);
    this.server.on('tlsClientError', (err: Error) => opts.logger.debug({ err }, 'TLS handshake failed'));
    this.server.on('session', (session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      session.on('error', (err) => opts.logger.debug({ err }, 'http2 session error'));
      try {
        session.setLocalWindowSize(HTTP2_SESSION_WINDOW_BYTES);
      } catch {
        // Older sessions may refuse before settings are exchanged; the stream windows still apply.
      }
    });
    this.guard.attach(this.server);
    // Small responses (acks) must not wait for Nagle's algorithm and delayed ACKs.
    this.server.on('connection', (socket: import('node:net').Socket) => socket.setNoDelay(true));
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
  }

  /** Open connections and request bytes in flight (for gauges). */
  stats(): { connections: number; inflightRequestBytes: number } {
    return { connections: this.guard.connections, inflightRequestBytes: this.budget.inUse };
  }

  /** Replaces the certificate/key (and client CA) for new connections; TLS servers only. */
  setSecureContext(tls: GrpcServerTls): void {
    if (!('setSecureContext' in this.server)) throw new Error('GrpcServer.setSecureContext() on a server without TLS');
    this.server.setSecureContext(serverTlsOptions(tls));
  }

  async listen(port: number, host = '0.0.0.0'): Promise<number> {
    if (this.state !== 'new') throw new Error(`GrpcServer.listen() called in state ${this.state}`);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.state = 'listening';
    return (this.server.address() as AddressInfo).port;
  }

  /**
   * Graceful stop: refuse new calls, let in-flight unary calls (publishes) finish, abort
   * streaming calls, then close every connection. Idempotent.
   */
  async close(graceMs = 10_000): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    const wasListening = this.state === 'listening';
    this.state = 'closing';
    const closed = wasListening ? new Promise<void>((r) => this.server.close(() => r())) : Promise.resolve();
    await Promise.race([Promise.allSettled([...this.unaryInFlight]), delay(graceMs)]);
    for (const c of this.calls) c.abortWith(new HadronError('UNAVAILABLE', 'server shutting down'));
    for (const s of this.sessions) s.close();
    const forced = setTimeout(() => {
      for (const s of this.sessions) s.destroy();
    }, Math.min(graceMs, 2000));
    await closed;
    clearTimeout(forced);
    this.state = 'closed';
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const path = headers[':path'] ?? '';
    const method = this.methods.get(path);
    const ct = headers['content-type'] ?? '';
    if (headers[':method'] !== 'POST' || !ct.startsWith('application/grpc')) {
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    if (this.state !== 'listening') {
      return trailersOnly(stream, Status.UNAVAILABLE, 'server shutting down', 'UNAVAILABLE');
    }
    if (method === undefined) {
      return trailersOnly(stream, Status.UNIMPLEMENTED, `method ${path} is not implemented`, 'UNIMPLEMENTED');
    }
    const limits: CallLimits = { kind: method.kind, budget: this.budget, bodyTimeoutMs: this.limits.requestBodyTimeoutMs, observer: this.opts.observer };
    const call = new ServerCallImpl(stream, headers, path, this.maxMessageBytes, this.opts.logger, limits);
    this.calls.add(call);
    const done = this.run(method, call).finally(() => this.calls.delete(call));
    if (method.kind === 'unary') {
      this.unaryInFlight.add(done);
      void done.finally(() => this.unaryInFlight.delete(done));
    }
  }

  private async run(def: MethodDef, call: ServerCallImpl): Promise<void> {
    try {
      switch (def.kind) {
        case 'unary': {
          const req = await call.single();
          const res = await def.handler(req, call);
          await call.send(res);
          break;
        }
        case 'serverStream': {
          const req = await call.single();
          await def.handler(req, call);
          break;
        }
        case 'bidi':
          await def.handler(call);
          break;
      }
      call.finish(Status.OK, '', undefined);
    } catch (err) {
      const reason = call.abortReason;
      const effective = reason instanceof HadronError ? reason : err;
      const { status, message, code } = grpcStatusOf(effective);
      if (status === Status.INTERNAL) this.opts.logger.error({ err, method: call.method }, 'internal error in call');
      call.finish(status, message, code);
    }
  }
}

class ServerCallImpl implements BidiCall {
  /**
   * Created on the first read of `signal` only (issue 11): most unary calls (publishes) never
   * ask for one, and an AbortController with its listener per request was measurable garbage.
   * The call's own state (`aborted`, `abortReason`) is what the server acts on.
   */
  private controller: AbortController | undefined;
  private aborted = false;
  /** Why the call was aborted (cancel, deadline, shutdown, framing error); undefined while it runs. */
  abortReason: unknown = undefined;
  readonly incoming = new AsyncQueue<Buffer>();
  readonly peer: string;
  private headersSent = false;
  private finished = false;
  private requestEnded = false;
  private readonly decoder: MessageDecoder;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private bodyTimer: NodeJS.Timeout | undefined;
  /** Bytes of the request budget this call holds. */
  private reserved = 0;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    readonly metadata: http2.IncomingHttpHeaders,
    readonly method: string,
    maxMessageBytes: number,
    private readonly logger: Logger,
    private readonly limits: CallLimits,
  ) {
    this.peer = `${stream.session?.socket?.remoteAddress ?? '?'}:${stream.session?.socket?.remotePort ?? '?'}`;
    this.decoder = new MessageDecoder(maxMessageBytes, (len) => this.reserve(len));
    stream.on('data', (chunk: Buffer) => {
      // After a framing error or a refused reservation the rest of the body is not a message.
      if (this.aborted) return;
      try {
        for (const m of this.decoder.push(chunk)) {
          // Bidi handlers consume each message at once; unary ones hold it until they finish.
          if (limits.kind === 'bidi') {
            this.unreserve(m.length);
            this.stopBodyTimer();
          }
          this.incoming.push(m);
        }
      } catch (err) {
        this.abortWith(err);
      }
    });
    stream.on('end', () => {
      this.requestEnded = true;
      this.stopBodyTimer();
      if (this.decoder.idle) this.incoming.end();
      else this.incoming.fail(new HadronError('MALFORMED_MESSAGE', 'request stream ended inside a message'));
    });
    stream.on('close', () => {
      if (!this.finished) this.abortWith(new HadronError('CANCELLED', 'the client cancelled the call'));
      this.incoming.end();
      if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
      this.stopBodyTimer();
      this.unreserve(this.reserved);
    });
    stream.on('error', (err) => this.logger.debug({ err, method }, 'http2 stream error'));
    const timeout = parseGrpcTimeout(metadata['grpc-timeout']);
    if (timeout !== undefined) {
      this.deadlineTimer = setTimeout(
        () => this.abortWith(new HadronError('DEADLINE_EXCEEDED', `deadline of ${timeout} ms exceeded`)),
        timeout,
      );
    }
    // Slowloris: headers and then a body that never completes must not hold the call forever.
    const bodyMs = limits.bodyTimeoutMs;
    if (bodyMs > 0) {
      this.bodyTimer = setTimeout(() => {
        limits.observer?.limitHit('request_body_timeout');
        this.abortWith(new HadronError('DEADLINE_EXCEEDED', `the request was not received within ${bodyMs} ms (HADRON_REQUEST_BODY_TIMEOUT_MS)`));
      }, bodyMs);
    }
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  /**
   * Aborts the call once: ends the handler's read loop with `reason` and fires the signal, if a
   * handler asked for one.
   */
  abortWith(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.incoming.fail(reason);
    this.controller?.abort(reason);
  }

  private reserve(len: number): void {
    try {
      this.limits.budget.reserve(len);
    } catch (err) {
      this.limits.observer?.limitHit('inflight_request_bytes');
      throw err;
    }
    this.reserved += len;
  }

  private unreserve(len: number): void {
    this.limits.budget.release(len);
    this.reserved -= len;
  }

  private stopBodyTimer(): void {
    if (this.bodyTimer) clearTimeout(this.bodyTimer);
    this.bodyTimer = undefined;
  }

  fail(err: unknown): void {
    this.abortWith(err);
  }

  /** Reads exactly one request message (unary and server-streaming calls). */
  async single(): Promise<Buffer> {
    const first = await this.incoming.next();
    if (first.done) throw new HadronError('INVALID_ARGUMENT', 'no request message received');
    const second = await this.incoming.next();
    if (!second.done) throw new HadronError('INVALID_ARGUMENT', 'more than one request message for a unary call');
    return first.value;
  }

  sendHeaders(): void {
    const stream = this.stream;
    if (this.headersSent || this.finished || stream.destroyed || stream.closed) return;
    this.headersSent = true;
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  }

  send(msg: Uint8Array): Promise<void> {
    const stream = this.stream;
    if (this.finished || stream.destroyed || stream.closed) {
      return Promise.reject(this.abortReason ?? new HadronError('CANCELLED', 'call already ended'));
    }
    this.sendHeaders();
    let ok: boolean;
    if (msg.length >= LARGE_MESSAGE) {
      stream.write(frameHeader(msg.length));
      ok = stream.write(msg);
    } else {
      ok = stream.write(frame(msg));
    }
    if (ok) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = (): void => {
        cleanup();
        resolve();
      };
      const onClose = (): void => {
        cleanup();
        reject(this.abortReason ?? new HadronError('CANCELLED', 'call ended while sending'));
      };
      const cleanup = (): void => {
        stream.off('drain', onDrain);
        stream.off('close', onClose);
      };
      stream.on('drain', onDrain);
      stream.on('close', onClose);
    });
  }

  finish(status: StatusCode, message: string, code: string | undefined): void {
    if (this.finished) return;
    this.finished = true;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    const trailers: http2.OutgoingHttpHeaders = { 'grpc-status': String(status) };
    if (message) trailers['grpc-message'] = encodeGrpcMessage(message);
    if (code && status !== Status.OK) trailers['hadron-error-code'] = code;
    if (!this.headersSent) {
      trailersOnly(stream, status, message, code);
      this.stopReading();
      return;
    }
    stream.once('wantTrailers', () => {
      try {
        stream.sendTrailers(trailers);
      } catch {
        // stream already closed by the peer
      }
      this.stopReading();
    });
    stream.end();
    // A failed call whose client does not take the rest of its response keeps that response
    // buffered for as long as the connection lives; reset it after a grace period instead.
    if (status !== Status.OK) {
      const reset = setTimeout(() => {
        if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
      }, FAILED_CALL_FLUSH_MS);
      reset.unref();
      stream.once('close', () => clearTimeout(reset));
    }
  }

  /**
   * The response is complete but the client may still be sending (e.g. an oversized message we
   * refused): RST_STREAM(NO_ERROR) tells it to stop, as PROTOCOL-HTTP2.md allows, so neither
   * side waits on flow control forever.
   */
  private stopReading(): void {
    if (this.requestEnded) return;
    setImmediate(() => {
      if (!this.stream.destroyed && !this.stream.closed) this.stream.close(http2.constants.NGHTTP2_NO_ERROR);
    });
  }
}

function trailersOnly(stream: http2.ServerHttp2Stream, status: number, message: string, code?: string): void {
  if (stream.destroyed || stream.closed) return;
  const headers: http2.OutgoingHttpHeaders = {
    ':status': 200,
    'content-type': 'application/grpc',
    'grpc-status': String(status),
  };
  if (message) headers['grpc-message'] = encodeGrpcMessage(message);
  if (code && status !== Status.OK) headers['hadron-error-code'] = code;
  try {
    stream.respond(headers, { endStream: true });
  } catch {
    stream.close(http2.constants.NGHTTP2_CANCEL);
  }
}

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** Parses a `grpc-timeout` header (e.g. `100m`, `5S`) into milliseconds. */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return undefined;
  return Math.max(1, Math.ceil(Number(m[1]) * TIMEOUT_UNITS[m[2]!]!));
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
