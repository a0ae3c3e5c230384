import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HadronError } from '@hadron/core';
import { decodeEvent, scanPublishRequest } from '@hadron/proto';
import { partitionOf } from './hash.js';
import { DEFAULT_PUBLISHER_OPTIONS, Publisher, type PublishTransport, type PublisherOptions } from './publisher.js';
import type { PartitionHealth } from './topology.js';

interface Sent {
  partition: number;
  ids: string[];
  fsync: boolean;
  ack: number;
  respond: (err?: unknown) => void;
}

/** A transport whose calls stay pending until the test answers them. */
class FakeTransport implements PublishTransport {
  count = 3;
  healthOf = new Map<number, PartitionHealth>();
  sent: Sent[] = [];
  offsets = new Map<number, number>();
  down: number[] = [];
  private waiters: Array<() => void> = [];
  partitionCount(): number {
    return this.count;
  }
  health(p: number): PartitionHealth | undefined {
    return p < this.count ? (this.healthOf.get(p) ?? 'ready') : undefined;
  }
  whenKnown(): Promise<void> {
    return Promise.resolve();
  }
  describe(p: number): string {
    return `127.0.0.1:${7000 + p}`;
  }
  /** False: markDown leaves the connection ready, as a real one whose server answered UNAVAILABLE. */
  markDownSticks = true;
  markDown(p: number): void {
    this.down.push(p);
    if (this.markDownSticks) this.healthOf.set(p, 'down');
  }
  send(p: number, request: Buffer): Promise<{ offset: number; partition: number }> {
    const scanned = scanPublishRequest(request);
    return new Promise((resolve, reject) => {
      const ids = scanned.events.map((e) => decodeEvent(e).id);
      this.sent.push({
        partition: p,
        ids,
        fsync: scanned.fsync,
        ack: scanned.ack,
        respond: (err) => {
          if (err) return reject(err);
          const last = (this.offsets.get(p) ?? 0) + ids.length;
          this.offsets.set(p, last);
          resolve({ offset: last, partition: p });
        },
      });
      this.waiters.splice(0).forEach((w) => w());
    });
  }
  /** Waits until at least n calls have been sent. */
  async sentAtLeast(n: number): Promise<void> {
    while (this.sent.length < n) await new Promise<void>((r) => this.waiters.push(r));
  }
}

const opts = (o: Partial<PublisherOptions> = {}): PublisherOptions => ({ ...DEFAULT_PUBLISHER_OPTIONS, retry: { attempts: 3, baseMs: 1, maxMs: 2 }, ...o });
const ev = (id: string, extra: Record<string, string> = {}): { id: string; source: string; type: string; optattrs: Record<string, string> } => ({ id, source: 's', type: 't', optattrs: extra });
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('events go to the partition of their key; offsets come back per event', async () => {
  const t = new FakeTransport();
  const p = new Publisher(t, opts());
  const a = p.publish(ev('a', { partitionkey: 'tenant-a' }));
  const many = p.publish([ev('b', { partitionkey: 'tenant-a' }), ev('c', { partitionkey: 'tenant-b' }), ev('d', { partitionkey: 'tenant-a' })]);
  await tick();
  const pk1 = partitionOf(ev('x', { partitionkey: 'tenant-a' }), 3);
  const pk2 = partitionOf(ev('x', { partitionkey: 'tenant-b' }), 3);
  assert.notEqual(pk1, pk2, 'test keys must land on different partitions');
  // One request per partition; the single publish and the group of the array share a batch.
  assert.deepEqual(
    t.sent.map((s) => [s.partition, s.ids]).sort(),
    [
      [pk1, ['a', 'b', 'd']],
      [pk2, ['c']],
    ].sort(),
  );
  assert.ok(t.sent.every((s) => s.fsync && s.ack === 0), 'fsync defaults to true, ack to ALL');
  t.sent.forEach((s) => s.respond());
  assert.deepEqual(await a, { partition: pk1, offset: 1 });
  assert.deepEqual(await many, [
    { partition: pk1, offset: 2 },
    { partition: pk2, offset: 1 },
    { partition: pk1, offset: 3 },
  ]);
});

test('automatic batching with a bounded window; publish waits while the window is full', async () => {
  const t = new FakeTransport();
  t.count = 1;
  const p = new Publisher(t, opts({ maxBatchEvents: 10, maxInFlightBatches: 2 }));
  const acks = Array.from({ length: 45 }, (_, i) => p.publish(ev(`e${i}`)));
  let settled = 0;
  acks.forEach((a) => void a.then(() => settled++));
  await tick();
  // Window of 2 batches of ≤ 10 events; the other 25 events wait.
  assert.deepEqual(t.sent.map((s) => s.ids.length), [10, 10]);
  assert.equal(settled, 0);
  t.sent[0]!.respond();
  await t.sentAtLeast(3);
  await tick();
  assert.equal(settled, 10, 'only the acknowledged batch resolved');
  assert.deepEqual(t.sent.map((s) => s.ids.length), [10, 10, 10], 'one slot freed → one more batch');
  for (let i = 1; i < 5; i++) {
    await t.sentAtLeast(Math.min(5, i + 2));
    t.sent[i]!.respond();
  }
  await Promise.all(acks);
  assert.deepEqual(t.sent.map((s) => s.ids.length), [10, 10, 10, 10, 5]);
  // Order inside the partition is publish order, offsets are dense.
  assert.deepEqual(t.sent.flatMap((s) => s.ids), Array.from({ length: 45 }, (_, i) => `e${i}`));
  assert.deepEqual((await Promise.all(acks)).map((a) => a.offset), Array.from({ length: 45 }, (_, i) => i + 1));
  assert.equal(p.stats.batches, 5);
  assert.equal(p.stats.maxBatchEvents, 10);
});

test('a lone publish is sent at once (no linger timer), a burst is batched', async () => {
  const t = new FakeTransport();
  t.count = 1;
  const p = new Publisher(t, opts({ maxInFlightBatches: 1 }));
  const first = p.publish(ev('solo'));
  await tick();
  assert.deepEqual(t.sent.map((s) => s.ids), [['solo']]);
  const burst = Array.from({ length: 100 }, (_, i) => p.publish(ev(`b${i}`)));
  await tick();
  assert.equal(t.sent.length, 1, 'the window of one is full: the burst queues');
  t.sent[0]!.respond();
  await first;
  await t.sentAtLeast(2);
  assert.equal(t.sent[1]!.ids.length, 100, 'everything queued meanwhile leaves as one batch');
  t.sent[1]!.respond();
  await Promise.all(burst);
});

test('batches respect maxBatchBytes', async () => {
  const t = new FakeTransport();
  t.count = 1;
  const p = new Publisher(t, opts({ maxBatchBytes: 3000, maxInFlightBatches: 8 }));
  const big = 'x'.repeat(1000);
  const acks = Array.from({ length: 7 }, (_, i) => p.publish({ ...ev(`e${i}`), data: big }));
  await tick();
  assert.deepEqual(t.sent.map((s) => s.ids.length), [2, 2, 2, 1]);
  t.sent.forEach((s) => s.respond());
  await Promise.all(acks);
});

test('per-call fsync and ack options form separate batches', async () => {
  const t = new FakeTransport();
  t.count = 1;
  const p = new Publisher(t, opts());
  const a = p.publish(ev('a'));
  const b = p.publish(ev('b'), { fsync: false, ack: 'none' });
  await tick();
  assert.deepEqual(
    t.sent.map((s) => [s.ids, s.fsync, s.ack]),
    [
      [['a'], true, 0],
      [['b'], false, 2],
    ],
  );
  t.sent.forEach((s) => s.respond());
  await Promise.all([a, b]);
});

test('retriable errors are retried with backoff; others fail at once', async () => {
  const t = new FakeTransport();
  t.count = 1;
  const p = new Publisher(t, opts());
  const a = p.publish(ev('a'));
  await t.sentAtLeast(1);
  t.sent[0]!.respond(new HadronError('STORAGE_FAILURE', 'disk hiccup'));
  await t.sentAtLeast(2);
  assert.deepEqual(t.sent[1]!.ids, ['a']);
  t.sent[1]!.respond();
  assert.deepEqual(await a, { partition: 0, offset: 1 });
  assert.equal(p.stats.retries, 1);

  const b = p.publish(ev('b'));
  await t.sentAtLeast(3);
  t.sent[2]!.respond(new HadronError('PERMISSION_DENIED', 'token may not publish'));
  await assert.rejects(b, (e: HadronError) => e.code === 'PERMISSION_DENIED');
  assert.equal(t.sent.length, 3);
});

test('fail-over: an unavailable partition sends its events to the next healthy one', async () => {
  const t = new FakeTransport();
  const p = new Publisher(t, opts());
  const key = { partitionkey: 'tenant-a' };
  const home = partitionOf(ev('x', key), 3);
  const a = p.publish(ev('a', key));
  await t.sentAtLeast(1);
  assert.equal(t.sent[0]!.partition, home);
  t.sent[0]!.respond(new HadronError('UNAVAILABLE', 'connection refused'));
  await t.sentAtLeast(2);
  assert.deepEqual(t.down, [home]);
  assert.equal(t.sent[1]!.partition, (home + 1) % 3);
  t.sent[1]!.respond();
  assert.deepEqual(await a, { partition: (home + 1) % 3, offset: 1 });
  // While the home partition is known to be down, new events skip it from the start.
  const b = p.publish(ev('b', key));
  await t.sentAtLeast(3);
  assert.equal(t.sent[2]!.partition, (home + 1) % 3);
  t.sent[2]!.respond();
  await b;
  assert.equal(p.stats.failovers, 2);
});

test('fail-over: a partition that refuses publishes while its connection stays up (its replicas are missing) is avoided for retry.maxMs', async () => {
  const t = new FakeTransport();
  // A real connection goes back to ready at once after markDown: its server answered.
  t.markDownSticks = false;
  const p = new Publisher(t, opts({ retry: { attempts: 3, baseMs: 1, maxMs: 60_000 } }));
  const key = { partitionkey: 'tenant-a' };
  const home = partitionOf(ev('x', key), 3);
  const a = p.publish(ev('a', key));
  await t.sentAtLeast(1);
  t.sent[0]!.respond(new HadronError('UNAVAILABLE', 'publish to partition not acknowledged: ack ALL needs 2 of 2 copies; missing replicas: events-2'));
  await t.sentAtLeast(2);
  assert.equal(t.health(home), 'ready', 'the connection is still up');
  assert.equal(t.sent[1]!.partition, (home + 1) % 3, 'the retry failed over instead of asking the refusing partition again');
  t.sent[1]!.respond();
  assert.deepEqual(await a, { partition: (home + 1) % 3, offset: 1 });
  // Within retry.maxMs new events of that key skip it from the start.
  const b = p.publish(ev('b', key));
  await t.sentAtLeast(3);
  assert.equal(t.sent[2]!.partition, (home + 1) % 3);
  t.sent[2]!.respond();
  await b;
  // Events of other keys are not sent to it either, but their own partitions are used.
  const other = { partitionkey: 'tenant-b' };
  const otherHome = partitionOf(ev('x', other), 3);
  assert.notEqual(otherHome, home);
  const c = p.publish(ev('c', other));
  await t.sentAtLeast(4);
  assert.equal(t.sent[3]!.partition, otherHome);
  t.sent[3]!.respond();
  await c;
});

test('fail-over: DEADLINE_EXCEEDED sends the retry to the next partition', async () => {
  const t = new FakeTransport();
  const p = new Publisher(t, opts({ retry: { attempts: 3, baseMs: 1, maxMs: 60_000 } }));
  const key = { partitionkey: 'tenant-a' };
  const home = partitionOf(ev('x', key), 3);
  const a = p.publish(ev('a', key));
  await t.sentAtLeast(1);
  t.sent[0]!.respond(new HadronError('DEADLINE_EXCEEDED', 'deadline of 30000 ms exceeded'));
  await t.sentAtLeast(2);
  assert.equal(t.sent[1]!.partition, (home + 1) % 3);
  t.sent[1]!.respond();
  assert.deepEqual(await a, { partition: (home + 1) % 3, offset: 1 });
});

test('strictPlacement: a partition refusing publishes gets the retries itself', async () => {
  const t = new FakeTransport();
  t.markDownSticks = false;
  const p = new Publisher(t, opts({ strictPlacement: true, retry: { attempts: 2, baseMs: 1, maxMs: 60_000 } }));
  const key = { partitionkey: 'tenant-a' };
  const home = partitionOf(ev('x', key), 3);
  const a = p.publish(ev('a', key));
  await t.sentAtLeast(1);
  t.sent[0]!.respond(new HadronError('UNAVAILABLE', 'missing replicas'));
  await t.sentAtLeast(2);
  assert.equal(t.sent[1]!.partition, home);
  t.sent[1]!.respond();
  assert.deepEqual(await a, { partition: home, offset: 1 });
});

test('strictPlacement: retried on its own partition, then a clear UNAVAILABLE naming it', async () => {
  const t = new FakeTransport();
  const p = new Publisher(t, opts({ strictPlacement: true }));
  const key = { partitionkey: 'tenant-a' };
  const home = partitionOf(ev('x', key), 3);
  t.healthOf.set(home, 'down');
  const a = p.publish(ev('a', key));
  for (let i = 0; i < 3; i++) {
    await t.sentAtLeast(i + 1);
    assert.equal(t.sent[i]!.partition, home);
    t.sent[i]!.respond(new HadronError('UNAVAILABLE', 'connect ECONNREFUSED'));
  }
  await assert.rejects(a, (e: HadronError) => {
    assert.equal(e.code, 'UNAVAILABLE');
    assert.match(e.message, new RegExp(`partition ${home} \\(127\\.0\\.0\\.1:${7000 + home}\\) is unavailable and strictPlacement is on`));
    assert.equal(e.context.partition, home);
    return true;
  });
  assert.equal(t.sent.length, 3);
});

test('an aborted publish drops events not yet sent', async () => {
  const t = new FakeTransport();
  t.count = 1;
  const p = new Publisher(t, opts({ maxInFlightBatches: 1 }));
  const first = p.publish(ev('a'));
  await tick();
  const ac = new AbortController();
  const second = p.publish(ev('b'), { signal: ac.signal });
  ac.abort(new HadronError('CANCELLED', 'no longer needed'));
  await assert.rejects(second, /no longer needed/);
  t.sent[0]!.respond();
  await first;
  await tick();
  assert.equal(t.sent.length, 1, 'the aborted event was never sent');
});

test('invalid events are refused before anything is sent', async () => {
  const t = new FakeTransport();
  const p = new Publisher(t, opts());
  await assert.rejects(p.publish({ source: 's', type: '' }), (e: HadronError) => e.code === 'INVALID_EVENT');
  await assert.rejects(p.publish({ source: 's', type: 't', flag: { nested: true } }), /CloudEvents type system/);
  await tick();
  assert.equal(t.sent.length, 0);
});

test('concurrent one-event calls are spread evenly over the free window, in order, one ack each', async () => {
  const t = new FakeTransport();
  t.count = 1;
  const p = new Publisher(t, opts({ maxBatchEvents: 1000, maxInFlightBatches: 4, spreadMinEvents: 10 }));
  // Array-of-one calls (what a caller with an event per call often writes) resolve to [ack].
  const calls = Array.from({ length: 100 }, (_, i) => p.publish([ev(`e${i}`)]));
  await tick();
  // Not one batch of 100 and three idle requests: four pipelined batches of 25.
  assert.deepEqual(t.sent.map((s) => s.ids.length), [25, 25, 25, 25]);
  assert.deepEqual(t.sent.flatMap((s) => s.ids), Array.from({ length: 100 }, (_, i) => `e${i}`));
  // Answer out of order: each caller still gets its own offset.
  for (const i of [2, 0, 3, 1]) t.sent[i]!.respond();
  const acks = await Promise.all(calls);
  const byBatch = [2, 0, 3, 1].map((b, k) => ({ b, base: k * 25 }));
  for (const { b, base } of byBatch) {
    for (let j = 0; j < 25; j++) assert.deepEqual(acks[b * 25 + j], [{ partition: 0, offset: base + j + 1 }], `event e${b * 25 + j}`);
  }
  // A queue smaller than spreadMinEvents × free slots is not cut into tiny requests.
  const few = Array.from({ length: 15 }, (_, i) => p.publish(ev(`f${i}`)));
  await t.sentAtLeast(5);
  await tick();
  assert.deepEqual(t.sent.slice(4).map((s) => s.ids.length), [10, 5]);
  t.sent.slice(4).forEach((s) => s.respond());
  await Promise.all(few);
});

test('a failed batch rejects each of its callers with the error; other batches still succeed', async () => {
  const t = new FakeTransport();
  t.count = 1;
  const p = new Publisher(t, opts({ maxInFlightBatches: 2, spreadMinEvents: 3 }));
  const calls = Array.from({ length: 6 }, (_, i) => p.publish(ev(`e${i}`)));
  const outcome = calls.map((c) => c.then((a) => a.offset, (e: HadronError) => e.code));
  await tick();
  assert.deepEqual(t.sent.map((s) => s.ids), [
    ['e0', 'e1', 'e2'],
    ['e3', 'e4', 'e5'],
  ]);
  t.sent[0]!.respond(new HadronError('INVALID_EVENT', 'refused by the server'));
  t.sent[1]!.respond();
  assert.deepEqual(await Promise.all(outcome), ['INVALID_EVENT', 'INVALID_EVENT', 'INVALID_EVENT', 1, 2, 3]);
  assert.equal(t.sent.length, 2, 'a non-retriable error is not retried');
});

test('spreadMinEvents below 1 is refused', () => {
  assert.throws(() => new Publisher(new FakeTransport(), opts({ spreadMinEvents: 0 })), /spreadMinEvents/);
});
