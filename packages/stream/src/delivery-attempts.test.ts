/**
 * Failure records (delivery-attempts.ts) under simulated power loss (storage/sim-fs.ts): a record
 * is written only once the log is durable up to its offset — never ahead of the log — and a
 * stored record survives the loss.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@hadron/core';
import { encodeEvent } from '@hadron/proto';
import { FileStore } from './storage/partition-store.js';
import { SimFs, seededRandom } from './storage/sim-fs.js';
import { metaKeys } from './storage/layout.js';
import { DeliveryAttempts } from './delivery-attempts.js';

const DIR = '/data/events-0';
const ev = (i: number): Buffer => Buffer.from(encodeEvent({ id: `e${i}`, source: 's', specversion: '1.0', type: 't', optattrs: {}, data: new Uint8Array() }));

async function open(sim: SimFs): Promise<{ store: FileStore; attempts: DeliveryAttempts; fatal: unknown[] }> {
  const store = await FileStore.open(DIR, { logger: silentLogger, fs: sim.view(), flushIntervalMs: 600_000, onFatal: () => undefined });
  const fatal: unknown[] = [];
  return { store, fatal, attempts: new DeliveryAttempts({ meta: store.meta, keyOf: metaKeys.groupAttempts, logger: silentLogger, onFatal: (e) => fatal.push(e) }) };
}

test('a failure record is never stored ahead of the log: power lost at every step of recording it', async () => {
  let withRecord = 0;
  let without = 0;
  for (let k = 1; k < 200; k++) {
    const sim = new SimFs({ rng: seededRandom(k) });
    let { store, attempts } = await open(sim);
    await store.append([ev(1), ev(2), ev(3)], { fsync: true });
    await attempts.recorded('g', 3, { attempts: 2, lastError: 'nacked: x' });
    await store.append([ev(4), ev(5)], { fsync: false });
    // Offset 5 is written but not durable: recording its failure must make the log durable first.
    sim.crashAtOp = sim.opCount + k;
    await attempts.recorded('h', 5, { attempts: 1, lastError: 'nacked: y' }).catch(() => undefined);
    const crashed = sim.powerLosses > 0;
    if (!crashed) sim.powerLoss();
    await store.close().catch(() => undefined);

    ({ store, attempts } = await open(sim));
    assert.deepEqual(attempts.get('g', 3), { attempts: 2, lastError: 'nacked: x' }, 'a stored record survives');
    const h = attempts.get('h', 5);
    if (h) {
      assert.ok(store.lastOffset >= 5, `step ${k}: a record names offset 5 but the log ends at ${store.lastOffset}`);
      withRecord++;
    } else without++;
    await store.close();
    if (!crashed) {
      assert.deepEqual(h, { attempts: 1, lastError: 'nacked: y' }, 'recorded() resolved: the record is stored');
      break;
    }
  }
  assert.ok(withRecord >= 1 && without >= 1, `power was lost before and after the record was stored (${without} / ${withRecord})`);
});

test('stale, settled and forgotten records', async () => {
  const sim = new SimFs({ rng: seededRandom(3) });
  let { store, attempts, fatal } = await open(sim);
  await store.append([ev(1), ev(2), ev(3), ev(4)], { fsync: true });
  await attempts.recorded('g', 3, { attempts: 2, lastError: 'nacked: x' });
  await attempts.recorded('h', 4, { attempts: 1, lastError: 'nacked: z' });
  sim.powerLoss();
  await store.close().catch(() => undefined);
  ({ store, attempts, fatal } = await open(sim));
  assert.deepEqual(attempts.pending('g', 2), [[3, { attempts: 2, lastError: 'nacked: x' }]]);
  assert.deepEqual(attempts.pending('g', 3), [], 'at or below the acked offset: stale');
  await attempts.settled('h', 4);
  await attempts.forget('g');
  await store.close();
  ({ store, attempts, fatal } = await open(sim));
  assert.equal(store.meta.get(metaKeys.groupAttempts('h')), undefined, 'settled: the key is deleted');
  assert.equal(store.meta.get(metaKeys.groupAttempts('g')), undefined, 'forgotten');
  assert.deepEqual(fatal, []);
  await store.close();
});
