/**
 * Records copied from another log (replication) keep their offsets, append times and bytes; a
 * copy that does not continue the log is refused with nothing written; an empty log can start at
 * a leader's first readable offset. Checked across a restart under simulated power loss.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HadronError, silentLogger } from '@hadron/core';
import { FileStore } from './partition-store.js';
import { SimFs } from './sim-fs.js';

const open = (sim: SimFs): Promise<FileStore> => FileStore.open('/copy', { logger: silentLogger, fs: sim.view(), flushIntervalMs: 600_000, segmentBytes: 4096 });
const rec = (offset: number, timestamp: number): { offset: number; timestamp: number; payload: Buffer } => ({ offset, timestamp, payload: Buffer.from(`e${offset}`) });

test('appendReplicated keeps offsets and times, starts an empty copy at the first offset given, refuses gaps and overlaps', async () => {
  const sim = new SimFs();
  let store = await open(sim);
  // An empty copy of a log whose retention start is 41.
  await store.appendReplicated([rec(41, 1000), rec(42, 1000), rec(43, 1005)], { fsync: true });
  assert.equal(store.firstOffset, 41);
  assert.equal(store.lastOffset, 43);
  for (const bad of [[rec(45, 1006)], [rec(43, 1006)], [rec(44, 1006), rec(46, 1006)]]) {
    await assert.rejects(store.appendReplicated(bad, { fsync: true }), (e: unknown) => e instanceof HadronError && e.code === 'INVALID_ARGUMENT', `refused: ${bad.map((r) => r.offset).join(',')}`);
  }
  assert.equal(store.lastOffset, 43, 'nothing written by the refused appends');
  // Many more, across segment rolls, with times that differ per record.
  const more = Array.from({ length: 300 }, (_, i) => rec(44 + i, 2000 + i));
  await store.appendReplicated(more, { fsync: true });
  // Local appends continue after the copy, with a time no earlier than the last copied one.
  const { first } = await store.append([Buffer.from('local')], { fsync: true });
  assert.equal(first, 344);
  await store.close();
  sim.powerLoss();
  store = await open(sim);
  const all = [];
  for (let o = 1; o <= store.lastOffset; ) {
    const batch = await store.readFrom(o, { maxEvents: 1000 });
    all.push(...batch);
    o = batch[batch.length - 1]!.offset + 1;
  }
  assert.deepEqual(all.slice(0, 303).map((e) => [e.offset, e.timestamp, e.payload.toString()]), [rec(41, 1000), rec(42, 1000), rec(43, 1005), ...more].map((r) => [r.offset, r.timestamp, r.payload.toString()]));
  assert.equal(all[303]!.offset, 344);
  assert.ok(all[303]!.timestamp >= 2299);
  assert.ok(store.segmentCount > 1, 'the copy rolled segments');
  // Time-based lookups use the copied times.
  assert.equal(await store.lastOffsetBefore(2000), 43);
  await store.close();
});
