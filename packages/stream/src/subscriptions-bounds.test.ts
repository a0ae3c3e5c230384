/**
 * The subscriber buffer bound (issue 14 item 5), as pure domain logic over the in-memory engine:
 * a member that stops reading makes its group hold one batch, never a read-ahead too, and all
 * groups together stay within the budget while still all making progress.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { HadronError, silentLogger } from '@hadron/core';
import { encodeEvent } from '@hadron/proto';
import { MemoryStore } from './storage/partition-store.js';
import { StreamMetrics } from './metrics.js';
import { Subscriptions, type Delivery, type MemberHandle } from './subscriptions.js';

const live: Subscriptions[] = [];
afterEach(() => {
  for (const s of live.splice(0)) s.close();
});

const EVENT = 1000;
const DELIVERY = 10 * EVENT;

/** A valid CloudEvent of exactly EVENT bytes (stored events must be decodable). */
function event(): Uint8Array {
  const make = (n: number) => encodeEvent({ id: 'e', source: 'test', specversion: '1.0', type: 't', optattrs: {}, data: Buffer.alloc(n) });
  const e = make(EVENT - 100);
  const exact = make(EVENT - 100 + (EVENT - e.length));
  assert.equal(exact.length, EVENT);
  return exact;
}

async function harness(maxBufferBytes: number, backlog: number) {
  const store = new MemoryStore();
  const metrics = new StreamMetrics({ namespace: 'ns', stream: 's', statefulset: 's', pod: 's-0', partition: 0 });
  const subs = new Subscriptions({
    store,
    metrics,
    logger: silentLogger,
    ackDeadlineMs: 60_000,
    nackBackoff: { baseMs: 10, maxMs: 10 },
    maxDeliveryBytes: DELIVERY,
    maxBufferBytes,
    onFatal: () => undefined,
  });
  live.push(subs);
  await store.append(Array.from({ length: backlog }, () => event()));
  return { store, subs };
}

test('a member that stops reading makes its group hold one batch, not a read-ahead too', async () => {
  const { subs } = await harness(1 << 30, 100);
  let sent = 0;
  // send() never resolves: the HTTP/2 stream stays congested because the client stopped reading.
  await subs.join({ group: 'stalled', durable: false, maxBatchSize: 1000, start: { kind: 'beginning' } }, {
    send: () => {
      sent++;
      return new Promise<void>(() => undefined);
    },
    fail: () => undefined,
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(sent, 1);
  // Before the fix the next batch was read ahead at once: 2 × DELIVERY held per stalled group.
  assert.equal(subs.bufferedBytes, DELIVERY, 'only the batch in flight is held');
});

test('all groups together stay within the buffer budget, and every group still progresses', async () => {
  const budget = 3 * DELIVERY;
  const { subs } = await harness(budget, 200);
  const GROUPS = 12;
  const got = new Map<number, number>();
  const members: MemberHandle[] = [];
  let peak = 0;
  let resolveAll: () => void = () => undefined;
  const allDone = new Promise<void>((r) => (resolveAll = r));
  for (let i = 0; i < GROUPS; i++) {
    const handle = await subs.join({ group: `g${i}`, durable: false, maxBatchSize: 1000, start: { kind: 'beginning' } }, {
      send: async (d: Delivery) => {
        peak = Math.max(peak, subs.bufferedBytes);
        got.set(i, (got.get(i) ?? 0) + d.events.length);
        if ([...got.values()].filter((n) => n >= 200).length === GROUPS) resolveAll();
        // Ack on the next turn, as a consumer would after processing.
        setImmediate(() => members[i]!.ack());
      },
      fail: () => undefined,
    });
    members.push(handle);
    peak = Math.max(peak, subs.bufferedBytes);
  }
  await allDone;
  assert.ok(peak <= budget, `peak ${peak} > budget ${budget}`);
  assert.ok(peak > 0);
  for (let i = 0; i < GROUPS; i++) assert.equal(got.get(i), 200, `group ${i} read the whole backlog`);
  for (const m of members) m.leave();
  assert.equal(subs.bufferedBytes, 0, 'everything is given back when the groups end');
});

test('a member that has not read its delivery by the ack deadline is ended, and its buffers are freed', async () => {
  const store = new MemoryStore();
  const metrics = new StreamMetrics({ namespace: 'ns', stream: 's', statefulset: 's', pod: 's-0', partition: 0 });
  const subs = new Subscriptions({ store, metrics, logger: silentLogger, ackDeadlineMs: 50, nackBackoff: { baseMs: 10, maxMs: 10 }, maxDeliveryBytes: DELIVERY, maxBufferBytes: 1 << 30, onFatal: () => undefined });
  live.push(subs);
  await store.append(Array.from({ length: 30 }, () => event()));
  let failed: unknown;
  const ended = new Promise<void>((resolve) => {
    void subs.join({ group: 'g', durable: false, maxBatchSize: 1000, start: { kind: 'beginning' } }, {
      send: () => new Promise<void>(() => undefined),
      fail: (err) => {
        failed = err;
        resolve();
      },
    });
  });
  await ended;
  assert.ok(failed instanceof HadronError && failed.code === 'DEADLINE_EXCEEDED' && /HADRON_ACK_DEADLINE_MS/.test(failed.message), String(failed));
  assert.equal(subs.bufferedBytes, 0);
  assert.deepEqual(subs.describe(), [], 'the ephemeral group ended with its only member');
});
