/**
 * A full volume must not become a crash loop (issue 14 item 8), end to end on a real tmpfs with
 * the real server process: segment rolls due while full, restart while full, durable groups
 * created and acked while full, and writing resuming by itself once space is freed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { GrpcStatusError } from '@hadron/core';
import { RawClient, readAll, startStream, testEvent, withTmpfs } from '@hadron/testing';

/** Writes to `file` until the volume has not one byte left (tmpfs allocates whole pages). */
function fillVolume(file: string): void {
  const fd = fs.openSync(file, 'a');
  try {
    for (const chunk of [64 * 1024, 4096, 1]) {
      const buf = Buffer.alloc(chunk, 0x5a);
      for (let i = 0; i < 100_000; i++) {
        try {
          fs.writeSync(fd, buf);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

test('a full volume: the server stays up, refuses writes with DISK_FULL, serves reads, restarts while full and resumes when space appears', async (t) => {
  const mounted = await withTmpfs(3 * 1024 * 1024, async (mnt) => {
    const filler = path.join(mnt, 'filler');
    fs.writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024));
    // Small segments: rolls are due all the time, also when the volume is full.
    await using c = await startStream({ partitions: 1, env: { STORAGE_DATA_PATH: mnt, HADRON_SEGMENT_BYTES: String(16 * 1024) } });
    const logDir = path.join(mnt, 'events-0', 'log');
    let exitedEarly = false;
    void c.procs.get(0)!.exited.then(() => (exitedEarly = true));
    const cl = new RawClient(c.url(0), c.tokens.full);
    let lastAcked = (await cl.publish(Array.from({ length: 10 }, (_, i) => testEvent(i)))).offset;
    const old = cl.subscribe({ group: 'old', durable: true, maxBatchSize: 5, start: { beginning: true } });
    assert.deepEqual((await old.next()).events.map((e) => e.id), ['id-0', 'id-1', 'id-2', 'id-3', 'id-4']);

    // Make a segment roll due (the active segment passes HADRON_SEGMENT_BYTES; the roll happens
    // at the next append), then fill every last byte of the volume.
    lastAcked = (await cl.publish(Array.from({ length: 20 }, (_, j) => testEvent(j, { data: Buffer.alloc(1024, j) })))).offset;
    fillVolume(path.join(mnt, 'filler2'));
    const failures: unknown[] = [];
    for (let i = 0; i < 5; i++) {
      await cl.publish([testEvent(i, { data: Buffer.alloc(1024) })]).then(
        () => assert.fail('a publish succeeded on a full volume'),
        (err: unknown) => failures.push(err),
      );
    }
    for (const f of failures) {
      assert.ok(f instanceof GrpcStatusError, String(f));
      assert.equal(f.code, 'DISK_FULL', f.message);
    }
    assert.equal(exitedEarly, false, 'the server is still running');
    assert.equal((await fetch(`${c.metricsUrl(0)}/health`)).status, 200);

    // Reads and subscriptions are served; acking a durable group while full is not fatal.
    old.ack();
    assert.deepEqual((await old.next()).events.map((e) => e.id), ['id-5', 'id-6', 'id-7', 'id-8', 'id-9']);
    const all = await readAll(cl, lastAcked);
    assert.deepEqual(all.map((e) => e.offset), Array.from({ length: lastAcked }, (_, i) => i + 1));
    // A new durable group either fits or is refused with DISK_FULL; it must not poison the name.
    const early = cl.subscribe({ group: 'new', durable: true, maxBatchSize: 5, start: { beginning: true } });
    const first = await early.next().then(
      () => 'delivered',
      (err: unknown) => err,
    );
    if (first !== 'delivered') {
      assert.ok(first instanceof GrpcStatusError && first.code === 'DISK_FULL', `new group refused with DISK_FULL (${String(first)})`);
    }
    early.close();
    old.close();
    await cl.close();
    assert.equal(exitedEarly, false, 'the server is still running');

    // Restart while the volume is still full: start-up works and leaves no temp file behind.
    assert.equal((await c.kill(0, 'SIGTERM')).code, 0);
    await c.startPartition(0);
    assert.deepEqual(fs.readdirSync(logDir).filter((n) => n.endsWith('.tmp')), []);
    const cl2 = new RawClient(c.url(0), c.tokens.full);
    await assert.rejects(cl2.publish([testEvent(0, { data: Buffer.alloc(4096) })]), (e: unknown) => e instanceof GrpcStatusError && e.code === 'DISK_FULL');

    // Space appears: writing resumes by itself with the next offset; groups work.
    fs.rmSync(filler);
    fs.rmSync(path.join(mnt, 'filler2'));
    assert.equal((await cl2.publish([testEvent(1)])).offset, lastAcked + 1);
    for (let i = 0; i < 40; i++) await cl2.publish(Array.from({ length: 5 }, (_, j) => testEvent(j, { data: Buffer.alloc(1024) })));
    assert.ok(fs.readdirSync(logDir).filter((n) => n.endsWith('.log')).length > 2, 'segments roll again');
    const fresh = cl2.subscribe({ group: 'new', durable: true, maxBatchSize: 5, start: { beginning: true } });
    assert.equal((await fresh.next()).events[0]!.id, 'id-0');
    fresh.close();
    const resumed = cl2.subscribe({ group: 'old', durable: true, maxBatchSize: 5 });
    const d = await resumed.next();
    assert.ok(d.events.length > 0 && d.lastIncludedOffset >= 5, `durable group resumes (${d.lastIncludedOffset})`);
    resumed.close();
    await cl2.close();
    const stopped = await c.stop();
    assert.equal(stopped[0]!.code, 0);
  });
  if (!mounted) t.skip('mounting a tmpfs needs root');
});
