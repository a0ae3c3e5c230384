/**
 * Targeted durability defects, each reproduced with the power-loss simulator (SimFs): progress
 * past the durable log end (issue 14 item 1), missing fsyncs (item 2) and a full volume (item 8).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HadronError, silentLogger, type Logger } from '@hadron/core';
import { encodeEvent } from '@hadron/proto';
import { FileStore } from './partition-store.js';
import { MetaStore } from './meta-store.js';
import { SimFs } from './sim-fs.js';
import { indexFileName, INDEX_MAGIC, metaKeys, readU64, u64 } from './layout.js';
import { Subscriptions, type Delivery, type MemberTransport } from '../subscriptions.js';
import { StreamMetrics } from '../metrics.js';
import { until } from '@hadron/testing';

const DIR = '/data/events-0';
const LOG = `${DIR}/log`;

interface Captured {
  level: string;
  obj: Record<string, unknown>;
  msg: string;
}

/** A logger that records what it is told (only the methods storage uses). */
function captureLogger(lines: Captured[]): Logger {
  const at =
    (level: string) =>
    (obj: unknown, msg?: string): void => {
      lines.push({ level, obj: typeof obj === 'object' && obj ? (obj as Record<string, unknown>) : {}, msg: msg ?? String(obj) });
    };
  const l = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), fatal: at('fatal'), trace: at('trace') };
  return { ...l, child: () => l } as unknown as Logger;
}

// Valid CloudEvents (groups and pipelines skip undecodable stored events), unique per offset.
const payload = (i: number, size = 100): Buffer =>
  Buffer.from(encodeEvent({ id: `event-${i}`, source: 'test', specversion: '1.0', type: 't', optattrs: {}, data: Buffer.alloc(size, i % 251) }));
const batch = (from: number, n: number, size?: number): Buffer[] => Array.from({ length: n }, (_, i) => payload(from + i, size));

/** Every readable event, following segment boundaries (one read stops at the end of a segment). */
async function readAll(store: FileStore): Promise<Array<{ offset: number; payload: Buffer }>> {
  const out: Array<{ offset: number; payload: Buffer }> = [];
  for (let next = store.firstOffset; next <= store.lastOffset; ) {
    const got = await store.readFrom(next, { maxEvents: 1000 });
    if (got.length === 0) break;
    out.push(...got);
    next = got[got.length - 1]!.offset + 1;
  }
  return out;
}

function opener(sim: SimFs, opts: { segmentBytes?: number; logger?: Logger; onFatal?: (e: HadronError) => void } = {}): () => Promise<FileStore> {
  return () =>
    FileStore.open(DIR, {
      logger: opts.logger ?? silentLogger,
      fs: sim.view(),
      segmentBytes: opts.segmentBytes ?? 64 * 1024,
      // No timer-driven syncs: what is durable is decided by the code under test alone.
      flushIntervalMs: 600_000,
      onFatal: opts.onFatal,
    });
}

test('item 1: a group offset is never persisted past the durable end of the log', async () => {
  const sim = new SimFs();
  const open = opener(sim);
  let store = await open();
  await store.createDurableGroup('g', 10, 0);
  await store.append(batch(1, 100), { fsync: false }); // written, not yet fdatasync'ed
  await store.commitGroupOffset('g', 100); // the group acked all 100 deliveries
  sim.powerLoss();
  await store.close().catch(() => undefined);
  store = await open();
  // Before the fix the offset (100) was on disk and the events were not: the log came back
  // empty and the group would skip the next 100 events published.
  assert.equal(store.recovery.clampedProgress, 0, 'nothing needed clamping');
  assert.equal(store.lastOffset, 100, 'the commit made the log durable first');
  assert.deepEqual(store.durableGroups(), [{ name: 'g', maxBatchSize: 10, offset: 100 }]);
  await store.close();
});

test('item 1: pipeline progress waits for the log too (meta.commit afterLog)', async () => {
  const sim = new SimFs();
  const open = opener(sim);
  let store = await open();
  await store.append(batch(1, 5), { fsync: false });
  await store.meta.commit([{ kind: 'put', key: metaKeys.pipelineScanned('p'), value: u64(5) }], { sync: false, afterLog: 5 });
  await store.meta.commit([{ kind: 'put', key: 'x/unrelated', value: Buffer.from('1') }], { sync: true });
  sim.powerLoss();
  await store.close().catch(() => undefined);
  store = await open();
  assert.equal(store.lastOffset, 5);
  assert.equal(readU64(store.meta.get(metaKeys.pipelineScanned('p'))!, 0), 5);
  assert.equal(store.recovery.clampedProgress, 0);
  await store.close();
});

test('item 1: recovery clamps progress found beyond the log end, loudly, and the group then gets new events', async () => {
  const sim = new SimFs();
  const lines: Captured[] = [];
  const open = opener(sim, { logger: captureLogger(lines) });
  let store = await open();
  await store.append(batch(1, 10), { fsync: true });
  await store.createDurableGroup('g', 10, 0);
  await store.close();
  // A state written by an older version: progress past the end of a 10-event log.
  const kv = await MetaStore.open(DIR, { fs: sim.view() });
  await kv.commit(
    [
      { kind: 'put', key: metaKeys.groupOffset('g'), value: u64(500) },
      { kind: 'put', key: metaKeys.logStart, value: u64(600) },
      { kind: 'put', key: metaKeys.pipelineScanned('p'), value: u64(480) },
      { kind: 'put', key: metaKeys.pipelineInstance('p', 450), value: payload(450) },
      { kind: 'put', key: metaKeys.pipelineOutput('p', 450, 'only'), value: Buffer.from('out') },
      { kind: 'put', key: metaKeys.pipelineInstance('p', 7), value: payload(7) },
    ],
    { sync: true },
  );
  await kv.close();
  store = await open();
  assert.equal(store.recovery.clampedProgress, 4);
  assert.deepEqual(store.durableGroups(), [{ name: 'g', maxBatchSize: 10, offset: 10 }]);
  assert.equal(readU64(store.meta.get(metaKeys.pipelineScanned('p'))!, 0), 10);
  assert.equal(store.meta.get(metaKeys.pipelineInstance('p', 450)), undefined);
  assert.equal(store.meta.get(metaKeys.pipelineOutput('p', 450, 'only')), undefined);
  assert.ok(store.meta.get(metaKeys.pipelineInstance('p', 7)), 'an instance within the log is kept');
  assert.equal(store.firstOffset, 11);
  const errors = lines.filter((l) => l.level === 'error');
  assert.equal(errors.length, 4);
  assert.ok(errors.some((l) => l.obj.key === 'o/g' && l.obj.stored === 500 && l.obj.now === 10 && /clamped it to the log end/.test(l.msg)));
  // The next event takes offset 11 and is readable from the group's position.
  assert.deepEqual(await store.append([payload(11)], { fsync: true }), { first: 11, last: 11 });
  assert.deepEqual((await store.readFrom(11, { maxEvents: 10 })).map((e) => e.offset), [11]);
  await store.close();
  // The repair itself is durable: a second start finds nothing to clamp.
  store = await open();
  assert.equal(store.recovery.clampedProgress, 0);
  await store.close();
});

test('item 1+8: clamping works at a start on a full volume (kept in memory, redone at the next start)', async () => {
  const sim = new SimFs();
  const open = opener(sim);
  let store = await open();
  await store.append(batch(1, 10), { fsync: true });
  await store.close();
  const kv = await MetaStore.open(DIR, { fs: sim.view() });
  await kv.commit([{ kind: 'put', key: metaKeys.groupOffset('g'), value: u64(500) }, { kind: 'put', key: metaKeys.group('g'), value: Buffer.from('{"maxBatchSize":5}') }], { sync: true });
  await kv.close();
  sim.capacityBytes = sim.usedBytes;
  store = await open();
  assert.deepEqual(store.durableGroups(), [{ name: 'g', maxBatchSize: 5, offset: 10 }]);
  assert.equal(store.recovery.clampedProgress, 1);
  await store.close();
  sim.capacityBytes = Infinity;
  store = await open();
  assert.equal(store.recovery.clampedProgress, 1, 'redone (and now stored)');
  await store.close();
  store = await open();
  assert.equal(store.recovery.clampedProgress, 0);
  await store.close();
});

test('item 2: removing the clean-shutdown marker is durable before new writes (a torn tail is not taken for corruption)', async () => {
  // rng 0.25: every unsynced write survives, the last one torn; no unsynced name change survives.
  const sim = new SimFs({ rng: () => 0.25 });
  const open = opener(sim);
  let store = await open();
  await store.append(batch(1, 5), { fsync: true });
  await store.close(); // clean: writes the marker
  store = await open(); // removes it
  await store.append(batch(6, 5), { fsync: false });
  sim.powerLoss();
  await store.close().catch(() => undefined);
  // Before the fix the marker came back, and the torn tail made start-up fail with DATA_CORRUPTION.
  store = await open();
  assert.ok(store.lastOffset >= 5 && store.lastOffset < 10, `recovered ${store.lastOffset}`);
  assert.ok(store.recovery.truncatedBytes > 0, 'the torn tail was truncated');
  await store.close();
});

test('item 2: a sealed segment’s index is synced before it is named, and no temp file is left', async () => {
  // rng 0.99: no unsynced write survives; every unsynced name change does.
  const sim = new SimFs({ rng: () => 0.99 });
  const open = opener(sim, { segmentBytes: 2048 });
  const store = await open();
  for (let b = 0; b < 6; b++) await store.append(batch(b * 10 + 1, 10), { fsync: true });
  sim.powerLoss();
  await store.close().catch(() => undefined);
  const names = sim.list(LOG);
  assert.ok(names.filter((n) => n.endsWith('.log')).length >= 2, `rolled: ${names.join(' ')}`);
  assert.deepEqual(names.filter((n) => n.endsWith('.tmp')), []);
  const idx = sim.peek(`${LOG}/${indexFileName(1)}`);
  // Before the fix the rename survived but the bytes did not: an empty index.
  assert.ok(idx && idx.length > 36, `index has ${idx?.length} bytes`);
  assert.equal(idx.readUInt32LE(0), INDEX_MAGIC);
});

test('item 8: a segment roll due on a full volume is not fatal; start-up works while full; writing resumes when space appears', async () => {
  const sim = new SimFs();
  const fatal: HadronError[] = [];
  const open = opener(sim, { segmentBytes: 4096, onFatal: (e) => fatal.push(e) });
  let store = await open();
  await store.append(batch(1, 40), { fsync: true }); // > 4096 bytes: the next append rolls
  sim.capacityBytes = sim.usedBytes; // the volume is now full
  await assert.rejects(store.append(batch(41, 5), { fsync: true }), (e: unknown) => e instanceof HadronError && e.code === 'DISK_FULL');
  assert.deepEqual(fatal, [], 'no fatal error');
  assert.equal(store.lastOffset, 40, 'nothing consumed an offset');
  assert.equal((await readAll(store)).length, 40, 'reads still served');
  await store.close();
  // Restart while still full (before the fix: the recovery roll failed and left an .idx.tmp).
  store = await open();
  assert.equal(store.lastOffset, 40);
  assert.deepEqual(sim.list(LOG).filter((n) => n.endsWith('.tmp')), []);
  await assert.rejects(store.append(batch(41, 5), { fsync: true }), { code: 'DISK_FULL' });
  // Space appears: writes continue with the next offset, and the log rolls again.
  sim.capacityBytes = Infinity;
  assert.deepEqual(await store.append(batch(41, 5), { fsync: true }), { first: 41, last: 45 });
  assert.ok(sim.list(LOG).includes('00000000000000000041.log'), `rolled: ${sim.list(LOG).join(' ')}`);
  assert.deepEqual((await readAll(store)).map((e) => e.offset), Array.from({ length: 45 }, (_, i) => i + 1));
  assert.deepEqual(fatal, []);
  await store.close();
});

test('item 8: a meta.log write that fails with ENOSPC is undone; new groups and acks work once space is freed', async () => {
  const sim = new SimFs();
  const open = opener(sim);
  const store = await open();
  await store.append(batch(1, 20), { fsync: true });
  await store.createDurableGroup('g1', 10, 0);
  sim.capacityBytes = sim.usedBytes;
  await assert.rejects(store.createDurableGroup('g2', 10, 0), { code: 'DISK_FULL' });
  await assert.rejects(store.commitGroupOffset('g1', 10), { code: 'DISK_FULL' });
  assert.deepEqual(store.durableGroups(), [{ name: 'g1', maxBatchSize: 10, offset: 0 }], 'the failed commits left no trace in memory');
  sim.capacityBytes = Infinity;
  // Before the fix the meta store stayed failed: DISK_FULL forever, and the next ack was fatal.
  await store.createDurableGroup('g2', 10, 5);
  await store.commitGroupOffset('g1', 10);
  await store.close();
  const again = await open();
  assert.deepEqual(again.durableGroups(), [
    { name: 'g1', maxBatchSize: 10, offset: 10 },
    { name: 'g2', maxBatchSize: 10, offset: 5 },
  ]);
  await again.close();
});

test('item 8: retention frees whole segments on a full volume even though the cut cannot be stored', async () => {
  const sim = new SimFs();
  const store = await opener(sim, { segmentBytes: 2048 })();
  for (let b = 0; b < 10; b++) await store.append(batch(b * 10 + 1, 10), { fsync: true });
  const before = sim.list(LOG).filter((n) => n.endsWith('.log')).length;
  sim.capacityBytes = sim.usedBytes;
  await assert.rejects(store.compactBefore(80), { code: 'DISK_FULL' });
  const after = sim.list(LOG).filter((n) => n.endsWith('.log')).length;
  assert.ok(after < before, `segments freed: ${before} → ${after}`);
  assert.ok(store.firstOffset > 1 && store.firstOffset <= 80, `first offset ${store.firstOffset}`);
  assert.ok(sim.usedBytes < sim.capacityBytes, 'space was freed');
  // With room again, the exact cut is stored.
  sim.capacityBytes = Infinity;
  assert.deepEqual(await store.compactBefore(80), { firstOffset: 80 });
  await store.close();
});

test('item 8: durable groups on a full volume: join gets DISK_FULL then works once space is freed; acks are kept and persisted later', async () => {
  const sim = new SimFs();
  const store = await opener(sim)();
  await store.append(batch(1, 30), { fsync: true });
  const fatal: unknown[] = [];
  const subs = new Subscriptions({
    store,
    metrics: new StreamMetrics({ namespace: 'ns', stream: 's', statefulset: 's', pod: 's-0', partition: 0 }),
    logger: silentLogger,
    ackDeadlineMs: 60_000,
    nackBackoff: { baseMs: 10, maxMs: 10 },
    maxDeliveryBytes: 1 << 20,
    onFatal: (e) => fatal.push(e),
  });
  const deliveries: Delivery[] = [];
  const transport: MemberTransport = {
    send: async (d) => {
      deliveries.push(d);
    },
    fail: () => undefined,
  };
  const setup = { group: 'g', durable: true, maxBatchSize: 10, start: { kind: 'beginning' as const } };
  const existing = await subs.join({ ...setup, group: 'old' }, transport);
  await until(() => deliveries.length === 1, 5000, 'first delivery to the existing group');
  sim.capacityBytes = sim.usedBytes;
  await assert.rejects(subs.join(setup, transport), { code: 'DISK_FULL' });
  await assert.rejects(subs.join(setup, transport), { code: 'DISK_FULL' }, 'still full: still refused (not a stale promise)');
  existing.ack(); // cannot be persisted now: must not be fatal
  await until(() => deliveries.length === 2, 5000, 'delivery continues while full');
  assert.deepEqual(fatal, []);
  sim.capacityBytes = Infinity;
  const m = await subs.join(setup, transport);
  await until(() => deliveries.length === 3, 5000, 'the new durable group delivers');
  await until(() => store.durableGroups().find((g) => g.name === 'old')?.offset === 10, 5000, 'the kept ack is persisted once space is back');
  assert.deepEqual(store.durableGroups().map((g) => g.name), ['g', 'old']);
  assert.deepEqual(fatal, []);
  m.leave();
  existing.leave();
  subs.close();
  await store.close();
});
