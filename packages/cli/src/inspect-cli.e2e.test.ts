/**
 * The issue 10 commands through the real `hadron` bin against real partition processes:
 * --version, stream info/get, group list/describe/reset/delete, stream pub --lines/--count and
 * byte-exact stdin, attribute checks, and the reason when nothing listens.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type Delivery } from '@hadron/client';
import { freePortRange, startStream, until, type TestStream } from '@hadron/testing';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '..', 'bin', 'hadron.js');
const VERSION = (JSON.parse(fs.readFileSync(path.join(here, '..', 'package.json'), 'utf8')) as { version: string }).version;

interface Run {
  code: number | null;
  out: string;
  err: string;
  stdout: Buffer;
}

function run(args: string[], env: Record<string, string | undefined> = {}, stdin?: Buffer): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, HADRON_URL: undefined, HADRON_TOKEN: undefined, ...env },
    stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  if (stdin) child.stdin!.end(stdin);
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out: Buffer.concat(out).toString(), err, stdout: Buffer.concat(out) })));
}

test('hadron --version and hadron version', async () => {
  for (const args of [['--version'], ['version'], ['-V']]) {
    const r = await run(args);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `hadron ${VERSION}\n`);
  }
  const j = await run(['version', '--output', 'json']);
  assert.deepEqual(JSON.parse(j.out), { version: VERSION, node: process.version });
});

test('stream pub to an address where nothing listens names the reason', async () => {
  const port = await freePortRange(1);
  const r = await run(['stream', 'pub', '--type', 't', '--timeout', '1500', 'x'], { HADRON_URL: `http://127.0.0.1:${port}`, HADRON_TOKEN: 'a.b.c' });
  assert.equal(r.code, 1);
  assert.match(r.err, /ECONNREFUSED/, r.err);
  assert.doesNotMatch(r.err, /aborted due to timeout/);
});

test('stream pub refuses invalid attributes and JSON before sending', async () => {
  const env = { HADRON_URL: 'http://127.0.0.1:1', HADRON_TOKEN: 'a.b.c' };
  const cases: Array<[string[], RegExp]> = [
    [['-o', 'Bad-Key=1'], /invalid --optattr "Bad-Key=1": attribute name "Bad-Key" must consist of lower-case letters a-z and digits 0-9/],
    [['-o', 'specversion=0.3'], /specversion cannot be set as an optional attribute: Hadron events are CloudEvents 1.0/],
    [['-o', 'time=yesterday'], /time must be an RFC 3339 timestamp/],
    [['-o', 'datacontenttype=application/json', '{"a":'], /datacontenttype is application\/json but the data is not valid JSON/],
  ];
  for (const [args, re] of cases) {
    const r = await run(['stream', 'pub', '--type', 't', ...args, ...(args.length === 2 ? ['d'] : [])], env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, re);
  }
});

test('inspection and group commands against a 2-partition stream', async (t) => {
  const cluster: TestStream = await startStream({ partitions: 2 });
  t.after(() => cluster[Symbol.asyncDispose]());
  const full = { HADRON_URL: cluster.url(0), HADRON_TOKEN: cluster.tokens.full };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-cli-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));

  await t.test('pipeline sub on an unknown pipeline names it', async () => {
    const r = await run(['pipeline', 'sub', 'no-such-pipeline', 'stage1', '--timeout', '5000'], full);
    assert.equal(r.code, 1);
    assert.match(r.err, /pipeline 'no-such-pipeline' not found: the target pipeline controller was not found/);
  });

  await t.test('pub --lines publishes one event per line; --count repeats', async () => {
    const file = path.join(dir, 'lines.txt');
    fs.writeFileSync(file, '{"n":1}\n{"n":2}\r\n\n{"n":3}\n');
    const r = await run(['stream', 'pub', '--type', 'line', '--partition-key', 'k', '-o', 'datacontenttype=application/json', '--lines', file, '--count', '2', '--output', 'json'], full);
    assert.equal(r.code, 0, r.err);
    const res = JSON.parse(r.out) as { published: number; partitions: Array<{ partition: number; first: number; last: number; events: number }> };
    assert.equal(res.published, 6);
    assert.equal(res.partitions.length, 1, 'one key, one partition');
    assert.deepEqual([res.partitions[0]!.first, res.partitions[0]!.last], [1, 6]);
    const bad = path.join(dir, 'bad.txt');
    fs.writeFileSync(bad, '{"ok":true}\nnot json\n');
    const b = await run(['stream', 'pub', '--type', 'line', '-o', 'datacontenttype=application/json', '--lines', bad], full);
    assert.equal(b.code, 2);
    assert.match(b.err, /line 2: datacontenttype is application\/json but the data is not valid JSON/);
  });

  let binaryAt: { partition: number; offset: number };
  await t.test('pub - publishes binary stdin byte-exact; stream get shows it', async () => {
    const bytes = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0a, 0xc3, 0x28, 0x41]);
    const r = await run(['stream', 'pub', '--type', 'bin', '--output', 'json', '-'], full, bytes);
    assert.equal(r.code, 0, r.err);
    binaryAt = JSON.parse(r.out) as { partition: number; offset: number };
    const g = await run(['stream', 'get', '--partition', String(binaryAt.partition), '--offset', String(binaryAt.offset), '--output', 'json'], full);
    assert.equal(g.code, 0, g.err);
    const ev = JSON.parse(g.out) as { data: string; binary: boolean; offset: number; type: string; time: string };
    assert.equal(ev.binary, true);
    assert.deepEqual(Buffer.from(ev.data, 'base64'), bytes, 'byte-exact');
    assert.equal(ev.type, 'bin');
    assert.ok(Number.isFinite(Date.parse(ev.time)));
  });

  await t.test('stream get --count reads a range; an empty range says what is readable', async () => {
    const info = JSON.parse((await run(['stream', 'info', '--output', 'json'], full)).out) as { partitions: Array<{ partition: number; lastOffset: number }> };
    const p = info.partitions.find((x) => x.lastOffset >= 6)!;
    const g = await run(['stream', 'get', '--partition', String(p.partition), '--offset', '2', '--count', '3'], full);
    assert.equal(g.code, 0, g.err);
    const lines = g.out.trim().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, new RegExp(`^partition=${p.partition} offset=2 time=\\S+ id=\\S+ source=hadron-cli type=line .*data="\\{\\\\"n\\\\":2\\}"$`));
    const none = await run(['stream', 'get', '--partition', String(p.partition), '--offset', '999'], full);
    assert.equal(none.code, 1);
    assert.match(none.err, new RegExp(`no events at offset 999 of partition ${p.partition} \\(readable: 1–${p.lastOffset}\\)`));
    const missing = await run(['stream', 'get', '--offset', '1'], full);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /--partition is required/);
  });

  await t.test('bench pub then bench sub: counts, rates and latencies', async () => {
    const before = (JSON.parse((await run(['stream', 'info', '--output', 'json'], full)).out) as { totals: { events: number } }).totals.events;
    const pub = await run(['bench', 'pub', '--count', '2000', '--batch', '100', '--size', '64', '--output', 'json'], full);
    assert.equal(pub.code, 0, pub.err);
    const p = JSON.parse(pub.out) as { mode: string; events: number; bytes: number; complete: boolean; eventsPerSecond: number; latencyMs: { p50: number; max: number } };
    assert.deepEqual([p.mode, p.events, p.bytes, p.complete], ['pub', 2000, 128_000, true]);
    assert.ok(p.eventsPerSecond > 0 && p.latencyMs.p50 > 0 && p.latencyMs.max >= p.latencyMs.p50, pub.out);
    const after = (JSON.parse((await run(['stream', 'info', '--output', 'json'], full)).out) as { totals: { events: number } }).totals.events;
    assert.equal(after - before, 2000);
    const sub = await run(['bench', 'sub', '--count', String(after), '--output', 'json'], full);
    assert.equal(sub.code, 0, sub.err);
    const s = JSON.parse(sub.out) as { mode: string; events: number; complete: boolean; latencyMs: { p50: number; max: number } };
    assert.deepEqual([s.mode, s.events >= after, s.complete], ['sub', true, true]);
    assert.ok(s.latencyMs.max >= s.latencyMs.p50 && s.latencyMs.p50 >= 0, sub.out);
    // The ephemeral bench group is gone afterwards.
    assert.deepEqual(JSON.parse((await run(['group', 'list', '--output', 'json'], full)).out), []);
  });

  await t.test('stream info, group list/describe, reset refused while connected, --force, delete', async () => {
    const client = createClient({ url: cluster.url(0), token: cluster.tokens.full });
    t.after(() => client.close());
    const seen: Delivery[] = [];
    const sub = client.subscribe({ group: 'audit', durable: true, startPoint: 'beginning' }, (d) => void seen.push(d));
    await until(async () => (await client.groups()).find((g) => g.name === 'audit')?.lag === 0, 10_000, 'audit caught up');

    const info = await run(['stream', 'info'], full);
    assert.equal(info.code, 0, info.err);
    assert.match(info.out, /^stream events: 2 partitions, 2007 events, [\d.]+ (B|KiB), \d+ segments\n/);
    assert.match(info.out, /PARTITION +ADDRESS +FIRST +LAST +EVENTS +SIZE +SEGMENTS +RETENTION +REPLICAS +STATE\n/);
    assert.match(info.out, /\nGROUP +DURABLE +MEMBERS +LAG +OLDEST UNACKED\naudit +yes +2 +0 +-\n/);

    const list = await run(['group', 'list', '--output', 'json'], full);
    assert.deepEqual(
      (JSON.parse(list.out) as Array<{ name: string; members: number; lag: number }>).map((g) => [g.name, g.members, g.lag]),
      [['audit', 2, 0]],
    );
    const desc = await run(['group', 'describe', 'audit'], full);
    assert.equal(desc.code, 0, desc.err);
    assert.match(desc.out, /^group audit: durable, 2 members, lag 0, oldest unacked -\n/);
    assert.match(desc.out, /PARTITION +ACKED +LAST +LAG +MEMBERS +IN FLIGHT +REDELIVERIES +OLDEST UNACKED\n0 /);
    const unknown = await run(['group', 'describe', 'nope'], full);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /group 'nope' does not exist \(groups: audit\)/);

    const refused = await run(['group', 'reset', 'audit', '--to-beginning'], full);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /cannot reset group 'audit': 2 member\(s\) connected; stop them first or use --force \[GROUP_BUSY\]/);
    const reader = await run(['group', 'delete', 'audit', '--force'], { ...full, HADRON_TOKEN: cluster.tokens.reader });
    assert.equal(reader.code, 1);
    assert.match(reader.err, /may not administer groups of stream 'events' \(needs all: true\) \[PERMISSION_DENIED\]/);
    const usage = await run(['group', 'reset', 'audit', '--to-latest', '--to-offset', '3'], full);
    assert.equal(usage.code, 2);
    assert.match(usage.err, /give exactly one of --to-beginning, --to-latest, --to-offset, --to-time \(got --to-latest, --to-offset\)/);
    const badTime = await run(['group', 'reset', 'audit', '--to-time', '12/01'], full);
    assert.equal(badTime.code, 2);
    assert.match(badTime.err, /--to-time must be an ISO 8601 time with a zone/);

    const n = seen.length;
    const forced = await run(['group', 'reset', 'audit', '--to-offset', '1', '--partition', String(binaryAt.partition), '--force'], full);
    assert.equal(forced.code, 0, forced.err);
    assert.match(forced.out, new RegExp(`^partition ${binaryAt.partition}: acked offset \\d+ → 0 \\(next delivered: 1\\), 1 members disconnected\\n$`));
    await until(() => seen.slice(n).some((d) => d.partition === binaryAt.partition && d.events[0]!.offset === 1), 10_000, 'redelivered from 1');

    await sub.close();
    await until(async () => (await client.groups()).find((g) => g.name === 'audit')?.members === 0, 10_000, 'members gone');
    const toTime = await run(['group', 'reset', 'audit', '--to-time', new Date(Date.now() + 60_000).toISOString(), '--output', 'json'], full);
    assert.equal(toTime.code, 0, toTime.err);
    assert.deepEqual(
      (JSON.parse(toTime.out) as Array<{ ackedOffset: number }>).map((r) => r.ackedOffset).sort(),
      (JSON.parse((await run(['stream', 'info', '--output', 'json'], full)).out) as { partitions: Array<{ lastOffset: number }> }).partitions.map((p) => p.lastOffset).sort(),
    );
    const del = await run(['group', 'delete', 'audit'], full);
    assert.equal(del.code, 0, del.err);
    assert.match(del.out, /partition 0: deleted\npartition 1: deleted\n/);
    const again = await run(['group', 'delete', 'audit'], full);
    assert.equal(again.code, 1);
    assert.match(again.err, /group 'audit' does not exist \[NOT_FOUND\]/);
  });
});
