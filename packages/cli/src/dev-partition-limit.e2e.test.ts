/**
 * `hadron dev` runs at most 50 partitions per stream (its port layout has 50 slots). A Stream
 * asking for more is refused, never run with fewer partitions than it says: that would move keys
 * to other partitions (placement hashes over spec.partitions). At start-up the start is refused
 * and nothing is created; on a live edit the previous manifests stay in force.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeDevPorts, until } from '@hadron/testing';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '..', 'bin', 'hadron.js');

const manifest = (partitions: number): string => `apiVersion: hadron.rs/v1beta1
kind: Stream
metadata: {name: events}
spec: {partitions: ${partitions}, replicationFactor: 1, image: hadron-stream:dev, pvcVolumeSize: 1Gi}
`;

function run(args: string[]): { child: ChildProcess; lines: string[]; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  for (const s of [child.stdout!, child.stderr!]) s.on('data', (c: Buffer) => lines.push(...c.toString().split('\n').filter(Boolean)));
  return { child, lines, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

test('hadron dev refuses a Stream with more partitions than it can run, at start and on a live edit', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-dev-limit-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const file = path.join(root, 'hadron.yaml');
  const write = (text: string): void => {
    fs.writeFileSync(`${file}.tmp`, text);
    fs.renameSync(`${file}.tmp`, file);
  };
  const args = async (data: string): Promise<string[]> => {
    const p = await freeDevPorts();
    return ['dev', '-f', file, '--data', data, '--port', String(p.port), '--http-port', String(p.httpPort), '--no-console'];
  };

  // At start: refused with a message naming the stream and the limit; no data directory.
  write(manifest(51));
  const refusedData = path.join(root, 'refused');
  const refused = run(await args(refusedData));
  const code = await refused.exited;
  assert.notEqual(code, 0, 'the start is refused');
  assert.ok(refused.lines.some((l) => /stream events asks for 51 partitions; hadron dev runs at most 50 partitions per stream/.test(l)), refused.lines.join('\n'));
  assert.equal(fs.existsSync(refusedData), false, 'a refused start creates nothing');

  // Live edit: refused, the 2 running partitions stay.
  write(manifest(2));
  const data = path.join(root, 'data');
  const dev = run(await args(data));
  t.after(async () => {
    if (dev.child.exitCode === null) dev.child.kill('SIGINT');
    await dev.exited;
  });
  await until(() => dev.lines.some((l) => l.includes('hadron dev: ready;')) || dev.child.exitCode !== null, 30_000, 'hadron dev ready');
  assert.equal(dev.child.exitCode, null, dev.lines.join('\n'));
  const from = dev.lines.length;
  write(manifest(51));
  await until(() => dev.lines.slice(from).some((l) => /asks for 51 partitions.*the previous manifests stay in force/.test(l)), 30_000, `refusal of the edit; output:\n${dev.lines.slice(from).join('\n')}`);
  const state = JSON.parse(fs.readFileSync(path.join(data, 'dev.json'), 'utf8')) as { streams: Record<string, { partitions: Record<string, unknown> }> };
  assert.deepEqual(Object.keys(state.streams.events!.partitions).sort(), ['0', '1'], 'the previous layout keeps running');
  assert.equal(dev.child.exitCode, null, 'hadron dev keeps running');
});
