/**
 * `hadron dev` prints each Stream's CloudEvents HTTP URL, and that URL accepts CloudEvents sent
 * the way curl would (docs/http.md): keyed events land on the partition of their key whichever
 * partition received them; a bad token is refused. Real processes: the CLI, its partitions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { partitionOf } from '@hadron/proto';
import { freeDevPorts, until } from '@hadron/testing';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'hadron.js');

const MANIFEST = `apiVersion: hadron.rs/v1beta1
kind: Stream
metadata: {name: events}
spec: {partitions: 3, image: hadron-stream:dev, pvcVolumeSize: 1Gi}
---
apiVersion: hadron.rs/v1beta1
kind: Token
metadata: {name: app}
spec: {all: true}
`;

test('hadron dev prints the CloudEvents HTTP URL; it accepts binary and structured events and places keyed ones by the hash', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-dev-http-'));
  const manifests = path.join(root, 'manifests.yaml');
  const data = path.join(root, 'data');
  fs.writeFileSync(manifests, MANIFEST);
  const { port: base, httpPort: httpBase } = await freeDevPorts();
  const child = spawn(process.execPath, [BIN, 'dev', '-f', manifests, '--data', data, '--port', String(base), '--http-port', String(httpBase)], {
    env: { ...process.env, HADRON_URL: undefined, HADRON_TOKEN: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
    await exited;
    fs.rmSync(root, { recursive: true, force: true });
  });
  await until(() => out.includes('hadron dev: ready;') || child.exitCode !== null, 30_000, 'hadron dev to be ready');
  assert.equal(child.exitCode, null, err);
  const m = /stream events: 3 partition\(s\), bootstrap URL \S+, CloudEvents over HTTP at (\S+)/.exec(out);
  assert.ok(m, out);
  const url = m[1]!;
  assert.equal(url, `http://127.0.0.1:${httpBase}/`);
  const token = fs.readFileSync(path.join(data, 'tokens', 'app'), 'utf8').trim();
  const state = JSON.parse(fs.readFileSync(path.join(data, 'dev.json'), 'utf8')) as { streams: { events: { httpUrl: string } } };
  assert.equal(state.streams.events.httpUrl, url, 'dev.json has it too');

  // Binary mode, as `curl -H ce-…` sends it; keys owned by each partition, all sent to the printed URL.
  for (const key of ['customer-1', 'customer-2', 'customer-3', 'customer-4']) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `bearer ${token}`, 'ce-specversion': '1.0', 'ce-id': `o-${key}`, 'ce-source': '/shop', 'ce-type': 'order.created', 'ce-partitionkey': key, 'content-type': 'application/json' },
      body: '{"total": 12.5}',
    });
    const body = (await res.json()) as { events: Array<{ id: string; partition: number; offset: number }> };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.events[0]!.id, `o-${key}`);
    assert.equal(body.events[0]!.partition, partitionOf({ id: '', source: '', optattrs: { partitionkey: key } }, 3), `${key} placed by the hash`);
  }
  // Structured mode.
  const structured = await fetch(url, {
    method: 'POST',
    headers: { authorization: `bearer ${token}`, 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify({ specversion: '1.0', id: 's1', source: '/shop', type: 'order.paid', data: { ok: true } }),
  });
  assert.equal(structured.status, 200, await structured.clone().text());
  // A wrong token is refused with the ingress' error.
  const refused = await fetch(url, { method: 'POST', headers: { authorization: 'bearer nope', 'ce-specversion': '1.0', 'ce-id': 'x', 'ce-source': '/s', 'ce-type': 't' }, body: 'x' });
  assert.equal(refused.status, 401);
  assert.equal(((await refused.json()) as { code: string }).code, 'UNAUTHENTICATED');
});
