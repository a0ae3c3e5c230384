/**
 * Installable packages (issue 10): `npm pack` @hadron/client, the CLI and their workspace
 * dependencies, install the tarballs into an empty project with `npm install <tarballs>` (third-
 * party dependencies come from the npm cache/registry), then there: type-check a TypeScript
 * user of the client against the shipped .d.ts, run a publish/subscribe script against a real
 * stream, and `npx hadron --version`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStream } from '@hadron/testing';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..', '..', '..');
const PACKAGES = ['proto', 'core', 'k8s', 'stream', 'client', 'cli'];

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 240_000): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    }),
  );
}

const APP = `
import { createClient } from '@hadron/client';
const client = createClient({ url: process.env.URL, token: process.env.TOKEN });
const ack = await client.publish({ id: 'pkg-1', source: 'pkg-test', type: 'installed', data: { ok: true } });
let sub;
const got = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('no delivery within 20 s')), 20000);
  sub = client.subscribe({ group: 'pkg', startPoint: 'beginning' }, (d) => {
    clearTimeout(timer);
    const e = d.events[0];
    resolve({ id: e.id, type: e.type, data: Buffer.from(e.data).toString(), offset: e.offset });
  });
});
await sub.close();
const info = await client.streamInfo();
console.log(JSON.stringify({ ack, got, events: info.totals.events }));
await client.close();
`;

const TYPED = `
import { createClient, type StreamInfo, type PublishAck } from '@hadron/client';
const client = createClient({ url: 'http://127.0.0.1:1', token: 't' });
const ack: Promise<PublishAck> = client.publish({ source: 's', type: 't', data: 'x' });
const info: Promise<StreamInfo> = client.streamInfo();
// @ts-expect-error: read() needs a partition
void client.read({ offset: 1 });
void ack;
void info;
`;

test('packages install from npm pack tarballs into a plain project and work there', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-pkg-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tarballs = path.join(dir, 'tarballs');
  fs.mkdirSync(tarballs);
  const pack = await sh('npm', ['pack', '--silent', '--pack-destination', tarballs, ...PACKAGES.map((p) => `--workspace=packages/${p}`)], ROOT);
  assert.equal(pack.code, 0, pack.err);
  const files = fs.readdirSync(tarballs).sort();
  assert.deepEqual(files, ['hadron-cli-0.1.0.tgz', 'hadron-client-0.1.0.tgz', 'hadron-core-0.1.0.tgz', 'hadron-k8s-0.1.0.tgz', 'hadron-proto-0.1.0.tgz', 'hadron-stream-0.1.0.tgz']);

  // What a tarball holds: compiled code, types, README; no tests, no sources.
  const list = await sh('tar', ['-tzf', path.join(tarballs, 'hadron-client-0.1.0.tgz')], dir);
  const entries = list.out.trim().split('\n');
  assert.ok(entries.includes('package/dist/index.js') && entries.includes('package/dist/index.d.ts') && entries.includes('package/README.md'), list.out);
  assert.deepEqual(entries.filter((e) => /\.test\.|\/src\/|\.map$/.test(e)), [], 'no tests, sources or maps');

  const project = path.join(dir, 'app');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'hadron-user', version: '1.0.0', private: true, type: 'module' }));
  const install = await sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...files.map((f) => path.join(tarballs, f))], project);
  assert.equal(install.code, 0, `${install.out}\n${install.err}`);
  assert.ok(!fs.existsSync(path.join(project, 'node_modules', '@hadron', 'testing')), 'dev dependencies are not installed');

  const version = await sh('npx', ['--no-install', 'hadron', '--version'], project);
  assert.equal(version.code, 0, version.err);
  assert.equal(version.out, 'hadron 0.1.0\n');

  // The shipped types resolve through `exports` for a NodeNext TypeScript user.
  fs.writeFileSync(path.join(project, 'typed.ts'), TYPED);
  const tsc = await sh(
    process.execPath,
    [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--types', 'node', 'typed.ts'],
    project,
  );
  assert.equal(tsc.code, 0, `${tsc.out}\n${tsc.err}`);

  const cluster = await startStream({ partitions: 1 });
  t.after(() => cluster[Symbol.asyncDispose]());
  fs.writeFileSync(path.join(project, 'app.mjs'), APP);
  const app = await sh(process.execPath, ['app.mjs'], project, { URL: cluster.url(0), TOKEN: cluster.tokens.full }, 60_000);
  assert.equal(app.code, 0, app.err);
  assert.deepEqual(JSON.parse(app.out), { ack: { partition: 0, offset: 1 }, got: { id: 'pkg-1', type: 'installed', data: '{"ok":true}', offset: 1 }, events: 1 });
});
