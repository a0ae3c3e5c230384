/**
 * Inspection and group administration (issue 10) against real partition processes: the client's
 * streamInfo / groups / read / resetGroup / deleteGroup over gRPC.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HadronError } from '@hadron/core';
import { startStream, type TestStream, until } from '@hadron/testing';
import { createClient } from './client.js';
import { partitionOf } from './hash.js';
import type { Delivery } from './stream-subscription.js';

function keyFor(p: number, n: number): string {
  for (let i = 0; ; i++) if (partitionOf({ id: '', source: '', optattrs: { partitionkey: `k${i}` } }, n) === p) return `k${i}`;
}

async function rejectsWith(p: Promise<unknown>, code: string, text: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof HadronError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, text);
    return true;
  });
}

test('inspection API and group administration', async (t) => {
  const cluster: TestStream = await startStream({ partitions: 2 });
  t.after(() => cluster[Symbol.asyncDispose]());
  const client = createClient({ url: cluster.url(0), token: cluster.tokens.full });
  t.after(() => client.close());
  const reader = createClient({ url: cluster.url(0), token: cluster.tokens.reader });
  t.after(() => reader.close());
  const k0 = keyFor(0, 2);
  const k1 = keyFor(1, 2);
  // 6 events on partition 0, 4 on partition 1.
  const before = Date.now();
  await client.publish(Array.from({ length: 6 }, (_, i) => ({ id: `a${i}`, source: 's', type: 't', partitionkey: k0, data: Buffer.from([i, 0xff, 0x00]) })));
  await client.publish(Array.from({ length: 4 }, (_, i) => ({ id: `b${i}`, source: 's', type: 't', partitionkey: k1, data: `text ${i}` })));

  await t.test('streamInfo: offsets, sizes, segments, retention per partition, and totals', async () => {
    const info = await reader.streamInfo();
    assert.equal(info.stream, 'events');
    assert.deepEqual(info.failures, []);
    assert.deepEqual(
      info.partitions.map((p) => [p.partition, p.firstOffset, p.lastOffset, p.events]),
      [
        [0, 1, 6, 6],
        [1, 1, 4, 4],
      ],
    );
    for (const p of info.partitions) {
      assert.ok(p.sizeBytes > 0, 'size');
      assert.ok(p.segments >= 1, 'segments');
      assert.equal(p.address, cluster.url(p.partition).replace('http://', ''));
      assert.ok(p.lastEventTimeMs !== undefined && p.lastEventTimeMs >= before - 1000, 'last event time');
      assert.ok(['time', 'retain'].includes(p.retention.strategy), p.retention.strategy);
    }
    assert.equal(info.totals.events, 10);
    assert.equal(info.totals.sizeBytes, info.partitions[0]!.sizeBytes + info.partitions[1]!.sizeBytes);
    assert.deepEqual(info.groups, []);
  });

  await t.test('read: events by partition and offset, byte-exact, without creating a group', async () => {
    const r = await reader.read({ partition: 0, offset: 2, count: 3 });
    assert.deepEqual(
      r.events.map((e) => [e.offset, e.event?.id]),
      [
        [2, 'a1'],
        [3, 'a2'],
        [4, 'a3'],
      ],
    );
    assert.deepEqual([...r.events[0]!.event!.data!], [1, 0xff, 0x00]);
    assert.equal(r.lastOffset, 6);
    const tail = await reader.read({ partition: 1, offset: 4, count: 10 });
    assert.deepEqual(tail.events.map((e) => e.offset), [4]);
    assert.deepEqual((await reader.read({ partition: 1, offset: 5 })).events, []);
    assert.deepEqual(await reader.groups(), [], 'reading joined no group');
    await rejectsWith(reader.read({ partition: 7, offset: 1 }), 'NOT_FOUND', /partition 7 does not exist \(the stream has partitions 0, 1\)/);
    await rejectsWith(reader.read({ partition: 0, count: 5000 }), 'INVALID_ARGUMENT', /count must be an integer from 1 to 1000/);
  });

  await t.test('groups: acked offset, lag, members; reset and delete refused while members are connected', async () => {
    const seen: Delivery[] = [];
    const sub = client.subscribe({ group: 'billing', durable: true, batchSize: 2, startPoint: 'beginning' }, (d) => void seen.push(d));
    await until(async () => (await client.groups()).find((g) => g.name === 'billing')?.lag === 0, 10_000, 'billing caught up');
    const g = (await client.groups()).find((x) => x.name === 'billing')!;
    assert.equal(g.durable, true);
    assert.equal(g.members, 2, 'one member per partition');
    assert.deepEqual(
      g.partitions.map((p) => [p.partition, p.ackedOffset, p.lag, p.members, p.oldestUnackedTimeMs]),
      [
        [0, 6, 0, 1, undefined],
        [1, 4, 0, 1, undefined],
      ],
    );

    await rejectsWith(client.resetGroup('billing', { to: 'beginning' }), 'GROUP_BUSY', /cannot reset group 'billing': 2 member\(s\) connected; stop them first or use --force/);
    await rejectsWith(client.deleteGroup('billing'), 'GROUP_BUSY', /cannot delete group 'billing'/);
    await rejectsWith(reader.resetGroup('billing', { to: 'beginning' }, { force: true }), 'PERMISSION_DENIED', /token 't-reader' may not administer groups/);

    // --force: members are disconnected, the group moves, the client reconnects and gets the
    // events again from the new position.
    const n = seen.length;
    const res = await client.resetGroup('billing', { to: 'offset', offset: 5 }, { force: true, partition: 0 });
    assert.deepEqual(res, [{ partition: 0, previousAckedOffset: 6, ackedOffset: 4, membersDisconnected: 1 }]);
    await until(() => seen.slice(n).some((d) => d.partition === 0 && d.lastIncludedOffset === 6), 10_000, 'redelivered from offset 5 after the reset');
    const again = seen.slice(n).filter((d) => d.partition === 0);
    assert.equal(again[0]!.events[0]!.offset, 5);
    await sub.close();
    await until(async () => (await client.groups()).find((x) => x.name === 'billing')?.members === 0, 10_000, 'members gone');
  });

  await t.test('reset without members: beginning, time, latest; lag and oldest unacked event', async () => {
    const toStart = await client.resetGroup('billing', { to: 'beginning' });
    assert.deepEqual(toStart.map((r) => [r.partition, r.ackedOffset]), [
      [0, 0],
      [1, 0],
    ]);
    const g = (await client.groups()).find((x) => x.name === 'billing')!;
    assert.equal(g.lag, 10);
    assert.ok(g.oldestUnackedTimeMs !== undefined && g.oldestUnackedTimeMs >= before - 1000 && g.oldestUnackedTimeMs <= Date.now());
    const future = await client.resetGroup('billing', { to: 'time', time: Date.now() + 3_600_000 });
    assert.deepEqual(future.map((r) => r.ackedOffset), [6, 4], 'a time after every event = latest');
    const past = await client.resetGroup('billing', { to: 'time', time: new Date(0) });
    assert.deepEqual(past.map((r) => r.ackedOffset), [0, 0]);
    const latest = await client.resetGroup('billing', { to: 'latest' });
    assert.deepEqual(latest.map((r) => r.ackedOffset), [6, 4]);
    // Beyond the end is clamped to the end, not an error that leaves the group half-moved.
    const beyond = await client.resetGroup('billing', { to: 'offset', offset: 1000 });
    assert.deepEqual(beyond.map((r) => r.ackedOffset), [6, 4]);
    await rejectsWith(client.resetGroup('billing', { to: 'offset', offset: 0 }), 'INVALID_ARGUMENT', /reset offset must be an integer ≥ 1, got 0/);
    await rejectsWith(client.resetGroup('nope', { to: 'latest' }), 'NOT_FOUND', /group 'nope' does not exist$/);
  });

  await t.test('a reset position is stored: a new member resumes from it', async () => {
    await client.resetGroup('billing', { to: 'offset', offset: 3 }, { partition: 1 });
    const got: number[] = [];
    const sub = client.subscribe({ group: 'billing', durable: true }, (d) => void got.push(...d.events.filter((e) => e.partition === 1).map((e) => e.offset)));
    await until(() => got.includes(4), 10_000, 'partition 1 redelivered from 3');
    assert.deepEqual(got, [3, 4]);
    await sub.close();
    await until(async () => (await client.groups()).find((x) => x.name === 'billing')?.members === 0, 10_000, 'members gone');
  });

  await t.test('delete removes the group everywhere; deleting an unknown group reports it', async () => {
    const res = await client.deleteGroup('billing');
    assert.deepEqual(res.map((r) => [r.partition, r.deleted]), [
      [0, true],
      [1, true],
    ]);
    assert.deepEqual(await client.groups(), []);
    assert.deepEqual((await client.deleteGroup('billing')).map((r) => r.deleted), [false, false]);
  });
});
