import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '@hadron/core';
import { FileStore } from './storage/partition-store.js';
import { StreamMetrics } from './metrics.js';
import { Subscriptions } from './subscriptions.js';
import { Retention } from './retention.js';

async function setup(policy: { strategy: 'time' | 'retain'; retentionSeconds: number }, maxBytes = 0) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-ret-'));
  const store = await FileStore.open(dir, { logger: silentLogger, segmentBytes: 4096 });
  const metrics = new StreamMetrics({ namespace: 'ns', stream: 's', statefulset: 's', pod: 's-0', partition: 0 });
  const subs = new Subscriptions({ store, metrics, logger: silentLogger, ackDeadlineMs: 1000, nackBackoff: { baseMs: 1, maxMs: 1 }, maxDeliveryBytes: 1 << 20, onFatal: () => undefined });
  const retention = new Retention({ store, subscriptions: subs, metrics, logger: silentLogger, policy: () => policy, maxBytes, intervalSeconds: 1800 });
  return { dir, store, metrics, subs, retention };
}

/** Waits until the wall clock has moved past `t` (timestamps have millisecond resolution). */
async function clockPast(t: number): Promise<void> {
  while (Date.now() <= t) await new Promise((r) => setImmediate(r));
}

test('time retention removes exactly the events older than retentionSeconds', async () => {
  const { dir, store, retention, metrics, subs } = await setup({ strategy: 'time', retentionSeconds: 60 });
  await store.createDurableGroup('slow', 10, 0);
  const again = new Subscriptions({ store, metrics, logger: silentLogger, ackDeadlineMs: 1000, nackBackoff: { baseMs: 1, maxMs: 1 }, maxDeliveryBytes: 1 << 20, onFatal: () => undefined });
  const r2 = new Retention({ store, subscriptions: again, metrics, logger: silentLogger, policy: () => ({ strategy: 'time', retentionSeconds: 60 }), maxBytes: 0, intervalSeconds: 1800 });
  for (let i = 0; i < 300; i++) await store.append([Buffer.alloc(100, i)], { fsync: false });
  const oldEnd = Date.now();
  await clockPast(oldEnd);
  const cutTime = Date.now();
  for (let i = 0; i < 100; i++) await store.append([Buffer.alloc(100, i)], { fsync: false });
  // "now" is 60 s after the old events: everything up to offset 300 is older than the threshold
  const first = await r2.runOnce(cutTime + 60_000);
  assert.equal(first, 301);
  const got = await store.readFrom(1, { maxEvents: 1000 });
  assert.equal(got[0]?.offset, 301);
  assert.equal(got.length, 100);
  assert.equal((await metrics.lastCompactedOffset.get()).values[0]?.value, 300);
  const skipped = (await metrics.skippedByRetention.get()).values.find((v) => v.labels.group === 'slow');
  assert.equal(skipped?.value, 300, 'events the durable group never acked are counted');
  // running again with the same clock removes nothing more
  assert.equal(await r2.runOnce(cutTime + 60_000), 301);
  // whole segments below the cut are gone from disk
  const files = fs.readdirSync(path.join(dir, 'log')).filter((f) => f.endsWith('.log'));
  assert.ok(files.every((f) => Number(f.slice(0, 20)) > 1), `old segments deleted: ${files.join(',')}`);
  again.close();
  subs.close();
  await store.close();
  void retention;
  fs.rmSync(dir, { recursive: true });
});

test('retain keeps everything; the size bound still applies', async () => {
  const { dir, store, retention, subs } = await setup({ strategy: 'retain', retentionSeconds: 0 });
  for (let i = 0; i < 200; i++) await store.append([Buffer.alloc(100)], { fsync: false });
  assert.equal(await retention.runOnce(Date.now() + 10 ** 9), 1);
  subs.close();
  await store.close();
  fs.rmSync(dir, { recursive: true });

  const s2 = await setup({ strategy: 'retain', retentionSeconds: 0 }, 8192);
  for (let i = 0; i < 200; i++) await s2.store.append([Buffer.alloc(100)], { fsync: false });
  const first = await s2.retention.runOnce();
  assert.ok(first > 1, 'size bound removed old segments');
  assert.ok(s2.store.sizeBytes <= 8192 + 4096 + 200, `size ${s2.store.sizeBytes} near the bound`);
  s2.subs.close();
  await s2.store.close();
  fs.rmSync(s2.dir, { recursive: true });
});

test('first run waits only for the rest of the interval (the original inverted this)', () => {
  const now = 1_000_000_000;
  assert.equal(Retention.initialDelayMs(now - 10 * 60_000, 1800, now), 20 * 60_000);
  assert.equal(Retention.initialDelayMs(now - 3600_000, 1800, now), 0);
  assert.equal(Retention.initialDelayMs(undefined, 1800, now), 60_000);
});
