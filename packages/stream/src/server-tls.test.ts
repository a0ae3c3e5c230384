/**
 * Integration (issue 14 item 12): a partition server with TLS on its client port, real
 * certificates made in the test, files reloaded on change the way a Kubernetes Secret volume
 * changes (a `..data` symlink swapped to a new directory), client-certificate verification, and
 * Metadata announcing https://.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HadronError, createCertificate, createCertificateAuthority, type CertificateAndKey } from '@hadron/core';
import { RawClient, startStream, testEvent, until } from '@hadron/testing';
import { parseStreamConfig } from './config.js';
import { readTlsFiles } from './tls-files.js';

/** A Secret-volume-like directory: tls.crt/tls.key/ca.crt are symlinks through `..data`. */
class SecretDir {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-tls-'));
  private n = 0;
  constructor(files: Record<string, string>) {
    this.write(files);
    for (const name of Object.keys(files)) fs.symlinkSync(path.join('..data', name), path.join(this.dir, name));
  }
  /** Atomically replaces all files, as the kubelet's atomic writer does. */
  write(files: Record<string, string>): void {
    const ts = path.join(this.dir, `..${Date.now()}_${this.n++}`);
    fs.mkdirSync(ts);
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(ts, name), text);
    const tmp = path.join(this.dir, '..data_tmp');
    fs.symlinkSync(path.basename(ts), tmp);
    fs.renameSync(tmp, path.join(this.dir, '..data'));
  }
  file(name: string): string {
    return path.join(this.dir, name);
  }
  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

const serverCertOf = (ca: CertificateAndKey) => createCertificate({ commonName: 'events-0', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], issuer: ca });

test('TLS partition server: clients verify it, Metadata announces https://, a rotated certificate is served without a restart, a half-rotated pair is refused', async () => {
  const ca1 = createCertificateAuthority('ca-1');
  const ca2 = createCertificateAuthority('ca-2');
  const s1 = serverCertOf(ca1);
  const secret = new SecretDir({ 'tls.crt': s1.cert, 'tls.key': s1.key });
  try {
    await using c = await startStream({
      partitions: 2,
      env: { HADRON_TLS_CERT_FILE: secret.file('tls.crt'), HADRON_TLS_KEY_FILE: secret.file('tls.key'), HADRON_TLS_RELOAD_INTERVAL_MS: '100' },
    });
    const url = `https://127.0.0.1:${c.clientBase}`;
    const raw = new RawClient(url, c.tokens.full, { tls: { ca: ca1.cert } });
    try {
      const list = await raw.metadataStream().next();
      assert.deepEqual(list.map((p) => p.internal), [`https://127.0.0.1:${c.clientBase}`, `https://127.0.0.1:${c.clientBase + 1}`]);
    } finally {
      await raw.close();
    }

    // Rotate to a certificate from another CA; await the new one being served (new connections).
    const s2 = serverCertOf(ca2);
    secret.write({ 'tls.crt': s2.cert, 'tls.key': s2.key });
    for (const p of [0, 1]) {
      await until(
        async () => {
          const probe = new RawClient(c.url(p).replace('http:', 'https:'), c.tokens.full, { tls: { ca: ca2.cert } });
          try {
            await probe.publish([testEvent(p)]);
            return true;
          } catch {
            return false;
          } finally {
            await probe.close();
          }
        },
        20_000,
        `partition ${p} serving the rotated certificate`,
      );
      const old = new RawClient(c.url(p).replace('http:', 'https:'), c.tokens.full, { tls: { ca: ca1.cert } });
      await assert.rejects(old.publish([testEvent(9)]), /TLS handshake failed/);
      await old.close();
    }
    const metrics = await (await fetch(`${c.metricsUrl(0)}/metrics`)).text();
    assert.match(metrics, /hadron_tls_certificate_reloads_total\{[^}]*result="applied"[^}]*\} 1/);
    assert.match(metrics, /hadron_tls_certificate_not_after_seconds\{[^}]*\} \d+/);

    // A half-rotated pair (new certificate, old key) is refused; the current one keeps serving.
    const s3 = serverCertOf(ca1);
    secret.write({ 'tls.crt': s3.cert, 'tls.key': s2.key });
    await until(async () => /result="invalid"/.test(await (await fetch(`${c.metricsUrl(0)}/metrics`)).text()), 20_000, 'the invalid pair to be noticed');
    const still = new RawClient(url, c.tokens.full, { tls: { ca: ca2.cert } });
    assert.equal((await still.publish([testEvent(10)])).partition, 0);
    await still.close();
    // Plain h2c is not served on a TLS port.
    const plain = new RawClient(c.url(0), c.tokens.full);
    await assert.rejects(plain.publish([testEvent(11)]), (err: unknown) => err instanceof HadronError && (err.code === 'UNAVAILABLE' || err.code === 'TLS_HANDSHAKE_FAILED'));
    await plain.close();
  } finally {
    secret.remove();
  }
});

test('client-certificate verification on the partition server (HADRON_TLS_CLIENT_CA_FILE)', async () => {
  const ca = createCertificateAuthority('server-ca');
  const clientCa = createCertificateAuthority('client-ca');
  const app = createCertificate({ commonName: 'app', issuer: clientCa });
  const s = serverCertOf(ca);
  const secret = new SecretDir({ 'tls.crt': s.cert, 'tls.key': s.key, 'client-ca.crt': clientCa.cert });
  try {
    await using c = await startStream({
      env: { HADRON_TLS_CERT_FILE: secret.file('tls.crt'), HADRON_TLS_KEY_FILE: secret.file('tls.key'), HADRON_TLS_CLIENT_CA_FILE: secret.file('client-ca.crt') },
    });
    const url = `https://127.0.0.1:${c.clientBase}`;
    const anonymous = new RawClient(url, c.tokens.full, { tls: { ca: ca.cert } });
    await assert.rejects(anonymous.publish([testEvent(1)]), (err: unknown) => err instanceof HadronError && (err.code === 'UNAVAILABLE' || err.code === 'TLS_HANDSHAKE_FAILED'));
    await anonymous.close();
    const wrongCert = createCertificate({ commonName: 'app', issuer: ca });
    const impostor = new RawClient(url, c.tokens.full, { tls: { ca: ca.cert, cert: wrongCert.cert, key: wrongCert.key } });
    await assert.rejects(impostor.publish([testEvent(1)]), (err: unknown) => err instanceof HadronError && (err.code === 'UNAVAILABLE' || err.code === 'TLS_HANDSHAKE_FAILED'));
    await impostor.close();
    const authenticated = new RawClient(url, c.tokens.full, { tls: { ca: ca.cert, cert: app.cert, key: app.key } });
    assert.equal((await authenticated.publish([testEvent(1)])).offset, 1);
    await authenticated.close();
  } finally {
    secret.remove();
  }
});

test('TLS configuration errors name the variable and the problem', async () => {
  const base = { CLIENT_PORT: '0', SERVER_PORT: '0', METRICS_PORT: '0', NAMESPACE: 'default', STREAM: 'events', STATEFULSET: 'events', POD_NAME: 'events-0' };
  assert.throws(() => parseStreamConfig({ ...base, HADRON_TLS_CERT_FILE: '/x.crt' }), /HADRON_TLS_KEY_FILE is required when HADRON_TLS_CERT_FILE is set/);
  assert.throws(() => parseStreamConfig({ ...base, HADRON_TLS_CLIENT_CA_FILE: '/ca.crt' }), /HADRON_TLS_CLIENT_CA_FILE needs HADRON_TLS_CERT_FILE and HADRON_TLS_KEY_FILE/);
  await assert.rejects(readTlsFiles({ certFile: '/nonexistent/tls.crt', keyFile: '/nonexistent/tls.key', clientCaFile: undefined }), /HADRON_TLS_CERT_FILE "\/nonexistent\/tls.crt" cannot be read/);
  const a = createCertificateAuthority('a');
  const one = serverCertOf(a);
  const two = serverCertOf(a);
  const dir = new SecretDir({ 'tls.crt': one.cert, 'tls.key': two.key });
  try {
    await assert.rejects(readTlsFiles({ certFile: dir.file('tls.crt'), keyFile: dir.file('tls.key'), clientCaFile: undefined }), /are not a usable pair: .*key values mismatch/);
  } finally {
    dir.remove();
  }
});
