/**
 * Records written in place (issue 11, record-batch.ts): the same bytes on disk as the copying
 * encoder, payload views kept only when that keeps no more memory alive than a copy, short
 * writes continued and a full volume refused without consuming offsets — through a real EventLog
 * over the power-loss simulator.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@hadron/core';
import { EventLog } from './event-log.js';
import { RECORD_OVERHEAD, parseRecord, writeRecord } from './layout.js';
import { MIN_IN_PLACE_RECORD_BYTES, RecordBatchEncoder, payloadAt, skipBytes } from './record-batch.js';
import { SimFs } from './sim-fs.js';

/** `sizes` payloads as views of one exact-size buffer, as a joined request message holds them. */
function request(sizes: number[], fill = 0): Buffer[] {
  const buf = Buffer.allocUnsafeSlow(sizes.reduce((a, b) => a + b, 0));
  let pos = 0;
  return sizes.map((n, i) => {
    const p = buf.subarray(pos, pos + n);
    p.fill((fill + i) % 256);
    pos += n;
    return p;
  });
}

const recordBytes = (ps: readonly Uint8Array[]): number => ps.reduce((n, p) => n + RECORD_OVERHEAD + p.length, 0);

test('in-place records are byte-for-byte those writeRecord makes, mixed with copied ones', () => {
  const enc = new RecordBatchEncoder();
  const a = request([1000, 300, 2000]);
  const b = [Buffer.from('small one'), Buffer.from('small two')];
  const c = request([700, 700], 7);
  enc.begin(a.length + c.length, recordBytes(b));
  const all: Array<[Buffer, boolean]> = [...a.map((p): [Buffer, boolean] => [p, true]), ...b.map((p): [Buffer, boolean] => [p, false]), ...c.map((p): [Buffer, boolean] => [p, true])];
  all.forEach(([p, inPlace], i) => enc.add(100 + i, 1_800_000_000_000 + i, p, inPlace));
  const { iov, refs } = enc.finish();
  const payloads = all.map((_, i) => payloadAt(refs, i));
  const expected = Buffer.alloc(recordBytes(all.map(([p]) => p)));
  let pos = 0;
  all.forEach(([p], i) => (pos = writeRecord(expected, pos, 100 + i, 1_800_000_000_000 + i, p)));
  assert.ok(Buffer.concat(iov).equals(expected), 'same bytes as the copying encoder');
  // In-place payloads are the request's own bytes (no copy); copied ones live in the write buffer.
  assert.deepEqual(payloads.map((p) => p.toString('hex')), all.map(([p]) => p.toString('hex')));
  assert.equal(payloads[0]!.buffer, a[0]!.buffer);
  b[0]!.fill(0);
  assert.equal(payloads[3]!.toString(), 'small one', 'a copied payload is independent of its source');
  // Every record parses with a valid checksum.
  const parsed = parseRecord(expected, 0);
  assert.equal(parsed.kind, 'ok');
});

test('payloads are written in place only when that keeps no more memory alive than a copy', () => {
  const req = request([1024, 1024, 1024]);
  assert.equal(RecordBatchEncoder.canWriteInPlace(req, recordBytes(req)), true, 'a joined request message');
  // Views into a larger buffer (e.g. a 64 KiB socket read holding a small request): copied.
  const big = Buffer.allocUnsafeSlow(64 * 1024);
  const views = [big.subarray(0, 1024), big.subarray(1024, 2048)];
  assert.equal(RecordBatchEncoder.canWriteInPlace(views, recordBytes(views)), false);
  // Separate buffers (events encoded one by one): copied.
  const separate = [Buffer.alloc(1024), Buffer.alloc(1024)];
  assert.equal(RecordBatchEncoder.canWriteInPlace(separate, recordBytes(separate)), false);
  // Tiny events: an iovec each costs more than the copy.
  const tiny = request(Array.from({ length: 50 }, () => MIN_IN_PLACE_RECORD_BYTES - RECORD_OVERHEAD - 100));
  assert.equal(RecordBatchEncoder.canWriteInPlace(tiny, recordBytes(tiny)), false);
});

test('skipBytes continues a short write where it stopped', () => {
  const iov = [Buffer.from('abc'), Buffer.from('defg'), Buffer.from('h')];
  assert.equal(Buffer.concat(skipBytes(iov, 0)).toString(), 'abcdefgh');
  assert.equal(Buffer.concat(skipBytes(iov, 3)).toString(), 'defgh');
  assert.equal(Buffer.concat(skipBytes(iov, 5)).toString(), 'fgh');
  assert.equal(Buffer.concat(skipBytes(iov, 8)).toString(), '');
});

test('an EventLog writing requests in place: short writes, a full volume, power loss and reads all keep the bytes', async () => {
  const sim = new SimFs({ capacityBytes: 200_000 });
  const dir = '/data/log';
  let log = await EventLog.open(dir, { logger: silentLogger, fs: sim.view() });
  const expected: Buffer[] = [];
  let refused = 0;
  try {
    for (let r = 0; refused === 0 && r < 1000; r++) {
      const req = request(Array.from({ length: 10 }, (_, i) => 900 + ((r * 10 + i) % 300)), r);
      try {
        const got = await log.append(req, { fsync: true });
        assert.deepEqual(got, { first: expected.length + 1, last: expected.length + 10 });
        expected.push(...req.map((p) => Buffer.from(p)));
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'DISK_FULL', String(err));
        refused++;
      }
    }
    assert.equal(refused, 1, 'the volume filled up (a short write, then ENOSPC)');
    assert.equal(log.lastOffset, expected.length, 'a refused append consumes no offsets');
    // Served from the tail cache: the request bytes themselves.
    const tail = await log.read(1, { maxEvents: expected.length });
    assert.deepEqual(tail.map((e) => e.payload.toString('hex')), expected.map((p) => p.toString('hex')));
  } catch (err) {
    await log.close().catch(() => undefined);
    throw err;
  }
  // Power loss without a shutdown: every acknowledged (fsync) append must be on disk.
  sim.powerLoss();
  sim.capacityBytes = Infinity;
  log = await EventLog.open(dir, { logger: silentLogger, fs: sim.view() });
  try {
    assert.equal(log.lastOffset, expected.length);
    const disk = await log.read(1, { maxEvents: expected.length });
    assert.equal(disk.length, expected.length);
    disk.forEach((e, i) => assert.ok(e.payload.equals(expected[i]!), `offset ${i + 1} reads back as written`));
  } finally {
    await log.close();
  }
});
