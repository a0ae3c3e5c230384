/**
 * Scale-down safety in `hadron dev` (issue 10): removing a partition that holds events a durable
 * group has not acked is refused (naming partition, group and count) and the old layout keeps
 * running; once the group has caught up the change goes through by itself; with the annotation
 * `hadron.rs/allow-partition-loss` it goes through at once and what was left behind is reported.
 * Real processes throughout: the bin, the dev supervisor, one hadron-stream per partition.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, partitionOf, type HadronClient } from '@hadron/client';
import { freeDevPorts, until } from '@hadron/testing';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '..', 'bin', 'hadron.js');

const manifest = (partitions: number, annotations = ''): string => `apiVersion: hadron.rs/v1beta1
kind: Stream
metadata:
  name: events
${annotations}spec: {partitions: ${partitions}, image: hadron-stream:dev, pvcVolumeSize: 1Gi}
---
apiVersion: hadron.rs/v1beta1
kind: Pipeline
metadata: {name: orders}
spec: {sourceStream: events, triggers: [order.created], maxParallel: 5, startPoint: {location: beginning}, stages: [{name: only}]}
---
apiVersion: hadron.rs/v1beta1
kind: Token
metadata: {name: full}
spec: {all: true}
`;

/** Output lines of both streams, in arrival order per stream, awaitable. */
class Proc {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    for (const s of [child.stdout!, child.stderr!]) {
      let buf = '';
      s.on('data', (c: Buffer) => {
        buf += c.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          this.lines.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
    }
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }
  waitFor(re: RegExp, from: number, what: string): Promise<string> {
    let hit: string | undefined;
    return until(() => (hit = this.lines.slice(from).find((l) => re.test(l))) !== undefined, 30_000, `${what}; output:\n${this.lines.slice(from).join('\n')}`).then(() => hit!);
  }
}

const keyFor = (p: number, n: number, prefix: string): string => {
  for (let i = 0; ; i++) if (partitionOf({ id: '', source: '', optattrs: { partitionkey: `${prefix}${i}` } }, n) === p) return `${prefix}${i}`;
};

test('hadron dev refuses removing partitions with undelivered events unless the Stream allows it', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-dev-scale-'));
  const file = path.join(root, 'hadron.yaml');
  const data = path.join(root, 'data');
  const write = (text: string): void => {
    fs.writeFileSync(`${file}.tmp`, text);
    fs.renameSync(`${file}.tmp`, file);
  };
  write(manifest(2));
  const { port: base, httpPort } = await freeDevPorts();
  const dev = new Proc(spawn(process.execPath, [BIN, 'dev', '-f', file, '--data', data, '--port', String(base), '--http-port', String(httpPort), '--console-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const clients: HadronClient[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    if (dev.child.exitCode === null) dev.child.kill('SIGINT');
    await dev.exited;
    fs.rmSync(root, { recursive: true, force: true });
  });
  await dev.waitFor(/hadron dev: ready;/, 0, 'ready');
  const token = fs.readFileSync(path.join(data, 'tokens', 'full'), 'utf8');
  const client = createClient({ url: `http://127.0.0.1:${base}`, token });
  clients.push(client);
  await client.ready();
  const publishTo = async (partition: number, n: number, prefix: string, type = 'scale.test'): Promise<void> => {
    const acks = await client.publish(Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, source: 'e2e', type, partitionkey: keyFor(partition, 2, `${prefix}${i}-`) })));
    assert.deepEqual(new Set(acks.map((a) => a.partition)), new Set([partition]));
  };
  const lagOn1 = async (): Promise<number | undefined> => {
    const g = (await client.groups()).find((x) => x.name === 'audit');
    return g?.partitions.find((p) => p.partition === 1)?.lag;
  };
  /** Lets group `audit` catch up, then leaves it. */
  const catchUp = async (): Promise<void> => {
    const sub = client.subscribe({ group: 'audit', durable: true, startPoint: 'beginning' }, () => undefined);
    await until(async () => (await lagOn1()) === 0, 15_000, 'audit caught up on partition 1');
    await sub.close();
  };

  await t.test('hadron dev starts the web console and prints its URL before the ready line', async () => {
    const ready = dev.lines.findIndex((l) => l.startsWith('hadron dev: ready;'));
    const at = dev.lines.findIndex((l) => /^hadron dev: console of stream events at http:\/\/127\.0\.0\.1:\d+\/ \(sign in with one of the tokens above\)$/.test(l));
    assert.ok(at >= 0 && at < ready, dev.lines.join('\n'));
    const consoleUrl = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(dev.lines[at]!)![1]!;
    const page = await fetch(consoleUrl);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>Hadron console<\/title>/);
    const refused = await fetch(`${consoleUrl}api/stream`);
    assert.equal(refused.status, 401);
    const s = await fetch(`${consoleUrl}api/stream`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(s.status, 200);
    const body = (await s.json()) as { stream: string; partitions: unknown[] };
    assert.deepEqual([body.stream, body.partitions.length], ['events', 2]);
    const tokens = (await (await fetch(`${consoleUrl}api/tokens`, { headers: { authorization: `Bearer ${token}` } })).json()) as { tokens: Array<{ name: string; all: boolean }> };
    assert.deepEqual(tokens.tokens.map((x) => [x.name, x.all]), [['full', true]]);
  });

  const activeOn1 = async (): Promise<number | undefined> => {
    const p = (await client.pipelineStatus('orders')).find((x) => x.partition === 1);
    return p && !('error' in p) ? p.instances.length : undefined;
  };

  await t.test('refused with partition, group, pipeline and counts; the old layout keeps running', async () => {
    await publishTo(1, 2, 'a');
    await catchUp();
    await publishTo(1, 3, 'b');
    // An order on partition 1 starts an instance of Pipeline orders that no worker runs yet.
    await publishTo(1, 1, 'o', 'order.created');
    await until(async () => (await activeOn1()) === 1, 15_000, 'an active instance of orders on partition 1');
    assert.equal(await lagOn1(), 4);
    const from = dev.lines.length;
    write(manifest(1));
    const line = await dev.waitFor(/scaling stream events from 2 to 1 partitions/, from, 'the refusal');
    assert.match(
      line,
      /^hadron dev: scaling stream events from 2 to 1 partitions would remove partitions 1\.\.1, but they hold events not yet delivered: partition 1: group audit \(4 unacked event\(s\)\); partition 1: pipeline orders \(1 active instance\(s\), 0 event\(s\) not yet scanned\); consume them first, or set annotation hadron\.rs\/allow-partition-loss: "true" on the Stream to remove them anyway; the previous manifests stay in force/,
    );
    assert.ok(!dev.lines.slice(from).some((l) => /scaled from|events-1 stopped/.test(l)), 'nothing was stopped');
    // The partitions still read the 2-partition manifests, and partition 1 still takes events.
    const inForce = fs.readdirSync(path.join(data, 'manifests')).map((f) => fs.readFileSync(path.join(data, 'manifests', f), 'utf8'));
    assert.deepEqual(inForce, [manifest(2)]);
    await publishTo(1, 1, 'c');
    assert.equal(await lagOn1(), 5);
    assert.equal(client.partitionCount, 2);
  });

  await t.test('once the group has caught up and the instance is done, the refused change goes through by itself', async () => {
    const from = dev.lines.length;
    await catchUp();
    assert.ok(!dev.lines.slice(from).some((l) => /resolved/.test(l)), 'not while the pipeline instance is active');
    const worker = client.pipelineStage('orders', 'only', (d) => ({ id: `done-${d.offset}`, source: 'e2e', type: 'order.done' }));
    t.after(() => worker.close());
    await until(async () => (await activeOn1()) === 0, 15_000, 'the instance completed');
    await dev.waitFor(/the refused scale-down is resolved/, from, 'resolved');
    await dev.waitFor(/stream events scaled from 2 to 1 partitions/, from, 'scaled');
    await dev.waitFor(/partition events-1 stopped \(scaled down/, from, 'stopped');
    await until(() => client.partitionCount === 1, 15_000, 'the client to see 1 partition');
  });

  await t.test('with hadron.rs/allow-partition-loss the change goes through and what is left behind is reported', async () => {
    let from = dev.lines.length;
    write(manifest(2));
    await dev.waitFor(/partition events-1 started/, from, 'partition 1 back');
    await until(() => client.partitionCount === 2 && client.partitions().every((p) => p.health === 'ready'), 15_000, 'two ready partitions');
    await publishTo(1, 2, 'd');
    assert.equal(await lagOn1(), 2);
    from = dev.lines.length;
    write(manifest(1, '  annotations: {hadron.rs/allow-partition-loss: "true"}\n'));
    const line = await dev.waitFor(/left behind/, from, 'the report');
    assert.match(line, /stream events: scaling from 2 to 1 partitions as annotation allows; left behind \(kept on disk in .*, in dev\.json\): partition 1: group audit \(2 unacked event\(s\)\)$/);
    await dev.waitFor(/stream events scaled from 2 to 1 partitions/, from, 'scaled');
    const state = JSON.parse(fs.readFileSync(path.join(data, 'dev.json'), 'utf8')) as { leftBehind: Record<string, { from: number; to: number; items: unknown[] }> };
    assert.deepEqual([state.leftBehind.events?.from, state.leftBehind.events?.to, state.leftBehind.events?.items], [2, 1, [{ partition: 1, kind: 'group', name: 'audit', unacked: 2 }]]);
  });
});
