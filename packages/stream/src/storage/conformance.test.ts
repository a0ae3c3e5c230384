/**
 * The storage contract: every PartitionStore engine must pass these.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '@hadron/core';
import { FileStore, MemoryStore, type PartitionStore } from './partition-store.js';

const engines: Array<[string, () => Promise<{ store: PartitionStore; reopen?: () => Promise<PartitionStore> }>]> = [
  ['MemoryStore', async () => ({ store: new MemoryStore() })],
  [
    'FileStore',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-conf-'));
      const open = (): Promise<PartitionStore> => FileStore.open(dir, { logger: silentLogger, segmentBytes: 4096 });
      return { store: await open(), reopen: open };
    },
  ],
];

const ev = (i: number): Buffer => Buffer.from(`event-${i}`);

for (const [name, make] of engines) {
  describe(`PartitionStore conformance: ${name}`, () => {
    test('a new store is empty and the first offset written is 1', async () => {
      const { store } = await make();
      assert.equal(store.lastOffset, 0);
      assert.equal(store.firstOffset, 1);
      const r = await store.append([ev(1)], { fsync: true });
      assert.deepEqual(r, { first: 1, last: 1 });
      await store.close();
    });

    test('offsets are dense across batches and reads return exact payloads in order', async () => {
      const { store } = await make();
      let expect = 1;
      for (let b = 0; b < 50; b++) {
        const batch = Array.from({ length: 7 }, (_, i) => ev(b * 7 + i + 1));
        const r = await store.append(batch, { fsync: b % 2 === 0 });
        assert.equal(r.first, expect);
        assert.equal(r.last, expect + 6);
        expect += 7;
      }
      assert.equal(store.lastOffset, 350);
      let next = 1;
      while (next <= 350) {
        const got = await store.readFrom(next, { maxEvents: 33 });
        assert.ok(got.length > 0 && got.length <= 33);
        for (const e of got) {
          assert.equal(e.offset, next);
          assert.deepEqual(e.payload, ev(next));
          next++;
        }
      }
      assert.deepEqual(await store.readFrom(351, { maxEvents: 10 }), []);
      await store.close();
    });

    test('concurrent appends get disjoint dense ranges (group commit)', async () => {
      const { store } = await make();
      const rs = await Promise.all(Array.from({ length: 100 }, (_, i) => store.append([ev(i), ev(i)], { fsync: true })));
      const offsets = rs.flatMap((r) => [r.first, r.last]).sort((a, b) => a - b);
      assert.deepEqual(offsets, Array.from({ length: 200 }, (_, i) => i + 1));
      await store.close();
    });

    test('an empty batch is rejected and consumes no offset', async () => {
      const { store } = await make();
      await assert.rejects(store.append([], { fsync: true }), { code: 'EMPTY_BATCH' });
      assert.deepEqual(await store.append([ev(1)], { fsync: true }), { first: 1, last: 1 });
      await store.close();
    });

    test('durable groups and acked offsets are stored, updated and deleted', async () => {
      const { store, reopen } = await make();
      await store.append(Array.from({ length: 50 }, (_, i) => ev(i + 1)), { fsync: false });
      await store.createDurableGroup('g1', 20, 0);
      await store.createDurableGroup('g2', 5, 7);
      await store.commitGroupOffset('g1', 42);
      assert.deepEqual(store.durableGroups(), [
        { name: 'g1', maxBatchSize: 20, offset: 42 },
        { name: 'g2', maxBatchSize: 5, offset: 7 },
      ]);
      await store.deleteGroup('g2');
      assert.deepEqual(store.durableGroups(), [{ name: 'g1', maxBatchSize: 20, offset: 42 }]);
      if (reopen) {
        await store.close();
        const again = await reopen();
        assert.deepEqual(again.durableGroups(), [{ name: 'g1', maxBatchSize: 20, offset: 42 }]);
        await again.close();
      } else await store.close();
    });

    test('progress beyond the end of the log is refused and stores nothing', async () => {
      const { store } = await make();
      await store.append([ev(1), ev(2)], { fsync: false });
      await store.createDurableGroup('g', 10, 2);
      await assert.rejects(store.createDurableGroup('h', 10, 3), { code: 'INVALID_ARGUMENT', message: /progress offset 3 is beyond the end of the log \(last offset 2\)/ });
      await assert.rejects(store.commitGroupOffset('g', 3), { code: 'INVALID_ARGUMENT' });
      await assert.rejects(store.meta.commit([{ kind: 'put', key: 'x', value: Buffer.from('y') }], { sync: true, afterLog: 3 }), { code: 'INVALID_ARGUMENT' });
      assert.deepEqual(store.durableGroups(), [{ name: 'g', maxBatchSize: 10, offset: 2 }]);
      assert.equal(store.meta.get('x'), undefined);
      await store.close();
    });

    test('compactBefore hides older offsets, never exceeds lastOffset+1, and survives reopen', async () => {
      const { store, reopen } = await make();
      for (let i = 1; i <= 100; i++) await store.append([ev(i)], { fsync: false });
      const r = await store.compactBefore(61);
      assert.equal(r.firstOffset, 61);
      assert.equal(store.firstOffset, 61);
      const got = await store.readFrom(1, { maxEvents: 5 });
      assert.deepEqual(
        got.map((e) => e.offset),
        [61, 62, 63, 64, 65],
      );
      assert.equal((await store.compactBefore(1000)).firstOffset, 101);
      assert.deepEqual(await store.append([ev(101)], { fsync: true }), { first: 101, last: 101 });
      if (reopen) {
        await store.close();
        const again = await reopen();
        assert.equal(again.firstOffset, 101);
        assert.equal(again.lastOffset, 101);
        await again.close();
      } else await store.close();
    });

    test('lastOffsetBefore finds the cut by append time', async () => {
      const { store } = await make();
      await store.append([ev(1), ev(2)], { fsync: false });
      const mid = Date.now() + 5;
      await new Promise((r) => setTimeout(r, 15));
      await store.append([ev(3)], { fsync: false });
      assert.equal(await store.lastOffsetBefore(mid), 2);
      assert.equal(await store.lastOffsetBefore(0), 0);
      assert.equal(await store.lastOffsetBefore(Date.now() + 1000), 3);
      await store.close();
    });

    test('meta keys commit atomically and scan by prefix in key order', async () => {
      const { store } = await make();
      await store.meta.commit(
        [
          { kind: 'put', key: 'p/x/b', value: Buffer.from('2') },
          { kind: 'put', key: 'p/x/a', value: Buffer.from('1') },
          { kind: 'put', key: 'p/y/a', value: Buffer.from('3') },
        ],
        { sync: true },
      );
      await store.meta.commit([{ kind: 'del', key: 'p/x/b' }], { sync: true });
      assert.deepEqual(
        store.meta.scan('p/x/').map(([k, v]) => [k, v.toString()]),
        [['p/x/a', '1']],
      );
      await store.close();
    });

    test('appends notify listeners with the new last offset', async () => {
      const { store } = await make();
      const seen: number[] = [];
      const off = store.onAppend((l) => seen.push(l));
      await store.append([ev(1), ev(2)], { fsync: false });
      await store.append([ev(3)], { fsync: true });
      off();
      await store.append([ev(4)], { fsync: false });
      assert.deepEqual(seen, [2, 3]);
      await store.close();
    });
  });
}
