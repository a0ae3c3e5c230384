/**
 * Connection- and request-level resource limits of the gRPC server (issue 14 item 5): a
 * connection limit, an HTTP/2 handshake timeout, an idle timeout for connections with no open
 * streams, a request-body timeout, and one server-wide budget of in-flight request bytes.
 *
 *   TCP accept ──(over maxConnections? destroy)──▶ handshake: preface + SETTINGS within
 *   handshakeTimeoutMs (else destroy) ──▶ open ──no streams for idleTimeoutMs──▶ GOAWAY, close
 *
 * A request message reserves its declared length from the budget when its 5-byte header
 * arrives — before its bytes are buffered — so N slow senders of unfinished 64 MiB messages
 * cannot together hold more than the budget. Unary and server-streaming calls keep the
 * reservation until the call ends (the handler holds the message); bidi messages return it when
 * they are handed to the handler. A reservation that does not fit fails the call with
 * SERVER_BUSY (RESOURCE_EXHAUSTED, retriable).
 *
 * The server reports each limit hit through `LimitObserver`, so the stream package can count it
 * in Prometheus without core depending on a metrics library.
 */
import type http2 from 'node:http2';
import net from 'node:net';
import { HadronError } from '../errors.js';

/** The limits a `LimitObserver` is told about; also the `limit` label of the rejection metric. */
export type LimitName =
  | 'connections'
  | 'handshake_timeout'
  | 'idle_timeout'
  | 'request_body_timeout'
  | 'inflight_request_bytes'
  | 'events_per_request';

export interface ServerLimits {
  /** Most open client connections; more are closed at accept (0 = unlimited). */
  maxConnections: number;
  /** A connection must send the HTTP/2 preface and SETTINGS within this (ms). */
  handshakeTimeoutMs: number;
  /** A connection with no open streams for this long is closed with GOAWAY (ms, 0 = never). */
  idleTimeoutMs: number;
  /** Unary/server-streaming: the whole request; bidi: the first message, within this (ms). */
  requestBodyTimeoutMs: number;
  /** Request message bytes buffered across all connections. */
  maxInflightRequestBytes: number;
}

export const DEFAULT_SERVER_LIMITS: Readonly<ServerLimits> = Object.freeze({
  maxConnections: 4096,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  requestBodyTimeoutMs: 30_000,
  maxInflightRequestBytes: 256 * 1024 * 1024,
});

export interface LimitObserver {
  /** A limit refused or closed something. */
  limitHit(limit: LimitName): void;
}

/** A counter of bytes that may not exceed `max`; `reserve` throws SERVER_BUSY when it would. */
export class ByteBudget {
  private used = 0;
  constructor(readonly max: number) {}

  get inUse(): number {
    return this.used;
  }

  /** Reserves `n` bytes or throws SERVER_BUSY; never partially. */
  reserve(n: number): void {
    if (this.used + n > this.max) {
      throw new HadronError(
        'SERVER_BUSY',
        `server is busy: a request of ${n} bytes would exceed the ${this.max} bytes of request data in flight (HADRON_MAX_INFLIGHT_REQUEST_BYTES); retry later`,
        { context: { requested: n, inUse: this.used, max: this.max } },
      );
    }
    this.used += n;
  }

  release(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

/**
 * Applies the connection limits to one HTTP/2 server: call `attach(server)` once, before
 * `listen`. Tracks open sockets (the connection gauge) and streams per session.
 */
export class ConnectionGuard {
  private readonly sockets = new Set<import('node:net').Socket>();

  constructor(
    private readonly limits: ServerLimits,
    private readonly observer: LimitObserver | undefined,
  ) {}

  /** Open client connections (including ones still in their handshake). */
  get connections(): number {
    return this.sockets.size;
  }

  attach(server: http2.Http2Server | http2.Http2SecureServer): void {
    // Node's own connection listener (registered by createServer, so it runs first) creates the
    // session and emits 'session' synchronously; the 'connection' that follows is its socket.
    // The socket is needed because the session owns its handle: neither session.destroy() nor
    // socket.destroy() closes a connection that never sent a preface (Node 20), and
    // `session.socket` is a proxy that refuses both (ERR_HTTP2_NO_SOCKET_MANIPULATION).
    // resetAndDestroy() (TCP RST) does close it.
    // With TLS the session is made on 'secureConnection' instead (after the TLS handshake, which
    // the server's own `handshakeTimeout` bounds), so the session is watched from there.
    const secure = 'setSecureContext' in server;
    let latest: http2.ServerHttp2Session | undefined;
    server.on('session', (session) => {
      latest = session;
    });
    server.on('connection', (socket: import('node:net').Socket) => {
      const session = secure ? undefined : latest;
      if (!secure) latest = undefined;
      if (this.limits.maxConnections > 0 && this.sockets.size >= this.limits.maxConnections) {
        this.observer?.limitHit('connections');
        socket.resetAndDestroy();
        return;
      }
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      if (session) this.watch(session, socket);
    });
    if (secure) {
      // The TLS handshake itself is bounded by the server's `handshakeTimeout` (set to the same limit).
      server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') this.observer?.limitHit('handshake_timeout');
      });
      server.on('secureConnection', (tlsSocket: import('node:tls').TLSSocket) => {
        const session = latest;
        latest = undefined;
        // The TCP socket under the TLS one owns the handle that resetAndDestroy() can close; once
        // TLS wraps it, only the TLS socket reports 'close'.
        const tcp: unknown = (tlsSocket as unknown as { _parent?: unknown })._parent;
        const socket: net.Socket = tcp instanceof net.Socket ? tcp : tlsSocket;
        if (socket !== tlsSocket) tlsSocket.once('close', () => this.sockets.delete(socket));
        if (session) this.watch(session, socket);
      });
    }
  }

  private watch(session: http2.ServerHttp2Session, socket: import('node:net').Socket): void {
    // Handshake: the client's SETTINGS frame follows its preface; until both arrived the
    // connection is only a file descriptor someone is holding open.
    const handshake = setTimeout(() => {
      this.observer?.limitHit('handshake_timeout');
      reset(socket);
      session.destroy();
    }, this.limits.handshakeTimeoutMs);
    handshake.unref();
    let open = 0;
    let idle: NodeJS.Timeout | undefined;
    const armIdle = (): void => {
      if (this.limits.idleTimeoutMs <= 0 || idle) return;
      idle = setTimeout(() => {
        this.observer?.limitHit('idle_timeout');
        // GOAWAY: the client reconnects on its next call; nothing in flight is lost.
        session.close();
      }, this.limits.idleTimeoutMs);
      idle.unref();
    };
    const disarmIdle = (): void => {
      if (idle) clearTimeout(idle);
      idle = undefined;
    };
    session.once('remoteSettings', () => {
      clearTimeout(handshake);
      if (open === 0) armIdle();
    });
    session.on('stream', (stream: http2.ServerHttp2Stream) => {
      open++;
      disarmIdle();
      stream.once('close', () => {
        if (--open === 0 && !session.closed && !session.destroyed) armIdle();
      });
    });
    session.once('close', () => {
      clearTimeout(handshake);
      disarmIdle();
    });
  }
}

/** TCP RST where the socket owns a TCP handle; a TLS socket (TLSWrap handle) is destroyed. */
function reset(socket: import('node:net').Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
