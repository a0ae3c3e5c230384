/**
 * A gRPC client channel on `node:http2`: one long-lived HTTP/2 connection to one address, with
 * raised flow-control windows, multiplexing unary, server-streaming and bidi calls.
 *
 * State machine of the underlying connection:
 *   idle --call--> connecting --server SETTINGS--> ready --error/goaway/close/PING unanswered--> idle (next call reconnects)
 *   connecting --no SETTINGS within connectTimeoutMs--> idle
 *   any --close()--> closed (calls fail with UNAVAILABLE "channel closed")
 * Call errors surface as `GrpcStatusError` carrying the server's status and Hadron error code;
 * a connection that fails or drops under a call surfaces as UNAVAILABLE (retriable), one that TLS
 * refuses (certificate not verified) as TLS_HANDSHAKE_FAILED (not retriable).
 *
 * Transport by URL scheme: `http://` is h2c (cleartext); `https://` is HTTP/2 over TLS with the
 * server's certificate verified (system CAs, or `tls.ca`) and its host name checked — there is
 * no option to skip verification and never a cleartext fallback. `requireTls` refuses `http://`
 * (a client bootstrapped over https must not be sent to cleartext addresses by Metadata).
 */
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { EventEmitter } from 'node:events';
import { GrpcStatusError, HadronError, Status } from '../errors.js';
import { AsyncQueue } from './async-queue.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  HTTP2_SESSION_WINDOW_BYTES,
  MessageDecoder,
  decodeGrpcMessage,
  frame,
  frameHeader,
  http2Settings,
} from './framing.js';

/** Messages from this size on are written without copying them behind their frame prefix. */
const LARGE_MESSAGE_BYTES = 16 * 1024;

export interface CallOptions {
  metadata?: Record<string, string>;
  signal?: AbortSignal;
  /** Deadline for the whole call, sent as `grpc-timeout` and enforced locally. */
  timeoutMs?: number;
}

export type ChannelState = 'idle' | 'connecting' | 'ready' | 'closed';

/** TLS material for `https://` channels (PEM). */
export interface ChannelTls {
  /** CAs to trust instead of the system store (e.g. a private CA). */
  ca?: string | Buffer;
  /** Client certificate and key, for servers that verify clients (mutual TLS). */
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface ChannelOptions {
  maxMessageBytes?: number;
  /** Give up connecting after this long (default 5 s). */
  connectTimeoutMs?: number;
  /** Used for `https://` URLs. */
  tls?: ChannelTls;
  /** Refuse `http://` URLs (default false). */
  requireTls?: boolean;
  /**
   * Send an HTTP/2 PING this often on a connected session (default 10 s; 0 disables). A peer
   * that vanished without closing the connection (a Kubernetes pod replaced behind a Service
   * address: conntrack keeps sending to the dead pod IP, no FIN or RST ever comes) would
   * otherwise hold every call on it until its deadline, and the next call would reuse it.
   */
  keepaliveMs?: number;
  /** Destroy the session (calls fail UNAVAILABLE, the next call reconnects) when a PING is not answered within this long (default 5 s). */
  keepaliveTimeoutMs?: number;
}

/** Defaults of {@link ChannelOptions.keepaliveMs} and {@link ChannelOptions.keepaliveTimeoutMs}. */
export const DEFAULT_KEEPALIVE_MS = 10_000;
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 5000;

export class GrpcChannel extends EventEmitter<{ state: [ChannelState] }> {
  private session: http2.ClientHttp2Session | undefined;
  private _state: ChannelState = 'idle';
  private readonly maxMessageBytes: number;
  private readonly connectTimeoutMs: number;
  private readonly secure: boolean;
  private readonly keepaliveMs: number;
  private readonly keepaliveTimeoutMs: number;

  constructor(
    readonly url: string,
    private readonly opts: ChannelOptions = {},
  ) {
    super();
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.keepaliveMs = opts.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
    this.keepaliveTimeoutMs = opts.keepaliveTimeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS;
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      throw new HadronError('INVALID_ARGUMENT', `${JSON.stringify(url)} is not a valid URL`);
    }
    if (protocol !== 'http:' && protocol !== 'https:') {
      throw new HadronError('INVALID_ARGUMENT', `${url}: unsupported scheme ${protocol.slice(0, -1)}; use http:// (cleartext h2c) or https:// (TLS)`);
    }
    this.secure = protocol === 'https:';
    if (!this.secure && opts.requireTls) {
      throw new HadronError('INVALID_ARGUMENT', `${url}: refusing a cleartext connection; this client requires TLS (it was given an https:// URL)`);
    }
  }

  get state(): ChannelState {
    return this._state;
  }

  private setState(s: ChannelState): void {
    if (this._state === s) return;
    this._state = s;
    this.emit('state', s);
  }

  /**
   * Resolves when the connection is established (connecting first if idle). Fails with
   * UNAVAILABLE when it is not within `connectTimeoutMs` (the session is then destroyed).
   */
  async connect(signal?: AbortSignal): Promise<void> {
    const session = this.getSession();
    if (this._state === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const onConnect = (): void => {
        cleanup();
        resolve();
      };
      const onFail = (err?: unknown): void => {
        cleanup();
        reject(unavailable(this.url, err ?? this.lastFailure.get(session)));
      };
      const onAbort = (): void => {
        cleanup();
        reject(signal?.reason);
      };
      // The channel gave up on this session (connect timeout, dead PING): its 'close' can come
      // much later (a socket still in SYN-SENT closes only when TCP gives up), so do not wait.
      const onDropped = (): void => {
        if (this.session !== session) onFail();
      };
      const cleanup = (): void => {
        session.off('remoteSettings', onConnect);
        session.off('error', onFail);
        session.off('close', onFail);
        this.off('state', onDropped);
        signal?.removeEventListener('abort', onAbort);
      };
      session.once('remoteSettings', onConnect);
      session.once('error', onFail);
      session.once('close', onFail);
      this.on('state', onDropped);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Why a session was destroyed by this channel (connect timeout, unanswered PING). */
  private readonly lastFailure = new WeakMap<http2.ClientHttp2Session, HadronError>();

  /** The TCP/TLS socket under each session (destroyed directly when the session is killed). */
  private readonly sockets = new WeakMap<http2.ClientHttp2Session, net.Socket>();

  /**
   * Destroys `session` with `err`: its calls fail UNAVAILABLE, the channel goes idle at once (the
   * next call or connect() opens a new session). The socket is destroyed too: http2 would
   * otherwise end() a still-connecting socket gracefully, and its 'close' would wait for TCP's
   * SYN retries (minutes) when the address is a black hole.
   */
  private kill(session: http2.ClientHttp2Session, err: HadronError): void {
    this.lastFailure.set(session, err);
    if (this.session === session) {
      this.session = undefined;
      if (this._state !== 'closed') this.setState('idle');
    }
    session.destroy(err);
    this.sockets.get(session)?.destroy();
  }

  /**
   * Keepalive: PING every `keepaliveMs` while connected; no answer within `keepaliveTimeoutMs`
   * means the peer is gone (or unreachable) even though the socket looks open.
   */
  private startKeepalive(session: http2.ClientHttp2Session): void {
    if (this.keepaliveMs <= 0) return;
    let waiting: NodeJS.Timeout | undefined;
    const tick = setInterval(() => {
      if (waiting || session.destroyed || session.closed) return;
      const sentAt = Date.now();
      const dead = (): void => {
        if (waiting === undefined || session.destroyed) return;
        this.kill(session, new HadronError('UNAVAILABLE', `${this.url}: no answer to an HTTP/2 PING within ${this.keepaliveTimeoutMs} ms; the connection is considered dead`));
      };
      waiting = setTimeout(() => {
        // Timers run before I/O: after a stall of this process's own event loop the answer may be
        // waiting unread. Let one I/O phase pass (setImmediate) before judging the peer.
        if (Date.now() - sentAt > this.keepaliveTimeoutMs + 1000) setImmediate(dead);
        else dead();
      }, this.keepaliveTimeoutMs);
      waiting.unref();
      try {
        session.ping((err) => {
          clearTimeout(waiting);
          waiting = undefined;
          if (err && !session.destroyed) this.kill(session, unavailable(this.url, err));
        });
      } catch {
        // the session is closing; 'close' clears the timers
      }
    }, this.keepaliveMs);
    tick.unref();
    session.once('close', () => {
      clearInterval(tick);
      clearTimeout(waiting);
    });
  }

  private getSession(): http2.ClientHttp2Session {
    if (this._state === 'closed') throw new HadronError('UNAVAILABLE', 'channel closed');
    const existing = this.session;
    if (existing && !existing.closed && !existing.destroyed) return existing;
    const target = new URL(this.url);
    const host = target.hostname.replace(/^\[|\]$/g, '');
    let socket: net.Socket | undefined;
    const session = http2.connect(this.url, {
      settings: http2Settings,
      maxSessionMemory: 1024,
      // Small requests (acks, single events) must not wait for Nagle's algorithm.
      createConnection: () => (socket = this.secure ? this.connectTls(host, Number(target.port || 443)) : net.connect({ host, port: Number(target.port || 80), noDelay: true })),
    });
    if (socket) this.sockets.set(session, socket);
    this.session = session;
    this.setState('connecting');
    // The connect timeout applies to every session, also one opened by a call: a SYN to an
    // address nobody answers (a deleted pod's IP) would otherwise hang for minutes.
    const connectTimer = setTimeout(() => {
      this.kill(session, new HadronError('UNAVAILABLE', `could not connect to ${this.url} within ${this.connectTimeoutMs} ms`));
    }, this.connectTimeoutMs);
    connectTimer.unref();
    session.once('close', () => clearTimeout(connectTimer));
    session.once('connect', () => {
      try {
        session.setLocalWindowSize(HTTP2_SESSION_WINDOW_BYTES);
      } catch {
        // not fatal: per-stream windows are already raised
      }
    });
    // Ready once the server's SETTINGS arrived, not when TCP connected: a socket the kernel
    // accepted for a process that never answers (frozen, overloaded) is not a connection.
    session.once('remoteSettings', () => {
      clearTimeout(connectTimer);
      this.startKeepalive(session);
      if (this.session === session) this.setState('ready');
    });
    session.on('error', () => {
      // reported to each call through its stream; the session is replaced on next use
    });
    const gone = (): void => {
      if (this.session === session) {
        this.session = undefined;
        if (this._state !== 'closed') this.setState('idle');
      }
    };
    session.once('close', gone);
    session.once('goaway', gone);
    return session;
  }

  /** TLS with verification (rejectUnauthorized is not configurable) and ALPN h2. */
  private connectTls(host: string, port: number): tls.TLSSocket {
    const t = this.opts.tls ?? {};
    const socket = tls.connect({
      host,
      port,
      // SNI only for names (RFC 6066 §3); the certificate is checked against IPs too.
      ...(net.isIP(host) === 0 ? { servername: host } : {}),
      ALPNProtocols: ['h2'],
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ...(t.ca !== undefined ? { ca: t.ca } : {}),
      ...(t.cert !== undefined ? { cert: t.cert } : {}),
      ...(t.key !== undefined ? { key: t.key } : {}),
    });
    socket.setNoDelay(true);
    socket.once('secureConnect', () => {
      // A server that does not speak h2 over TLS (ALPN) is not a gRPC server.
      if (socket.alpnProtocol !== 'h2') socket.destroy(new HadronError('UNAVAILABLE', `TLS server did not negotiate HTTP/2 (ALPN: ${String(socket.alpnProtocol)})`));
    });
    return socket;
  }

  private start(method: string, opts: CallOptions): ClientCall {
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': method,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...opts.metadata,
    };
    if (opts.timeoutMs !== undefined) headers['grpc-timeout'] = `${Math.max(1, Math.ceil(opts.timeoutMs))}m`;
    const stream = this.getSession().request(headers, { endStream: false });
    return new ClientCall(stream, this.url, this.maxMessageBytes, opts);
  }

  /** A unary call: one request, one response. */
  async unary(method: string, req: Uint8Array, opts: CallOptions = {}): Promise<Buffer> {
    const call = this.start(method, opts);
    call.write(req);
    call.end();
    let res: Buffer | undefined;
    for await (const m of call.incoming) {
      if (res !== undefined) throw new HadronError('MALFORMED_MESSAGE', `${method}: more than one response message`);
      res = m;
    }
    if (res === undefined) throw new HadronError('MALFORMED_MESSAGE', `${method}: no response message`);
    return res;
  }

  /** A server-streaming call; iterate `incoming`, `cancel()` to stop. */
  serverStream(method: string, req: Uint8Array, opts: CallOptions = {}): ClientCall {
    const call = this.start(method, opts);
    call.write(req);
    call.end();
    return call;
  }

  /** A bidi call: `write()` requests, iterate `incoming`, `end()` to half-close. */
  bidi(method: string, opts: CallOptions = {}): ClientCall {
    return this.start(method, opts);
  }

  /** Closes the connection; in-flight calls fail with UNAVAILABLE. Idempotent. */
  close(): Promise<void> {
    if (this._state === 'closed') return Promise.resolve();
    this.setState('closed');
    const s = this.session;
    this.session = undefined;
    if (!s || s.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      s.once('close', () => resolve());
      s.close();
      setTimeout(() => s.destroy(), 1000).unref();
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** One client-side call. Errors (status ≠ OK) are thrown from `incoming`. */
export class ClientCall {
  readonly incoming = new AsyncQueue<Buffer>();
  private readonly decoder: MessageDecoder;
  private status: number | undefined;
  private statusMessage = '';
  private hadronCode: string | undefined;
  private settled = false;

  constructor(
    private readonly stream: http2.ClientHttp2Stream,
    private readonly url: string,
    maxMessageBytes: number,
    opts: CallOptions,
  ) {
    this.decoder = new MessageDecoder(maxMessageBytes);
    const onAbort = (): void => this.cancel(opts.signal?.reason);
    if (opts.signal) {
      if (opts.signal.aborted) queueMicrotask(onAbort);
      else opts.signal.addEventListener('abort', onAbort, { once: true });
    }
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(
        () => this.cancel(new HadronError('DEADLINE_EXCEEDED', `deadline of ${opts.timeoutMs} ms exceeded`)),
        opts.timeoutMs + 50,
      );
    }
    stream.on('response', (headers) => this.readStatus(headers));
    stream.on('trailers', (trailers) => this.readStatus(trailers));
    stream.on('data', (chunk: Buffer) => {
      try {
        for (const m of this.decoder.push(chunk)) this.incoming.push(m);
      } catch (err) {
        this.settle(err);
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
    });
    stream.on('error', (err) => this.settle(unavailable(url, err)));
    stream.on('close', () => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (this.status === undefined) {
        this.settle(unavailable(url, undefined, stream.rstCode));
      } else if (this.status === Status.OK) {
        this.settle(undefined);
      } else {
        this.settle(new GrpcStatusError(this.status, this.statusMessage, this.hadronCode));
      }
    });
  }

  private readStatus(headers: http2.IncomingHttpHeaders): void {
    const s = headers['grpc-status'];
    if (typeof s === 'string') {
      this.status = Number(s);
      const m = headers['grpc-message'];
      this.statusMessage = typeof m === 'string' ? decodeGrpcMessage(m) : '';
      const c = headers['hadron-error-code'];
      if (typeof c === 'string') this.hadronCode = c;
    } else if (headers[':status'] !== undefined && Number(headers[':status']) !== 200) {
      this.status = Status.UNKNOWN;
      this.statusMessage = `HTTP status ${headers[':status']} from ${this.url}`;
    }
  }

  private settle(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    if (err === undefined) this.incoming.end();
    else this.incoming.fail(err);
  }

  /**
   * Sends one message; returns false when the stream is congested (await `drained()`). A large
   * `msg` is queued by reference: do not modify it after the call.
   */
  write(msg: Uint8Array): boolean {
    if (this.stream.destroyed || this.stream.closed) return false;
    if (msg.length < LARGE_MESSAGE_BYTES) return this.stream.write(frame(msg));
    // A large message (a publish batch) is written after its 5-byte prefix instead of being
    // copied behind it: that copy was 11–22% of a publishing process's CPU (issue 11).
    this.stream.write(frameHeader(msg.length));
    return this.stream.write(msg);
  }

  drained(): Promise<void> {
    if (!this.stream.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.stream.off('drain', done);
        this.stream.off('close', done);
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('close', done);
    });
  }

  /** Half-closes the request side. */
  end(): void {
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
  }

  /** Cancels the call (RST_STREAM CANCEL); `incoming` fails with `reason` or CANCELLED. */
  cancel(reason?: unknown): void {
    this.settle(reason ?? new HadronError('CANCELLED', 'call cancelled'));
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  get closed(): boolean {
    return this.stream.closed || this.stream.destroyed;
  }
}

function unavailable(url: string, err: unknown, rstCode?: number): HadronError {
  // The channel's own verdicts (connect timeout, unanswered PING) already say what happened.
  for (let e = err, depth = 0; e instanceof Error && depth < 3; e = e.cause, depth++) {
    if (e instanceof HadronError && e.code === 'UNAVAILABLE') return e === err ? e : new HadronError('UNAVAILABLE', e.message, { cause: err });
  }
  // A call started before the connection was up fails with Node's "The pending stream has been
  // canceled (caused by: …)": the cause is the reason (e.g. connect ECONNREFUSED), say only that.
  const cause = err instanceof Error && (err as { code?: unknown }).code === 'ERR_HTTP2_STREAM_CANCEL' && err.cause instanceof Error ? err.cause : err;
  const why = cause instanceof Error ? cause.message : rstCode !== undefined ? `stream reset (code ${rstCode})` : 'connection closed';
  // OpenSSL's texts ("certificate has expired") gain their code and say that TLS refused; a
  // call started before the handshake fails with "pending stream canceled", the TLS error as cause.
  // Not retriable: a certificate that does not verify is a configuration problem, not a blip.
  const tlsErr = tlsCause(err);
  if (tlsErr) return new HadronError('TLS_HANDSHAKE_FAILED', `${url}: TLS handshake failed: ${tlsErr.message} (${tlsErr.code})`, { cause: err });
  return new HadronError('UNAVAILABLE', `${url}: ${why}`, { cause: err });
}

function tlsCause(err: unknown): { message: string; code: string } | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TLS_ERROR.test(code)) return { message: e.message, code };
  }
  return undefined;
}

/** Error codes of certificate verification and TLS protocol failures (node:tls / OpenSSL). */
const TLS_ERROR = /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|HOSTNAME_|ERR_OSSL_)|_CERT|CERTIFICATE/;
