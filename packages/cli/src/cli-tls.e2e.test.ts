/**
 * `hadron dev --tls` and the CLI over TLS, real processes all the way: dev makes a local CA and
 * server certificate (no openssl), partitions serve https://, `stream pub`/`stream sub` verify
 * them with `--ca` (or HADRON_CA_FILE), and without the CA the CLI fails with a clear TLS error
 * instead of falling back to cleartext.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeDevPorts, until } from '@hadron/testing';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'hadron.js');

const MANIFEST = `apiVersion: hadron.rs/v1beta1
kind: Stream
metadata: {name: events}
spec: {partitions: 2, image: hadron-stream:dev, pvcVolumeSize: 1Gi}
---
apiVersion: hadron.rs/v1beta1
kind: Token
metadata: {name: app}
spec: {all: true}
`;

interface Run {
  child: ChildProcess;
  out: string[];
  err: string;
  exited: Promise<number | null>;
}

function start(args: string[], env: Record<string, string | undefined> = {}): Run {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, HADRON_URL: undefined, HADRON_TOKEN: undefined, HADRON_CA_FILE: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r: Run = { child, out: [], err: '', exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
  let buf = '';
  child.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    r.out.push(...lines);
  });
  child.stderr!.on('data', (c: Buffer) => (r.err += c.toString()));
  return r;
}

async function run(args: string[], env: Record<string, string | undefined>): Promise<{ code: number | null; out: string[]; err: string }> {
  const r = start(args, env);
  const code = await r.exited;
  return { code, out: r.out, err: r.err };
}

test('hadron dev --tls: generated CA and certificate, CLI pub/sub over https:// with --ca, refusal without it', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-dev-tls-'));
  const manifests = path.join(root, 'manifests.yaml');
  const data = path.join(root, 'data');
  fs.writeFileSync(manifests, MANIFEST);
  const { port: base, httpPort: httpBase } = await freeDevPorts();
  const dev = start(['dev', '--tls', '-f', manifests, '--data', data, '--port', String(base), '--http-port', String(httpBase), '--console-port', '0']);
  t.after(async () => {
    if (dev.child.exitCode === null) dev.child.kill('SIGINT');
    await dev.exited;
    fs.rmSync(root, { recursive: true, force: true });
  });
  await until(() => dev.out.some((l) => l.includes('hadron dev: ready;')) || dev.child.exitCode !== null, 30_000, 'hadron dev --tls to be ready');
  assert.equal(dev.child.exitCode, null, dev.err);
  const url = `https://127.0.0.1:${base}`;
  const caFile = path.join(data, 'tls', 'ca.crt');
  assert.ok(dev.out.some((l) => l.includes(`CloudEvents over HTTP at https://127.0.0.1:${httpBase}/`)), 'the HTTP ingress serves https:// too');
  assert.ok(dev.out.some((l) => l.includes(`stream events: 2 partition(s), bootstrap URL ${url}`)), dev.out.join('\n'));
  assert.ok(dev.out.some((l) => l.includes(`clients verify it with the CA ${caFile}`)));
  const token = fs.readFileSync(path.join(data, 'tokens', 'app'), 'utf8');
  assert.ok(dev.out.some((l) => l.includes(`app: export HADRON_URL=${url} HADRON_TOKEN=${token} HADRON_CA_FILE=${caFile}`)), 'prints the lines to paste');
  const server = new X509Certificate(fs.readFileSync(path.join(data, 'tls', 'server.crt')));
  assert.ok(server.verify(new X509Certificate(fs.readFileSync(caFile)).publicKey), 'the server certificate is signed by the dev CA');
  assert.equal(server.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(fs.statSync(path.join(data, 'tls', 'ca.key')).mode & 0o777, 0o600);

  // The console of hadron dev --tls reaches the https:// partitions with the dev CA.
  const consoleUrl = /console of stream events at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(dev.out.join('\n'))?.[1];
  assert.ok(consoleUrl, dev.out.join('\n'));
  const streamView = await fetch(`${consoleUrl}api/stream`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(streamView.status, 200, await streamView.clone().text());
  assert.equal(((await streamView.json()) as { partitions: unknown[] }).partitions.length, 2);

  const env = { HADRON_URL: url, HADRON_TOKEN: token };
  // Without the CA: a clear TLS error, exit 1, nothing published.
  const refused = await run(['stream', 'pub', '--type', 't', 'never'], env);
  assert.notEqual(refused.code, 0);
  assert.match(refused.err, /TLS handshake failed: .*(self.signed|unable to (verify|get local issuer))/i);
  // --ca and HADRON_CA_FILE both work.
  const a = await run(['stream', 'pub', '--ca', caFile, '--id', 'a', '--type', 't', 'one'], env);
  assert.equal(a.code, 0, a.err);
  const b = await run(['stream', 'pub', '--id', 'b', '--type', 't', 'two'], { ...env, HADRON_CA_FILE: caFile });
  assert.equal(b.code, 0, b.err);
  const sub = await run(['stream', 'sub', '--ca', caFile, '--group', 'g', '--start-beginning', '--count', '2', '--output', 'json'], env);
  assert.equal(sub.code, 0, sub.err);
  assert.deepEqual(sub.out.map((l) => (JSON.parse(l) as { id: string }).id).sort(), ['a', 'b']);
  // --ca with an http:// URL is refused rather than ignored.
  const mixed = await run(['stream', 'pub', '--ca', caFile, '--type', 't', 'x'], { ...env, HADRON_URL: `http://127.0.0.1:${base}` });
  assert.notEqual(mixed.code, 0);
  assert.match(mixed.err, /TLS options \(ca, cert, key\) were given but the URL is not https:\/\//);

  // A restart keeps the CA (clients' HADRON_CA_FILE stays valid).
  const caBefore = fs.readFileSync(caFile, 'utf8');
  dev.child.kill('SIGINT');
  assert.equal(await dev.exited, 0);
  const again = start(['dev', '--tls', '-f', manifests, '--data', data, '--port', String(base), '--http-port', String(httpBase), '--no-console']);
  try {
    await until(() => again.out.some((l) => l.includes('hadron dev: ready;')) || again.child.exitCode !== null, 30_000, 'hadron dev --tls to restart');
    assert.equal(fs.readFileSync(caFile, 'utf8'), caBefore);
    const c = await run(['stream', 'pub', '--ca', caFile, '--id', 'c', '--type', 't', 'three'], env);
    assert.equal(c.code, 0, c.err);
  } finally {
    again.child.kill('SIGINT');
    await again.exited;
  }
});
