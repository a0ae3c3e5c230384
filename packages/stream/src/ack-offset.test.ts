/**
 * Acks and nacks that name their batch (issue 14 item 9), and the budget on client-provided
 * text in logs. Domain level, over the in-memory engine, with a capturing logger.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { AsyncQueue, silentLogger, type Logger } from '@hadron/core';
import { encodeEvent } from '@hadron/proto';
import { MemoryStore } from './storage/partition-store.js';
import { StreamMetrics } from './metrics.js';
import { Subscriptions, type Delivery } from './subscriptions.js';
import { ClientTextLog, truncateClientText } from './client-text-log.js';

function capture(): { logger: Logger; bytes: () => number; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  const all = (): string => chunks.join('');
  return { logger, bytes: () => Buffer.byteLength(all()), lines: () => all().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function harness(logger: Logger = silentLogger, opts: { ackDeadlineMs?: number } = {}) {
  const store = new MemoryStore();
  const metrics = new StreamMetrics({ namespace: 'ns', stream: 's', statefulset: 's', pod: 's-0', partition: 0 });
  const subs = new Subscriptions({
    store,
    metrics,
    logger,
    ackDeadlineMs: opts.ackDeadlineMs ?? 60_000,
    nackBackoff: { baseMs: 1, maxMs: 1 },
    maxDeliveryBytes: 1 << 20,
    onFatal: (e) => {
      throw e;
    },
  });
  const ev = (i: number) => encodeEvent({ id: `e${i}`, source: 't', specversion: '1.0', type: 't', optattrs: {}, data: Buffer.alloc(0) });
  await store.append(Array.from({ length: 9 }, (_, i) => ev(i + 1)));
  const join = async () => {
    const q = new AsyncQueue<Delivery>();
    const handle = await subs.join({ group: 'g', durable: false, maxBatchSize: 3, start: { kind: 'beginning' } }, { send: async (d) => q.push(d), fail: (e) => q.fail(e) });
    return { handle, next: async () => (await q.next()).value as Delivery, pending: () => q.size };
  };
  const mismatches = async () => (await metrics.protocol.ackMismatches.get()).values.find((v) => v.labels.consumer === 'g')?.value ?? 0;
  return { subs, metrics, join, mismatches };
}

test('a duplicate ack that names its batch cannot acknowledge the next one', async () => {
  const h = await harness();
  const m = await h.join();
  assert.equal((await m.next()).lastIncludedOffset, 3);
  m.handle.ack(3);
  assert.equal((await m.next()).lastIncludedOffset, 6, 'batch 2 is in flight to the same member');
  m.handle.ack(3); // the duplicate
  assert.equal(h.subs.describe()[0]?.offset, 3, 'batch 2 was not acknowledged by the duplicate');
  assert.equal(await h.mismatches(), 1);
  m.handle.nack('x', 3); // a stale nack is ignored too
  assert.equal(await h.mismatches(), 2);
  m.handle.ack(6);
  assert.equal((await m.next()).lastIncludedOffset, 9);
  assert.equal(h.subs.describe()[0]?.offset, 6);
  h.subs.close();
});

test('without an offset, acks keep the original meaning (the batch in flight)', async () => {
  const h = await harness();
  const m = await h.join();
  await m.next();
  m.handle.ack();
  await m.next();
  m.handle.ack(); // an unnamed "duplicate" is indistinguishable from an ack of batch 2
  assert.equal(h.subs.describe()[0]?.offset, 6);
  assert.equal(await h.mismatches(), 0);
  h.subs.close();
});

test('a member that went stale may still answer its old batch by name; other offsets are mismatches', async () => {
  const h = await harness(silentLogger, { ackDeadlineMs: 30 });
  const a = await h.join();
  assert.equal((await a.next()).lastIncludedOffset, 3);
  const b = await h.join();
  // a misses the deadline: the batch goes to b.
  const redelivered = await b.next();
  assert.equal(redelivered.lastIncludedOffset, 3);
  assert.equal(redelivered.attempt, 2);
  a.handle.ack(99);
  assert.equal(await h.mismatches(), 1, 'a stale member naming another batch');
  a.handle.ack(3); // its late reply to the batch it held: discarded, a becomes idle
  assert.equal(h.subs.describe()[0]?.offset, 0, 'the late ack did not ack b’s delivery');
  b.handle.ack(3);
  const next = await Promise.race([a.next(), b.next()]);
  assert.equal(next.lastIncludedOffset, 6);
  h.subs.close();
});

test('nack reasons reach the log truncated and rate-limited, with the suppressed count', async () => {
  const cap = capture();
  const h = await harness(cap.logger);
  const m = await h.join();
  const huge = 'r'.repeat(1 << 20);
  let d = await m.next();
  for (let i = 0; i < 200; i++) {
    m.handle.nack(huge, d.lastIncludedOffset);
    d = await m.next();
  }
  const nacks = cap.lines().filter((l) => l.msg === 'batch nacked');
  assert.ok(nacks.length >= 1);
  for (const l of nacks) assert.ok(String(l.reason).length < 400, 'reason truncated');
  assert.match(String(nacks[0]!.reason), /… \(1048320 more characters\)$/);
  // 200 nacks of 1 MiB: at most 5 lines per second per group reach the log.
  assert.ok(cap.bytes() < 200 * 1024, `log bytes ${cap.bytes()}`);
  const suppressed = (await h.metrics.protocol.clientTextSuppressed.get()).values[0]?.value ?? 0;
  assert.equal(suppressed + nacks.length, 200, 'every nack is either logged or counted');
  h.subs.close();
});

test('ClientTextLog: per-key budget per second, suppressed count on the next line, bounded keys', () => {
  let now = 0;
  const cap = capture();
  let dropped = 0;
  const log = new ClientTextLog({ logger: cap.logger, onSuppressed: () => dropped++, perSecond: 2, maxKeys: 3, maxChars: 4, now: () => now });
  for (let i = 0; i < 5; i++) log.log('info', 'a', { i }, 'reason', 'abcdefgh', 'x');
  assert.equal(dropped, 3);
  now = 1000;
  log.log('info', 'a', { i: 5 }, 'reason', 'ab', 'x');
  const lines = cap.lines();
  assert.deepEqual(lines.map((l) => l.i), [0, 1, 5]);
  assert.equal(lines[0]!.reason, 'abcd… (4 more characters)');
  assert.equal(lines[2]!.suppressed, 3);
  for (const k of ['b', 'c', 'd', 'e']) log.log('info', k, {}, 'reason', undefined, 'x');
  assert.equal((log as unknown as { windows: Map<string, unknown> }).windows.size, 3);
  assert.equal(truncateClientText('short', 10), 'short');
});
