/**
 * `hadron dev` refused at start (a port in use) creates nothing: no data directory, no tokens
 * (issue 10, defects a new user hit).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePortRange } from '@hadron/testing';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '..', 'bin', 'hadron.js');

test('a hadron dev refused because a port is in use leaves no data directory and mints no token', async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-dev-refused-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const base = await freePortRange(200);
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(base, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const data = path.join(tmp, 'data');
  const child = spawn(process.execPath, [BIN, 'dev', '--data', data, '--port', String(base), '--http-port', String(await freePortRange(100))], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 1, err);
  assert.match(err, new RegExp(`port ${base} on 127\\.0\\.0\\.1 \\(stream events, partition 0\\) is in use`));
  assert.equal(fs.existsSync(data), false, 'no data directory was created');
});
