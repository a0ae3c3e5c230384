/**
 * Consumer-group semantics, tested as pure domain logic over the in-memory engine.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncQueue, silentLogger } from '@hadron/core';
import { encodeEvent } from '@hadron/proto';
import { MemoryStore } from './storage/partition-store.js';
import { StreamMetrics } from './metrics.js';
import { Subscriptions, type Delivery, type GroupSetup, type MemberHandle } from './subscriptions.js';

const live: Subscriptions[] = [];
afterEach(() => {
  for (const s of live.splice(0)) s.close();
});

function harness(opts: { ackDeadlineMs?: number; baseMs?: number; maxMs?: number } = {}) {
  const store = new MemoryStore();
  const metrics = new StreamMetrics({ namespace: 'ns', stream: 's', statefulset: 's', pod: 's-0', partition: 0 });
  const fatal: unknown[] = [];
  const subs = new Subscriptions({
    store,
    metrics,
    logger: silentLogger,
    ackDeadlineMs: opts.ackDeadlineMs ?? 60_000,
    nackBackoff: { baseMs: opts.baseMs ?? 50, maxMs: opts.maxMs ?? 400 },
    maxDeliveryBytes: 1 << 20,
    onFatal: (e) => fatal.push(e),
  });
  live.push(subs);
  const event = (i: number) => encodeEvent({ id: `e${i}`, source: 'test', specversion: '1.0', type: 't', optattrs: {}, data: Buffer.alloc(0) });
  const publish = (n: number) => store.append(Array.from({ length: n }, (_, i) => event(store.lastOffset + i + 1)));
  async function join(setup: Partial<GroupSetup> & { group: string }) {
    const q = new AsyncQueue<Delivery & { at: number }>();
    const handle: MemberHandle = await subs.join(
      { durable: false, maxBatchSize: 10, start: { kind: 'beginning' }, ...setup },
      { send: async (d) => q.push({ ...d, at: Date.now() }), fail: (e) => q.fail(e) },
    );
    return { handle, next: async () => (await q.next()).value as Delivery & { at: number }, pending: () => q.size };
  }
  return { store, metrics, subs, publish, join, fatal };
}

const offsets = (d: Delivery) => d.events.map((e) => e.offset);

test('delivers batches in order from the start point and advances on ack', async () => {
  const h = harness();
  await h.publish(25);
  const m = await h.join({ group: 'g', maxBatchSize: 10 });
  let d = await m.next();
  assert.deepEqual(offsets(d), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(d.lastIncludedOffset, 10);
  assert.equal(d.attempt, 1);
  assert.equal(m.pending(), 0, 'only one batch in flight per group');
  m.handle.ack();
  d = await m.next();
  assert.deepEqual(offsets(d), [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
  m.handle.ack();
  assert.deepEqual(offsets(await m.next()), [21, 22, 23, 24, 25]);
  m.handle.ack();
  await h.publish(1);
  assert.deepEqual(offsets(await m.next()), [26], 'new events wake an idle group');
});

test('start points: latest skips existing events; offset n starts at n (clamped)', async () => {
  const h = harness();
  await h.publish(5);
  const latest = await h.join({ group: 'l', start: { kind: 'latest' } });
  const at3 = await h.join({ group: 'o', start: { kind: 'offset', offset: 3 } });
  assert.deepEqual(offsets(await at3.next()), [3, 4, 5]);
  await h.publish(1);
  assert.deepEqual(offsets(await latest.next()), [6]);
  const beyond = await h.join({ group: 'b', start: { kind: 'offset', offset: 100 } });
  await h.publish(1);
  assert.deepEqual(offsets(await beyond.next()), [7], 'an offset past the end starts at the next event');
});

test('two members share a group: batches alternate and no acked batch is delivered twice', async () => {
  const h = harness();
  await h.publish(40);
  const a = await h.join({ group: 'g', maxBatchSize: 5 });
  const b = await h.join({ group: 'g', maxBatchSize: 5 });
  const seen: number[] = [];
  const who: string[] = [];
  while (seen.length < 40) {
    // exactly one of the two has the in-flight batch
    const [m, name] = a.pending() ? [a, 'a'] : b.pending() ? [b, 'b'] : await Promise.race([a.next().then((d) => [d, 'a'] as const), b.next().then((d) => [d, 'b'] as const)]).then(([d, n]) => {
      seen.push(...offsets(d));
      who.push(n);
      return [n === 'a' ? a : b, ''] as const;
    });
    if (name !== '') {
      const d = await m.next();
      seen.push(...offsets(d));
      who.push(name);
    }
    m.handle.ack();
  }
  assert.deepEqual(seen, Array.from({ length: 40 }, (_, i) => i + 1));
  assert.ok(who.includes('a') && who.includes('b'), `both members got work: ${who.join('')}`);
});

test('nack redelivers the same batch after an exponential backoff, counting attempts', async () => {
  const h = harness({ baseMs: 40, maxMs: 1000 });
  await h.publish(3);
  const m = await h.join({ group: 'g' });
  const d1 = await m.next();
  m.handle.nack('boom');
  const d2 = await m.next();
  assert.deepEqual(offsets(d2), offsets(d1));
  assert.equal(d2.attempt, 2);
  assert.ok(d2.at - d1.at >= 40, `first retry waited ${d2.at - d1.at} ms ≥ 40`);
  m.handle.nack('boom again');
  const d3 = await m.next();
  assert.equal(d3.attempt, 3);
  assert.ok(d3.at - d2.at >= 80, `second retry waited ${d3.at - d2.at} ms ≥ 80`);
  m.handle.ack();
  assert.equal((await h.metrics.nacks.get()).values[0]?.value, 2);
});

test('the ack deadline hands the batch to another member; the late reply is discarded', async () => {
  const h = harness({ ackDeadlineMs: 100 });
  await h.publish(4);
  const a = await h.join({ group: 'g', maxBatchSize: 2 });
  const b = await h.join({ group: 'g', maxBatchSize: 2 });
  // whoever got it first stays silent
  const first = await Promise.race([a.next().then((d) => ({ d, m: a, other: b })), b.next().then((d) => ({ d, m: b, other: a }))]);
  const re = await first.other.next();
  assert.deepEqual(offsets(re), offsets(first.d));
  assert.equal(re.attempt, 2);
  assert.ok(re.at - first.d.at >= 100);
  first.m.handle.ack(); // late: must not advance the group
  assert.equal(h.subs.describe()[0]?.offset, 0);
  first.other.handle.ack();
  const next = await Promise.race([a.next(), b.next()]);
  assert.deepEqual(offsets(next), [3, 4]);
  assert.equal((await h.metrics.ackTimeouts.get()).values[0]?.value, 1);
});

test('a member that disconnects mid-delivery: the batch goes to another member at once', async () => {
  const h = harness();
  await h.publish(2);
  const a = await h.join({ group: 'g' });
  const d = await a.next();
  const b = await h.join({ group: 'g' });
  a.handle.leave();
  const re = await b.next();
  assert.deepEqual(offsets(re), offsets(d));
  assert.equal(re.attempt, 2);
});

test('an ephemeral group is forgotten when its last member leaves, even mid-delivery', async () => {
  const h = harness();
  await h.publish(3);
  const a = await h.join({ group: 'eph', maxBatchSize: 1 });
  await a.next();
  a.handle.ack();
  await a.next();
  a.handle.leave(); // leaves holding offset 2
  assert.equal(h.subs.describe().length, 0);
  const again = await h.join({ group: 'eph', maxBatchSize: 1, start: { kind: 'beginning' } });
  assert.deepEqual(offsets(await again.next()), [1], 'a new group starts from its own start point');
});

test('durable groups persist their offset and keep batch size and durability of the first member', async () => {
  const h = harness();
  await h.publish(6);
  const a = await h.join({ group: 'd', durable: true, maxBatchSize: 2 });
  assert.deepEqual(offsets(await a.next()), [1, 2]);
  a.handle.ack();
  await a.next();
  a.handle.leave();
  assert.deepEqual(h.store.durableGroups(), [{ name: 'd', maxBatchSize: 2, offset: 2 }]);
  const b = await h.join({ group: 'd', durable: false, maxBatchSize: 50, start: { kind: 'beginning' } });
  assert.deepEqual(offsets(await b.next()), [3, 4], 'start point ignored, batch size from the first member');
  assert.equal(h.subs.describe()[0]?.durable, true);
  // a restart recovers the group from the store
  const again = new Subscriptions({
    store: h.store,
    metrics: h.metrics,
    logger: silentLogger,
    ackDeadlineMs: 1000,
    nackBackoff: { baseMs: 1, maxMs: 1 },
    maxDeliveryBytes: 1 << 20,
    onFatal: () => undefined,
  });
  assert.deepEqual(again.describe(), [{ name: 'd', durable: true, maxBatchSize: 2, offset: 2, members: 0, inflight: false, inflightLast: 0, inflightAttempt: 0, redeliveries: 0 }]);
  again.close();
});

test('setup validation messages', async () => {
  const h = harness();
  await assert.rejects(h.join({ group: '' }), /subscriber group name may not be an empty string/);
  await assert.rejects(h.join({ group: 'x', maxBatchSize: 0 }), /subscriber batch size must be greater than 0/);
});

test('undecodable stored events are skipped with a metric, never delivered, never a retry loop (issue 14 item 4)', async () => {
  const h = harness();
  const good = (i: number) => encodeEvent({ id: `e${i}`, source: 'test', specversion: '1.0', type: 't', optattrs: {}, data: Buffer.alloc(0) });
  // Bytes an older server accepted: an optattrs entry whose key has wire type 0; a group wire type.
  const bad1 = Buffer.concat([good(2), Buffer.from([0x2a, 0x02, 0x08, 0x01])]);
  const bad2 = Buffer.concat([good(3), Buffer.from([0x3b, 0x3c])]);
  await h.store.append([bad1, good(2), bad1, bad2, good(5), good(6)]);
  const m = await h.join({ group: 'g', maxBatchSize: 10 });
  let d = await m.next();
  assert.deepEqual(offsets(d), [2], 'offset 1 skipped; the batch ends before the next undecodable event');
  m.handle.ack();
  d = await m.next();
  assert.deepEqual(offsets(d), [5, 6]);
  m.handle.ack();
  const skipped = (await h.metrics.protocol.undecodableSkipped.get()).values.find((v) => v.labels.consumer === 'g');
  assert.equal(skipped?.value, 3);
  assert.equal(h.subs.describe()[0]?.offset, 6);
});
