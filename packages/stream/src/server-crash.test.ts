/**
 * Integration faults: kill -9 during fsync publishes, torn tails, flipped bytes, a full disk.
 * The checker: every acknowledged event is readable with its content, offsets are dense, and
 * nothing corrupt is ever served.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { GrpcStatusError, Status } from '@hadron/core';
import { RawClient, readAll, startStream, testEvent, withTmpfs, type TestStream } from '@hadron/testing';

const segDir = (c: TestStream, p = 0): string => path.join(c.dataDir, `events-${p}`, 'log');
const segments = (c: TestStream): string[] =>
  fs
    .readdirSync(segDir(c))
    .filter((f) => f.endsWith('.log'))
    .sort()
    .map((f) => path.join(segDir(c), f));

async function metric(c: TestStream, name: string): Promise<number> {
  const text = await (await fetch(`${c.metricsUrl(0)}/metrics`)).text();
  const m = new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

test('kill -9 during fsync publishes: every acknowledged event survives, offsets dense', async () => {
  await using c = await startStream({ partitions: 1, env: { HADRON_SEGMENT_BYTES: String(256 * 1024) } });
  const cl = new RawClient(c.url(0), c.tokens.full);
  const acked: Array<{ last: number; ids: string[] }> = [];
  let killed: Promise<unknown> | undefined;
  const publisher = async (p: number): Promise<void> => {
    for (let b = 0; ; b++) {
      const evs = Array.from({ length: 20 }, (_, i) => testEvent(0, { id: `p${p}-b${b}-${i}`, data: Buffer.alloc(200, b) }));
      try {
        const r = await cl.publish(evs, { fsync: true });
        acked.push({ last: r.offset, ids: evs.map((e) => e.id) });
      } catch {
        return; // the server died under us
      }
      if (acked.length >= 300 && !killed) killed = c.kill(0, 'SIGKILL');
    }
  };
  await Promise.all([0, 1, 2, 3].map(publisher));
  assert.deepEqual(await killed, { code: null, signal: 'SIGKILL' });
  await cl.close();
  await c.startPartition(0);
  const cl2 = new RawClient(c.url(0), c.tokens.full);
  const maxAcked = Math.max(...acked.map((a) => a.last));
  const all = await readAll(cl2, maxAcked);
  assert.deepEqual(all.slice(0, maxAcked).map((e) => e.offset), Array.from({ length: maxAcked }, (_, i) => i + 1));
  for (const a of acked) {
    assert.deepEqual(all.slice(a.last - 20, a.last).map((e) => e.event.id), a.ids, `acked batch ending at ${a.last} is intact`);
  }
  // new writes continue densely after whatever survived
  const after = (await cl2.publish([testEvent(1)])).offset;
  assert.ok(after > maxAcked);
  const tail = await readAll(cl2, after);
  assert.equal(tail.length, after);
  await cl2.close();
});

test('a torn tail after a crash is truncated; offsets continue densely', async () => {
  await using c = await startStream({ partitions: 1 });
  const cl = new RawClient(c.url(0), c.tokens.full);
  await cl.publish(Array.from({ length: 10 }, (_, i) => testEvent(i)));
  await cl.close();
  await c.kill(0, 'SIGKILL');
  const last = segments(c).at(-1)!;
  // a record header promising 500 bytes, and only part of them
  const torn = Buffer.alloc(37, 0xab);
  torn.writeUInt32LE(500, 0);
  fs.appendFileSync(last, torn);
  await c.startPartition(0);
  assert.equal(await metric(c, 'hadron_stream_recovery_truncated_bytes'), 37);
  assert.equal(await metric(c, 'hadron_stream_current_offset'), 10);
  const cl2 = new RawClient(c.url(0), c.tokens.full);
  assert.equal((await cl2.publish([testEvent(10)])).offset, 11);
  assert.equal((await readAll(cl2, 11)).length, 11);
  await cl2.close();
});

test('a flipped byte in stored data is detected and never served', async () => {
  await using c = await startStream({ partitions: 1, env: { HADRON_SEGMENT_BYTES: '4096' } });
  const cl = new RawClient(c.url(0), c.tokens.full);
  for (let i = 0; i < 10; i++) await cl.publish(Array.from({ length: 10 }, (_, j) => testEvent(i * 10 + j, { data: Buffer.alloc(100, 0x11) })));
  await cl.close();
  assert.deepEqual(await c.kill(0, 'SIGTERM'), { code: 0, signal: null });
  const segs = segments(c);
  assert.ok(segs.length >= 3, `several segments (${segs.length})`);
  // Flip one payload byte of the 3rd record of the first (sealed) segment.
  const first = fs.readFileSync(segs[0]!);
  let pos = 0;
  for (let r = 0; r < 2; r++) pos += 8 + first.readUInt32LE(pos);
  const target = pos + 8 + 16 + 5;
  first[target] = first[target]! ^ 0xff;
  fs.writeFileSync(segs[0]!, first);

  await c.startPartition(0);
  const cl2 = new RawClient(c.url(0), c.tokens.full);
  const sub = cl2.subscribe({ group: 'g', maxBatchSize: 100, start: { beginning: true } });
  const d = await sub.next();
  assert.deepEqual(d.events.map((e) => e.id), ['id-0', 'id-1'], 'records before the corrupt one are served');
  sub.ack();
  const err = await sub.ended();
  assert.ok(err instanceof GrpcStatusError, String(err));
  assert.equal(err.grpcStatus, Status.DATA_LOSS);
  assert.match(err.message, /stored event at offset 3 is corrupt \(checksum mismatch\) and will not be served/);
  assert.ok((await metric(c, 'hadron_stream_corrupt_records_total')) >= 1);
  // a reader starting after the corrupt record still gets the rest
  const later = cl2.subscribe({ group: 'h', maxBatchSize: 100, start: { offset: 4 } });
  assert.equal((await later.next()).events[0]!.id, 'id-3');
  later.close();
  await cl2.close();
  await c.kill(0, 'SIGTERM');

  // Corruption in the last segment after a CLEAN shutdown is not a torn write: refuse to start.
  const lastSeg = segments(c).at(-1)!;
  const buf = fs.readFileSync(lastSeg);
  buf[30] = buf[30]! ^ 0xff;
  fs.writeFileSync(lastSeg, buf);
  await assert.rejects(c.startPartition(0), /exited during start-up \(code 1[\s\S]*DATA_CORRUPTION|corrupt record in/);
});

test('a full disk fails publishes with DISK_FULL, corrupts nothing, and recovers when space returns', async (t) => {
  const mounted = await withTmpfs(3 * 1024 * 1024, async (mnt) => {
    const filler = path.join(mnt, 'filler');
    fs.writeFileSync(filler, Buffer.alloc(1024 * 1024));
    await using c = await startStream({ partitions: 1, env: { STORAGE_DATA_PATH: mnt } });
    const cl = new RawClient(c.url(0), c.tokens.full);
    let lastAcked = 0;
    let failure: unknown;
    for (let b = 0; b < 200 && !failure; b++) {
      try {
        lastAcked = (await cl.publish(Array.from({ length: 20 }, (_, i) => testEvent(b * 20 + i, { data: Buffer.alloc(1024, b) })))).offset;
      } catch (err) {
        failure = err;
      }
    }
    assert.ok(failure instanceof GrpcStatusError, `publishing stopped with an error: ${String(failure)}`);
    assert.equal(failure.grpcStatus, Status.RESOURCE_EXHAUSTED);
    assert.equal(failure.code, 'DISK_FULL');
    assert.equal(failure.retriable, true);
    assert.match(failure.message, /no space left on the partition's volume while appending events; nothing was written/);
    assert.ok(lastAcked > 0);
    // Everything acknowledged is readable, densely, and the server is still healthy.
    const all = await readAll(cl, lastAcked);
    assert.deepEqual(all.map((e) => e.offset), Array.from({ length: lastAcked }, (_, i) => i + 1));
    assert.equal((await fetch(`${c.metricsUrl(0)}/health`)).status, 200);
    // Free space: the next publish succeeds with the next offset.
    fs.rmSync(filler);
    assert.equal((await cl.publish([testEvent(0)])).offset, lastAcked + 1);
    await cl.close();
    const stopped = await c.stop();
    assert.equal(stopped[0]!.code, 0);
  });
  if (!mounted) t.skip('mounting a tmpfs needs root');
});
