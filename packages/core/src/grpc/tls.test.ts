/**
 * gRPC over TLS with real certificates made in the test (tls/x509.ts, verified by OpenSSL inside
 * node:tls): verification against the right CA, refusal of a wrong CA, an expired certificate
 * and a wrong host name before any request is sent, `https://` against a cleartext server never
 * sending cleartext, client-certificate verification, and replacing the certificate live.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { GrpcServer, type GrpcServerTls } from './server.js';
import { GrpcChannel, type ChannelTls } from './client.js';
import { HadronError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { createCertificate, createCertificateAuthority } from '../tls/x509.js';

const ca = createCertificateAuthority('Hadron test CA');
const otherCa = createCertificateAuthority('Some other CA');
const serverCert = createCertificate({ commonName: 'partition', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], issuer: ca });
const SECRET = 'bearer this-token-must-never-travel-in-cleartext';

async function withTlsServer(tls: GrpcServerTls | undefined, fn: (port: number, calls: string[], server: GrpcServer) => Promise<void>): Promise<void> {
  const calls: string[] = [];
  const server = new GrpcServer({
    logger: silentLogger,
    ...(tls ? { tls } : {}),
    methods: {
      '/t.S/Echo': {
        kind: 'unary',
        handler: async (req, ctx) => {
          calls.push(String(ctx.metadata.authorization));
          return Buffer.concat([Buffer.from('echo:'), req]);
        },
      },
    },
  });
  const port = await server.listen(0, '127.0.0.1');
  try {
    await fn(port, calls, server);
  } finally {
    await server.close(100);
  }
}

async function echo(url: string, tls?: ChannelTls): Promise<string> {
  const ch = new GrpcChannel(url, { connectTimeoutMs: 5000, ...(tls ? { tls } : {}) });
  try {
    return (await ch.unary('/t.S/Echo', Buffer.from('hi'), { metadata: { authorization: SECRET } })).toString();
  } finally {
    await ch.close();
  }
}

/** TLS refusals are TLS_HANDSHAKE_FAILED (not retriable); a dropped connection UNAVAILABLE. */
const refused = (codes: string[], re: RegExp) => (err: unknown): boolean => {
  assert.ok(err instanceof HadronError, String(err));
  assert.ok(codes.includes(err.code), `${err.code}: ${err.message}`);
  assert.match(err.message, re);
  return true;
};
const tlsFailed = (re: RegExp) => refused(['TLS_HANDSHAKE_FAILED'], re);
const unavailable = (re: RegExp) => refused(['UNAVAILABLE', 'TLS_HANDSHAKE_FAILED'], re);

test('https:// verifies the server against the given CA; the call goes through', async () => {
  await withTlsServer(serverCert, async (port, calls) => {
    assert.equal(await echo(`https://127.0.0.1:${port}`, { ca: ca.cert }), 'echo:hi');
    assert.equal(await echo(`https://localhost:${port}`, { ca: ca.cert }), 'echo:hi');
    assert.deepEqual(calls, [SECRET, SECRET]);
  });
});

test('a server certificate from another CA is refused with a clear error, and nothing is sent', async () => {
  await withTlsServer(serverCert, async (port, calls) => {
    await assert.rejects(echo(`https://127.0.0.1:${port}`, { ca: otherCa.cert }), tlsFailed(/TLS handshake failed: .*(unable to verify|self.signed|unable to get local issuer)/i));
    // Without `ca`, the system store does not know our CA either.
    await assert.rejects(echo(`https://127.0.0.1:${port}`), tlsFailed(/TLS handshake failed/));
    assert.deepEqual(calls, []);
  });
});

test('an expired server certificate is refused with a clear error, and nothing is sent', async () => {
  const expired = createCertificate({
    commonName: 'partition',
    ipAddresses: ['127.0.0.1'],
    issuer: ca,
    notBefore: new Date(Date.now() - 10 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
  });
  await withTlsServer(expired, async (port, calls) => {
    await assert.rejects(echo(`https://127.0.0.1:${port}`, { ca: ca.cert }), tlsFailed(/TLS handshake failed: certificate has expired \(CERT_HAS_EXPIRED\)/));
    assert.deepEqual(calls, []);
  });
});

test('a certificate for another host name is refused', async () => {
  const elsewhere = createCertificate({ commonName: 'elsewhere', dnsNames: ['elsewhere.example'], issuer: ca });
  await withTlsServer(elsewhere, async (port, calls) => {
    await assert.rejects(echo(`https://127.0.0.1:${port}`, { ca: ca.cert }), tlsFailed(/TLS handshake failed: .*(IP: 127\.0\.0\.1 is not in the cert's list|altnames)/i));
    assert.deepEqual(calls, []);
  });
});

test('https:// against a cleartext server fails and never sends anything in cleartext', async () => {
  // A plain TCP listener standing in for an h2c server: records every byte it receives.
  const received: Buffer[] = [];
  const raw = net.createServer((s) => {
    s.on('data', (d: Buffer) => {
      received.push(d);
      // What an h2c server does with a TLS ClientHello: it is not an HTTP/2 preface; hang up.
      s.destroy();
    });
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  const port = (raw.address() as net.AddressInfo).port;
  try {
    await assert.rejects(echo(`https://127.0.0.1:${port}`, { ca: ca.cert }), unavailable(/./));
    const bytes = Buffer.concat(received);
    assert.ok(bytes.length > 0, 'the client connected');
    assert.equal(bytes[0], 0x16, 'the first byte is a TLS handshake record, not an HTTP/2 preface');
    assert.ok(!bytes.includes('PRI * HTTP/2.0'), 'no HTTP/2 preface in cleartext');
    assert.ok(!bytes.includes('never-travel'), 'the token was not sent');
  } finally {
    await new Promise<void>((r) => raw.close(() => r()));
  }
  // And against our real h2c server: an error, no call.
  await withTlsServer(undefined, async (p, calls) => {
    await assert.rejects(echo(`https://127.0.0.1:${p}`, { ca: ca.cert }), unavailable(/./));
    assert.deepEqual(calls, []);
  });
});

test('a client that requires TLS refuses http:// and unknown schemes', () => {
  assert.throws(() => new GrpcChannel('http://127.0.0.1:1', { requireTls: true }), /refusing a cleartext connection/);
  assert.throws(() => new GrpcChannel('ftp://127.0.0.1:1'), /unsupported scheme ftp/);
});

test('client-certificate verification: no certificate or one from another CA is refused; ours is accepted', async () => {
  const clientCa = createCertificateAuthority('Hadron client CA');
  const good = createCertificate({ commonName: 'app', issuer: clientCa });
  const bad = createCertificate({ commonName: 'app', issuer: otherCa });
  await withTlsServer({ ...serverCert, clientCa: clientCa.cert }, async (port, calls) => {
    const url = `https://127.0.0.1:${port}`;
    await assert.rejects(echo(url, { ca: ca.cert }), unavailable(/certificate required|handshake failure|socket hang up|closed|reset/i));
    await assert.rejects(echo(url, { ca: ca.cert, cert: bad.cert, key: bad.key }), unavailable(/unknown ca|certificate|alert|closed|reset/i));
    assert.deepEqual(calls, []);
    assert.equal(await echo(url, { ca: ca.cert, cert: good.cert, key: good.key }), 'echo:hi');
    assert.equal(calls.length, 1);
  });
});

test('setSecureContext replaces the certificate for new connections', async () => {
  const ca2 = createCertificateAuthority('Hadron rotated CA');
  const rotated = createCertificate({ commonName: 'partition', ipAddresses: ['127.0.0.1'], issuer: ca2 });
  await withTlsServer(serverCert, async (port, _calls, server) => {
    const url = `https://127.0.0.1:${port}`;
    assert.equal(await echo(url, { ca: ca.cert }), 'echo:hi');
    server.setSecureContext(rotated);
    assert.equal(await echo(url, { ca: ca2.cert }), 'echo:hi');
    await assert.rejects(echo(url, { ca: ca.cert }), tlsFailed(/TLS handshake failed/));
  });
});

test('over TLS, connections that never finish the TLS or the HTTP/2 handshake are closed, and the connection limit holds', async () => {
  const hits: string[] = [];
  const server = new GrpcServer({
    logger: silentLogger,
    tls: serverCert,
    limits: { handshakeTimeoutMs: 300, maxConnections: 3 },
    observer: { limitHit: (l) => hits.push(l) },
    methods: { '/t.S/Echo': { kind: 'unary', handler: async (req) => req } },
  });
  const port = await server.listen(0, '127.0.0.1');
  const closed = (s: net.Socket | import('node:tls').TLSSocket) => new Promise<void>((r) => s.once('close', () => r()));
  try {
    // Silent TCP: no ClientHello at all (the TLS handshake timeout closes it).
    const silent = net.connect(port, '127.0.0.1');
    silent.on('error', () => undefined);
    // TLS done, then nothing: no HTTP/2 preface (our handshake timeout closes it).
    const tls = await import('node:tls');
    const quiet = tls.connect({ port, host: '127.0.0.1', ca: ca.cert, ALPNProtocols: ['h2'], servername: 'localhost' });
    quiet.on('error', () => undefined);
    await new Promise<void>((r) => quiet.once('secureConnect', () => r()));
    await Promise.all([closed(silent), closed(quiet)]);
    assert.equal(hits.filter((h) => h === 'handshake_timeout').length, 2, `limit hits: ${hits.join(',')}`);
    // The limit counts TCP connections, also while in their TLS handshake.
    const held = Array.from({ length: 3 }, () => net.connect(port, '127.0.0.1').on('error', () => undefined));
    await Promise.all(held.map((s) => new Promise<void>((r) => s.once('connect', () => r()))));
    await until(() => server.stats().connections === 3, 'three connections counted');
    const refusedSocket = net.connect(port, '127.0.0.1').on('error', () => undefined);
    await closed(refusedSocket);
    assert.ok(hits.includes('connections'));
    for (const s of held) s.destroy();
    // Once they are gone, a real TLS call goes through.
    await until(() => server.stats().connections === 0, 'connections released');
    assert.equal(await echo(`https://127.0.0.1:${port}`, { ca: ca.cert }), 'hi');
  } finally {
    await server.close(100);
  }
});

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for: ${what}`);
}
