/**
 * Integration: the partition server's outbound connections under mutual TLS with a private CA
 * (outbound-tls.ts, docs/http.md "Outbound TLS"). Every server verifies client certificates
 * (HADRON_TLS_CLIENT_CA_FILE) and no `ca.crt` lies next to the server certificate, so each hop
 * works only if the server trusts HADRON_TLS_CA_FILE and presents HADRON_TLS_CLIENT_CERT_FILE:
 * the HTTP ingress' forwarding hop, dead-letter and reply publishing, and an https:// sink.
 * Certificates are made with the in-house x509 (packages/core/src/tls).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createCertificate, createCertificateAuthority } from '@hadron/core';
import { partitionOf } from '@hadron/proto';
import { RawClient, readAll, startStream, testEvent, tokenManifest, tokenSecret, until } from '@hadron/testing';
import { parseStreamConfig } from './config.js';
import { readOutboundTls } from './outbound-tls.js';

const ca = createCertificateAuthority('hadron-private-ca');
const clientCa = createCertificateAuthority('hadron-client-ca');
const server = createCertificate({ commonName: 'stream', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], issuer: ca });
const podClient = createCertificate({ commonName: 'events-pod', issuer: clientCa });
const app = createCertificate({ commonName: 'app', issuer: clientCa });

function files(): { dir: string; env: Record<string, string> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-outbound-'));
  const put = (name: string, text: string): string => {
    fs.mkdirSync(path.join(dir, path.dirname(name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };
  return {
    dir,
    env: {
      HADRON_TLS_CERT_FILE: put('server/tls.crt', server.cert),
      HADRON_TLS_KEY_FILE: put('server/tls.key', server.key),
      HADRON_TLS_CLIENT_CA_FILE: put('client-ca.crt', clientCa.cert),
      HADRON_TLS_CA_FILE: put('trust/ca.pem', ca.cert),
      HADRON_TLS_CLIENT_CERT_FILE: put('pod/tls.crt', podClient.cert),
      HADRON_TLS_CLIENT_KEY_FILE: put('pod/tls.key', podClient.key),
    },
  };
}

const appTls = { ca: ca.cert, cert: app.cert, key: app.key };

test('mutual TLS: the HTTP ingress forwards a keyed event to its owner presenting the pod certificate', async () => {
  const f = files();
  try {
    await using c = await startStream({ partitions: 2, env: f.env });
    const key = ['a', 'b', 'c', 'd', 'e', 'f'].find((k) => partitionOf({ id: '', source: '', optattrs: { partitionkey: k } }, 2) === 1)!;
    const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = https.request(
        `https://127.0.0.1:${c.httpBase}/`,
        { method: 'POST', ...appTls, headers: { authorization: `bearer ${c.tokens.full}`, 'ce-specversion': '1.0', 'ce-id': 'k1', 'ce-source': '/t', 'ce-type': 't', 'ce-partitionkey': key, 'content-type': 'text/plain' } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end('hello');
    });
    assert.equal(body.status, 200, body.text);
    assert.deepEqual(JSON.parse(body.text), { events: [{ id: 'k1', partition: 1, offset: 1 }] }, 'received by partition 0, stored by partition 1');
  } finally {
    fs.rmSync(f.dir, { recursive: true, force: true });
  }
});

test('mutual TLS: a Trigger POSTs to an https sink that verifies the pod, publishes its reply and dead-letters over https', async () => {
  const f = files();
  const seen: string[] = [];
  const sink = https.createServer({ cert: server.cert, key: server.key, ca: clientCa.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const id = String(req.headers['ce-id']);
      seen.push(`${id}:${(req.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN}`);
      if (id === 'ok') res.writeHead(200, { 'ce-specversion': '1.0', 'ce-id': 'answer', 'ce-source': '/sink', 'ce-type': 'done' }).end();
      else res.writeHead(500).end();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const sinkUrl = `https://127.0.0.1:${(sink.address() as AddressInfo).port}/`;
  const w = tokenSecret('t-w');
  const shared = { 'token-w.yaml': tokenManifest('t-w', { streams: { pub: ['dlq', 'answers'], sub: [] } }), 'secret-w.yaml': w.yaml };
  const trigger = `apiVersion: hadron.rs/v1beta1
kind: Trigger
metadata: {name: t}
spec:
  sourceStream: events
  sink: {uri: '${sinkUrl}'}
  startPoint: {location: beginning}
  retry: {maxAttempts: 2, backoffMs: 10, maxBackoffMs: 20}
  deadLetter: {stream: dlq, token: t-w}
  reply: {stream: answers, token: t-w}
`;
  try {
    await using dlq = await startStream({ stream: 'dlq', manifests: shared, env: f.env });
    await using answers = await startStream({ stream: 'answers', manifests: shared, env: f.env });
    await using c = await startStream({
      stream: 'events',
      manifests: { ...shared, 'trigger.yaml': trigger },
      env: { ...f.env, HADRON_STREAM_URLS: `dlq=https://127.0.0.1:${dlq.clientBase},answers=https://127.0.0.1:${answers.clientBase}` },
    });
    const cl = new RawClient(`https://127.0.0.1:${c.clientBase}`, c.tokens.full, { tls: appTls });
    await cl.publish([testEvent(1, { id: 'ok' }), testEvent(2, { id: 'bad' })]);
    await cl.close();
    const read = async (s: typeof dlq): Promise<string[]> => {
      const r = new RawClient(`https://127.0.0.1:${s.clientBase}`, s.tokens.full, { tls: appTls });
      try {
        return (await readAll(r, 1)).map((e) => e.event.id);
      } finally {
        await r.close();
      }
    };
    assert.deepEqual(await read(answers), ['answer'], 'the reply was published over mutual TLS');
    assert.deepEqual(await read(dlq), ['bad'], 'dead-lettered over mutual TLS');
    await until(() => seen.length >= 3, 10_000, 'three POSTs');
    assert.deepEqual(seen, ['ok:events-pod', 'bad:events-pod', 'bad:events-pod'], 'the sink saw the pod certificate on every POST');
  } finally {
    sink.closeAllConnections();
    await new Promise<void>((r) => sink.close(() => r()));
    fs.rmSync(f.dir, { recursive: true, force: true });
  }
});

test('outbound TLS configuration errors name the variable and the problem', async () => {
  const base = { CLIENT_PORT: '0', SERVER_PORT: '0', METRICS_PORT: '0', NAMESPACE: 'default', STREAM: 'events', STATEFULSET: 'events', POD_NAME: 'events-0' };
  assert.throws(() => parseStreamConfig({ ...base, HADRON_TLS_CLIENT_CERT_FILE: '/x.crt' }), /HADRON_TLS_CLIENT_KEY_FILE is required when HADRON_TLS_CLIENT_CERT_FILE is set/);
  await assert.rejects(readOutboundTls(parseStreamConfig({ ...base, HADRON_TLS_CA_FILE: '/nonexistent/ca.pem' }), undefined), /HADRON_TLS_CA_FILE "\/nonexistent\/ca.pem" cannot be read/);
  const f = files();
  try {
    const mismatched = parseStreamConfig({ ...base, HADRON_TLS_CLIENT_CERT_FILE: f.env.HADRON_TLS_CLIENT_CERT_FILE!, HADRON_TLS_CLIENT_KEY_FILE: f.env.HADRON_TLS_KEY_FILE! });
    await assert.rejects(readOutboundTls(mismatched, undefined), /HADRON_TLS_CLIENT_CERT_FILE and HADRON_TLS_CLIENT_KEY_FILE are not a usable pair/);
  } finally {
    fs.rmSync(f.dir, { recursive: true, force: true });
  }
});

test('a rotated client certificate is presented on new connections without a restart', async () => {
  const f = files();
  const next = createCertificate({ commonName: 'events-pod-2', issuer: clientCa });
  const seen: Array<[string, string]> = [];
  const sink = https.createServer({ cert: server.cert, key: server.key, ca: clientCa.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const id = String(req.headers['ce-id']);
      const cn = String((req.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN);
      seen.push([id, cn]);
      // After the rotation the sink refuses the old identity, so the Trigger retries until it
      // presents the new one (no timing assumption about when the reload lands).
      res.writeHead(id === 'after' && cn !== 'events-pod-2' ? 403 : 204).end();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const trigger = `apiVersion: hadron.rs/v1beta1
kind: Trigger
metadata: {name: t}
spec:
  sourceStream: events
  sink: {uri: 'https://127.0.0.1:${(sink.address() as AddressInfo).port}/'}
  startPoint: {location: beginning}
  retry: {maxAttempts: 1000, backoffMs: 20, maxBackoffMs: 100}
`;
  try {
    await using c = await startStream({ stream: 'events', manifests: { 'trigger.yaml': trigger }, env: { ...f.env, HADRON_TLS_RELOAD_INTERVAL_MS: '100' } });
    const cl = new RawClient(`https://127.0.0.1:${c.clientBase}`, c.tokens.full, { tls: appTls });
    await cl.publish([testEvent(1, { id: 'before' })]);
    await until(() => seen.some(([id]) => id === 'before'), 10_000, 'the first POST');
    assert.deepEqual(seen[0], ['before', 'events-pod']);
    fs.writeFileSync(f.env.HADRON_TLS_CLIENT_KEY_FILE!, next.key);
    fs.writeFileSync(f.env.HADRON_TLS_CLIENT_CERT_FILE!, next.cert);
    await cl.publish([testEvent(2, { id: 'after' })]);
    await cl.close();
    await until(() => seen.some(([id, cn]) => id === 'after' && cn === 'events-pod-2'), 20_000, 'a POST with the rotated certificate');
    assert.ok(seen.every(([id, cn]) => id !== 'before' || cn === 'events-pod'));
  } finally {
    sink.closeAllConnections();
    await new Promise<void>((r) => sink.close(() => r()));
    fs.rmSync(f.dir, { recursive: true, force: true });
  }
});
