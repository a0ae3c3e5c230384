/**
 * A gRPC server on `node:http2` (h2c, or h2 over TLS when `tls` is given), implementing the parts of PROTOCOL-HTTP2.md Hadron uses:
 * unary, server-streaming and bidi calls with length-prefixed protobuf messages, `grpc-timeout`,
 * trailers-only error responses, and the `grpc-status` / `grpc-message` trailers.
 *
 * Why not @grpc/grpc-js: it cannot raise HTTP/2 flow-control windows, and its per-message cost
 * caps a stream at ~35k messages/s here (PERF-NOTES). Standard gRPC clients (grpc-js, tonic,
 * grpc-go) interoperate with this server; a test keeps that true.
 *
 * Call lifecycle: headers are sent lazily with the first response message. A handler that
 * throws ends the call with the status of the error (`grpcStatusOf`); if nothing was sent yet
 * this is a trailers-only response. Every handler gets an AbortSignal that fires when the client
 * cancels, the deadline passes, or the server shuts down.
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

export interface CallContext {
  /** Full method path, e.g. `/stream.StreamController/StreamPublish`. */
  readonly method: string;
  readonly metadata: http2.IncomingHttpHeaders;
  /** Fires when the client cancels or disconnects, the deadline passes, or the server stops. */
  readonly signal: AbortSignal;
  readonly peer: string;
}

export interface ServerStreamCall extends CallContext {
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
  /** Serve gRPC over TLS (ALPN h2 only, TLS ≥ 1.2); plaintext h2c when absent. */
  tls?: GrpcServerTls;
}

/** node:tls options for a GrpcServerTls (also used to validate material before a reload). */
export function serverTlsOptions(tls: GrpcServerTls): import('node:tls').SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
  const mtls = tls.clientCa !== undefined;
  return { cert: tls.cert, key: tls.key, ...(mtls ? { ca: tls.clientCa } : {}), requestCert: mtls, rejectUnauthorized: mtls, minVersion: 'TLSv1.2' };
}

type ServerState = 'new' | 'listening' | 'closing' | 'closed';

const LARGE_MESSAGE = 64 * 1024;

export class GrpcServer {
  private readonly server: http2.Http2Server | http2.Http2SecureServer;
  private readonly maxMessageBytes: number;
  private readonly calls = new Set<AbortController>();
  private readonly unaryInFlight = new Set<Promise<unknown>>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private state: ServerState = 'new';

  constructor(private readonly opts: GrpcServerOptions) {
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const h2opts: http2.ServerOptions = {
      settings: { ...http2Settings, maxHeaderListSize: 64 * 1024 },
      maxSessionMemory: 1024,
      // Ping-less idle connections are normal for subscribers; do not time them out.
    };
    // TLS: ALPN offers only h2 and allowHTTP1 stays false, so nothing but gRPC-over-h2 is spoken.
    this.server = opts.tls ? http2.createSecureServer({ ...h2opts, ...serverTlsOptions(opts.tls), ALPNProtocols: ['h2'] }) : http2.createServer(h2opts);
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
    // Small responses (acks) must not wait for Nagle's algorithm and delayed ACKs.
    this.server.on('connection', (socket: import('node:net').Socket) => socket.setNoDelay(true));
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
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
    for (const c of this.calls) c.abort(new HadronError('UNAVAILABLE', 'server shutting down'));
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
    const method = this.opts.methods[path];
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
    const call = new ServerCallImpl(stream, headers, path, this.maxMessageBytes, this.opts.logger);
    this.calls.add(call.abort);
    const done = this.run(method, call).finally(() => this.calls.delete(call.abort));
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
      const reason = call.signal.aborted ? call.signal.reason : undefined;
      const effective = reason instanceof HadronError ? reason : err;
      const { status, message, code } = grpcStatusOf(effective);
      if (status === Status.INTERNAL) this.opts.logger.error({ err, method: call.method }, 'internal error in call');
      call.finish(status, message, code);
    }
  }
}

class ServerCallImpl implements BidiCall {
  readonly abort = new AbortController();
  readonly incoming = new AsyncQueue<Buffer>();
  readonly peer: string;
  private headersSent = false;
  private finished = false;
  private requestEnded = false;
  private readonly decoder: MessageDecoder;
  private deadlineTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    readonly metadata: http2.IncomingHttpHeaders,
    readonly method: string,
    maxMessageBytes: number,
    private readonly logger: Logger,
  ) {
    this.peer = `${stream.session?.socket?.remoteAddress ?? '?'}:${stream.session?.socket?.remotePort ?? '?'}`;
    this.decoder = new MessageDecoder(maxMessageBytes);
    stream.on('data', (chunk: Buffer) => {
      try {
        for (const m of this.decoder.push(chunk)) this.incoming.push(m);
      } catch (err) {
        this.incoming.fail(err);
        this.abort.abort(err);
      }
    });
    stream.on('end', () => {
      this.requestEnded = true;
      if (this.decoder.idle) this.incoming.end();
      else this.incoming.fail(new HadronError('MALFORMED_MESSAGE', 'request stream ended inside a message'));
    });
    stream.on('close', () => {
      if (!this.finished) this.abort.abort(new HadronError('CANCELLED', 'the client cancelled the call'));
      this.incoming.end();
      if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    });
    stream.on('error', (err) => this.logger.debug({ err, method }, 'http2 stream error'));
    // Aborting the call (shutdown, deadline) also ends the handler's read loop.
    this.abort.signal.addEventListener('abort', () => this.incoming.fail(this.abort.signal.reason), { once: true });
    const timeout = parseGrpcTimeout(metadata['grpc-timeout']);
    if (timeout !== undefined) {
      this.deadlineTimer = setTimeout(
        () => this.abort.abort(new HadronError('DEADLINE_EXCEEDED', `deadline of ${timeout} ms exceeded`)),
        timeout,
      );
    }
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  fail(err: unknown): void {
    this.abort.abort(err);
  }

  /** Reads exactly one request message (unary and server-streaming calls). */
  async single(): Promise<Buffer> {
    const first = await this.incoming.next();
    if (first.done) throw new HadronError('INVALID_ARGUMENT', 'no request message received');
    const second = await this.incoming.next();
    if (!second.done) throw new HadronError('INVALID_ARGUMENT', 'more than one request message for a unary call');
    return first.value;
  }

  send(msg: Uint8Array): Promise<void> {
    const stream = this.stream;
    if (this.finished || stream.destroyed || stream.closed) {
      return Promise.reject(this.signal.reason ?? new HadronError('CANCELLED', 'call already ended'));
    }
    if (!this.headersSent) {
      this.headersSent = true;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    }
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
        reject(this.signal.reason ?? new HadronError('CANCELLED', 'call ended while sending'));
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
