/**
 * The client over https:// against real TLS partition processes: it verifies them with the
 * given CA, follows Metadata to every partition over TLS, presents a client certificate when
 * asked, and refuses to be sent to cleartext addresses or to ignore TLS options.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCertificate, createCertificateAuthority } from '@hadron/core';
import { startStream, until } from '@hadron/testing';
import { createClient } from './client.js';

function tlsFiles(extra: Record<string, string> = {}): { dir: string; ca: string; env: Record<string, string>; caFile: string } {
  const ca = createCertificateAuthority('client-test-ca');
  const s = createCertificate({ commonName: 'events', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], issuer: ca });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-client-tls-'));
  for (const [name, text] of Object.entries({ 'tls.crt': s.cert, 'tls.key': s.key, 'ca.crt': ca.cert, ...extra })) fs.writeFileSync(path.join(dir, name), text);
  return { dir, ca: ca.cert, caFile: path.join(dir, 'ca.crt'), env: { HADRON_TLS_CERT_FILE: path.join(dir, 'tls.crt'), HADRON_TLS_KEY_FILE: path.join(dir, 'tls.key') } };
}

test('createClient over https:// with caFile: publish and subscribe across partitions, all over TLS', async () => {
  const t = tlsFiles();
  try {
    await using c = await startStream({ partitions: 2, env: t.env });
    const client = createClient({ url: `https://127.0.0.1:${c.clientBase}`, token: c.tokens.full, caFile: t.caFile });
    try {
      await client.ready();
      assert.deepEqual(client.partitions().map((p) => p.address), [`https://127.0.0.1:${c.clientBase}`, `https://127.0.0.1:${c.clientBase + 1}`]);
      const got = new Set<string>();
      const sub = client.subscribe({ group: 'tls', startPoint: 'beginning' }, async (d) => {
        for (const e of d.events) got.add(e.id);
      });
      const parts = new Set<number>();
      for (let i = 0; i < 20; i++) parts.add((await client.publish({ id: `e${i}`, source: 'tls-test', type: 't', subject: `k${i}`, data: { i } })).partition);
      assert.deepEqual([...parts].sort(), [0, 1]);
      await until(() => got.size === 20, 20_000, 'all 20 events delivered over TLS');
      await sub.close();
    } finally {
      await client.close();
    }
  } finally {
    fs.rmSync(t.dir, { recursive: true, force: true });
  }
});

test('an https:// client refuses partitions announced as http:// (no downgrade through Metadata)', async () => {
  const t = tlsFiles();
  try {
    await using c = await startStream({ env: { ...t.env, HADRON_ADVERTISE_TEMPLATE: 'http://127.0.0.1:{port}' } });
    const client = createClient({ url: `https://127.0.0.1:${c.clientBase}`, token: c.tokens.full, caFile: t.caFile, readyTimeoutMs: 2000 });
    try {
      await assert.rejects(client.publish({ id: 'x', source: 's', type: 't', data: 1 }), (err: unknown) => (err as { code?: string }).code === 'NO_PARTITIONS');
      assert.deepEqual(client.partitions(), []);
    } finally {
      await client.close();
    }
  } finally {
    fs.rmSync(t.dir, { recursive: true, force: true });
  }
});

test('TLS client options are checked: files must be readable, cert needs key, and never ignored on http://', () => {
  assert.throws(() => createClient({ url: 'http://127.0.0.1:1', ca: 'x' }), /TLS options \(ca, cert, key\) were given but the URL is not https:\/\//);
  assert.throws(() => createClient({ url: 'https://127.0.0.1:1', caFile: '/nonexistent/ca.pem' }), /cannot read `caFile` "\/nonexistent\/ca.pem"/);
  assert.throws(() => createClient({ url: 'https://127.0.0.1:1', cert: 'x' }), /needs both `cert` and `key`/);
  assert.throws(() => createClient({ url: 'ftp://127.0.0.1:1' }), /unsupported scheme ftp/);
});
