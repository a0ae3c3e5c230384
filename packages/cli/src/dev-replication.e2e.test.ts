/**
 * `hadron dev` with replication (docs/replication.md): a partition process is stopped, its whole
 * volume (`<data>/partitions/<stream>-<N>`) deleted, and it is started again. Everything comes
 * back from its replica before it serves: every acknowledged event at its offset with its bytes,
 * a durable group's position, a pipeline's instances and stage outputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { partitionOf } from '@hadron/client';
import { encodeEvent } from '@hadron/proto';
import { RawClient, freeDevPorts, readAll, testEvent, until } from '@hadron/testing';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '..', 'bin', 'hadron.js');

const keyFor = (p: number, n: number, prefix: string): string => {
  for (let i = 0; ; i++) if (partitionOf({ id: '', source: '', optattrs: { partitionkey: `${prefix}${i}` } }, n) === p) return `${prefix}${i}`;
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Alive and not a zombie (Linux /proc). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('hadron dev: a partition whose volume is deleted while stopped comes back whole from its replica', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-dev-repl-'));
  const manifests = path.join(root, 'manifests');
  const data = path.join(root, 'data');
  fs.mkdirSync(manifests);
  const docs = [
    { apiVersion: 'hadron.rs/v1beta1', kind: 'Stream', metadata: { name: 'events' }, spec: { partitions: 3, replicationFactor: 2, image: 'x', pvcVolumeSize: '1Gi' } },
    {
      apiVersion: 'hadron.rs/v1beta1',
      kind: 'Pipeline',
      metadata: { name: 'orders' },
      spec: { sourceStream: 'events', triggers: ['order.created'], maxParallel: 10, startPoint: { location: 'beginning' }, stages: [{ name: 'a' }, { name: 'b', after: ['a'], dependencies: ['a'] }] },
    },
    { apiVersion: 'hadron.rs/v1beta1', kind: 'Token', metadata: { name: 'full' }, spec: { all: true } },
  ];
  fs.writeFileSync(path.join(manifests, 'm.yaml'), docs.map((d) => stringify(d)).join('---\n'));
  const { port: base, httpPort } = await freeDevPorts();
  const dev = spawn(process.execPath, [BIN, 'dev', '-f', manifests, '--data', data, '--port', String(base), '--http-port', String(httpPort), '--no-console'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  // Status lines (partition restarts) go to stderr, the ready line to stdout: read both.
  for (const s of [dev.stdout, dev.stderr]) s.on('data', (c: Buffer) => lines.push(...c.toString().split('\n').filter(Boolean)));
  const exited = new Promise((r) => dev.once('exit', r));
  const clients: RawClient[] = [];
  const pids = new Set<number>();
  const devState = (): { streams: Record<string, { partitions: Record<string, { pid: number | null }> }> } => JSON.parse(fs.readFileSync(path.join(data, 'dev.json'), 'utf8'));
  let paused = false;
  t.after(async () => {
    if (paused) dev.kill('SIGCONT');
    for (const c of clients) await c.close();
    dev.kill('SIGINT');
    await exited;
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  });
  await until(() => lines.some((l) => l.includes('hadron dev: ready;')), 30_000, 'hadron dev ready');
  for (const p of Object.values(devState().streams.events!.partitions)) if (p.pid) pids.add(p.pid);
  const key = fs.readFileSync(path.join(data, 'replication', 'events.key'), 'utf8');
  assert.ok(key.length >= 32, 'a replication key was minted');
  assert.equal(fs.statSync(path.join(data, 'replication', 'events.key')).mode & 0o777, 0o600);
  const token = fs.readFileSync(path.join(data, 'tokens', 'full'), 'utf8');
  const url1 = `http://127.0.0.1:${base + 1}`;
  const metrics1 = `http://127.0.0.1:${base + 51}/metrics`;
  const cl = new RawClient(url1, token);
  clients.push(cl);

  // 60 events on partition 1 (acknowledged with ack ALL: on pods 1 and 2), 2 of them triggers.
  const published: Array<{ offset: number; bytes: Buffer }> = [];
  for (let b = 0; b < 6; b++) {
    const evs = Array.from({ length: 10 }, (_, i) => testEvent(b * 10 + i, { id: `e-${b}-${i}`, type: b === 0 && i < 2 ? 'order.created' : 'other', optattrs: { partitionkey: keyFor(1, 3, `k${b}-${i}-`) }, data: Buffer.alloc(50 + i, b) }));
    const r = await cl.publish(evs, { fsync: true, ack: 0 });
    evs.forEach((e, i) => published.push({ offset: r.offset - 9 + i, bytes: Buffer.from(encodeEvent(e)) }));
  }
  // A durable group acks the first 25.
  const sub = cl.subscribe({ group: 'g', durable: true, maxBatchSize: 25, start: { beginning: true } });
  const d = await sub.next();
  assert.equal(d.lastIncludedOffset, 25);
  sub.ack();
  // Stage a of both pipeline instances is done, with outputs.
  const stageA = cl.pipelineStage('orders', 'a');
  for (let i = 0; i < 2; i++) {
    const del = await stageA.next();
    stageA.ack(testEvent(100 + del.offset, { id: `a-out-${del.offset}` }));
  }
  await until(async () => {
    const st = await cl.pipelineStatus('orders');
    return st.instances.length === 2 && st.instances.every((i) => i.stages.find((s) => s.name === 'a')?.state === 'done');
  }, 15_000, 'stage a done on both instances');
  stageA.close();
  // Publishing one more event after the ack makes the group's offset reach the replica with it.
  await cl.publish([testEvent(999, { id: 'marker', optattrs: { partitionkey: keyFor(1, 3, 'm') } })], { ack: 0 });
  await until(async () => {
    const text = await (await fetch(metrics1)).text();
    return /hadron_stream_replica_lag_events\{[^}]*replica="2"[^}]*\} 0$/m.test(text) && /hadron_stream_replica_state_lag_changes\{[^}]*replica="2"[^}]*\} 0$/m.test(text) && /hadron_stream_subscriber_last_offset_processed\{[^}]*group="g"[^}]*\} 25$/m.test(text);
  }, 15_000, 'replica 2 holds everything of partition 1');
  sub.close();
  await cl.close();
  clients.length = 0;

  // Stop the partition (hadron dev held so it does not restart it yet), lose its whole volume.
  const victim = devState().streams.events!.partitions['1']!.pid!;
  const from = lines.length;
  dev.kill('SIGSTOP');
  paused = true;
  process.kill(victim, 'SIGKILL');
  // Its parent (hadron dev) is stopped, so it stays a zombie until reaped: dead is enough.
  await until(() => !running(victim), 5000, 'partition 1 dead');
  fs.rmSync(path.join(data, 'partitions', 'events-1'), { recursive: true, force: true });
  dev.kill('SIGCONT');
  paused = false;
  await until(() => lines.slice(from).some((l) => /partition events-1 restarted/.test(l)), 30_000, 'partition 1 restarted');
  for (const p of Object.values(devState().streams.events!.partitions)) if (p.pid) pids.add(p.pid);

  const cl2 = new RawClient(url1, token);
  clients.push(cl2);
  const all = await readAll(cl2, 61);
  assert.deepEqual(all.map((e) => e.offset), Array.from({ length: 61 }, (_, i) => i + 1));
  for (const p of published) assert.deepEqual(Buffer.from(encodeEvent(all[p.offset - 1]!.event)), p.bytes, `event at offset ${p.offset} is byte-identical`);
  // The group resumes after what it acked.
  const sub2 = cl2.subscribe({ group: 'g', durable: true, maxBatchSize: 5, start: { beginning: true } });
  const d2 = await sub2.next();
  assert.equal(d2.lastIncludedOffset - d2.events.length + 1, 26, 'group g resumes at 26');
  sub2.close();
  // The pipeline continues: stage a stays done, stage b gets a's outputs.
  const st = await cl2.pipelineStatus('orders');
  assert.equal(st.instances.length, 2);
  for (const i of st.instances) assert.equal(i.stages.find((s) => s.name === 'a')?.state, 'done', `instance ${i.offset}: stage a done`);
  const stageB = cl2.pipelineStage('orders', 'b');
  const got = new Set<number>();
  while (got.size < 2) {
    const del = await stageB.next();
    assert.equal(del.inputs.a?.id, `a-out-${del.offset}`, 'stage b receives stage a\'s stored output');
    got.add(del.offset);
    stageB.ack(testEvent(0, { id: `b-out-${del.offset}` }));
  }
  stageB.close();
  await until(async () => (await cl2.pipelineStatus('orders')).instances.length === 0, 15_000, 'both instances complete');
});
