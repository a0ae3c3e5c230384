/**
 * Replication under simulated power loss (SimFs): two "pods" in this process, each with its own
 * simulated disk, replicating over real gRPC on loopback. Acks with `fsync:false` and ack ALL
 * live durably only on the replica; the leader's power loss takes its unsynced tail, and the
 * restarted leader must take it back before it writes anything, so no offset ever names two
 * different events. A replica's power loss must keep everything it reported durable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger, type ControlPlaneView, type Stream } from '@hadron/core';
import { freePorts, until } from '@hadron/testing';
import { Registry } from 'prom-client';
import { FileStore } from '../storage/partition-store.js';
import { SimFs } from '../storage/sim-fs.js';
import { Replication } from './replication.js';
import { WRITE_ACK } from './placement.js';

const KEY = 'power-loss-test-key-0123456789';

function view(partitions: number, r: number): ControlPlaneView {
  const stream = { apiVersion: 'hadron.rs/v1beta1', kind: 'Stream', metadata: { name: 'events' }, spec: { partitions, replicationFactor: r, retentionPolicy: { strategy: 'retain' }, image: '', pvcVolumeSize: '1Gi' } } as unknown as Stream;
  return { streams: new Map([['events', stream]]), pipelines: new Map(), tokens: new Map(), secrets: new Map() };
}

interface Pod {
  store: FileStore;
  repl: Replication;
}

async function startPod(sim: SimFs, partition: number, ports: number[]): Promise<Pod> {
  const dir = `/pod${partition}`;
  const opts = { logger: silentLogger, fs: sim.view(), flushIntervalMs: 600_000, segmentBytes: 64 * 1024 };
  const store = await FileStore.open(dir, opts);
  const repl = new Replication({
    stream: 'events',
    partition,
    dataDir: dir,
    store,
    key: KEY,
    address: (n) => `127.0.0.1:${ports[n]}`,
    timeoutMs: 5000,
    // The first pod of a test starts before the other listens: do not wait long for it.
    recoveryTimeoutMs: 1500,
    pollMs: 200,
    maxMessageBytes: 64 * 1024 * 1024,
    storeOptions: { fs: opts.fs, flushIntervalMs: opts.flushIntervalMs, segmentBytes: opts.segmentBytes },
    logger: silentLogger,
    registry: new Registry(),
  });
  await repl.listen(ports[partition]!, '127.0.0.1');
  await repl.apply(view(2, 2));
  await repl.recover();
  return { store, repl };
}

const payload = (i: number): Buffer => Buffer.from(`event-${i}-${'x'.repeat(i % 50)}`);

async function publishAll(pod: Pod, from: number, count: number): Promise<number> {
  let last = 0;
  for (let i = from; i < from + count; i += 10) {
    const evs = Array.from({ length: 10 }, (_, j) => payload(i + j));
    ({ last } = await pod.store.append(evs, { fsync: false }));
    await pod.repl.waitCopies(last, WRITE_ACK.ALL, new AbortController().signal);
  }
  return last;
}

async function contents(store: FileStore): Promise<string[]> {
  const out: string[] = [];
  for (let o = store.firstOffset; o <= store.lastOffset; ) {
    const batch = await store.readFrom(o, { maxEvents: 1000 });
    for (const e of batch) out.push(`${e.offset}:${e.timestamp}:${e.payload.toString()}`);
    o = batch[batch.length - 1]!.offset + 1;
  }
  return out;
}

test('leader power loss after fsync:false + ack ALL publishes: the restarted leader takes its lost tail back from the replica before writing', async () => {
  const ports = await freePorts(2);
  const simL = new SimFs();
  const simR = new SimFs();
  let leader = await startPod(simL, 0, ports);
  const replica = await startPod(simR, 1, ports);
  try {
    const acked = await publishAll(leader, 0, 200);
    assert.equal(acked, 200);
    const before = await contents(leader.store);
    // Power loss on the leader: everything it did not fdatasync is gone (no rng: nothing unsynced survives).
    simL.powerLoss();
    await leader.repl.close(0);
    await leader.store.close().catch(() => undefined); // a dead process's files: only its timers matter
    const reopened = await FileStore.open('/pod0', { logger: silentLogger, fs: simL.view(), flushIntervalMs: 600_000 });
    assert.ok(reopened.lastOffset < 200, `the power loss took the unsynced tail (log ends at ${reopened.lastOffset})`);
    await reopened.close();
    leader = await startPod(simL, 0, ports);
    assert.equal(leader.store.lastOffset, 200, 'the tail came back from the replica');
    assert.deepEqual(await contents(leader.store), before, 'same offsets, times and bytes');
    assert.equal((await leader.repl.metrics.recoveredRecords.get()).values[0]?.value, 200, 'counted');
    // New events continue after what the replica held and replicate on.
    const last = await publishAll(leader, 200, 20);
    assert.equal(last, 220);
  } finally {
    await leader.repl.close(0);
    await replica.repl.close(0);
    await leader.store.close();
    await replica.store.close();
  }
});

test('replica power loss: everything it reported durable (every ack ALL) survives; it then catches up', async () => {
  const ports = await freePorts(2);
  const simL = new SimFs();
  const simR = new SimFs();
  const leader = await startPod(simL, 0, ports);
  let replica = await startPod(simR, 1, ports);
  try {
    const acked = await publishAll(leader, 0, 300);
    simR.powerLoss();
    await replica.repl.close(0);
    await replica.store.close().catch(() => undefined);
    const copy = await FileStore.open('/pod1/replicas/0', { logger: silentLogger, fs: simR.view(), flushIntervalMs: 600_000 });
    assert.ok(copy.lastOffset >= acked, `the copy holds every acknowledged event (${copy.lastOffset} ≥ ${acked})`);
    const want = await contents(leader.store);
    assert.deepEqual(await contents(copy), want.slice(0, copy.lastOffset), 'identical to the leader');
    await copy.close();
    replica = await startPod(simR, 1, ports);
    await publishAll(leader, 300, 30);
    const status = async (): Promise<number> => (await leader.repl.replicaStatus())[0]!.durableOffset;
    await until(async () => (await status()) === 330, 10_000, 'replica caught up');
  } finally {
    await leader.repl.close(0);
    await replica.repl.close(0);
    await leader.store.close();
    await replica.store.close();
  }
});

test('a replica holding records the restarted leader did not take back (it was down then) is told its copy diverged: it moves it aside and copies the new log', async () => {
  const ports = await freePorts(2);
  const simL = new SimFs();
  const simR = new SimFs();
  let leader = await startPod(simL, 0, ports);
  let replica = await startPod(simR, 1, ports);
  try {
    await publishAll(leader, 0, 100);
    // The replica goes away; then the leader loses power and its unsynced tail with it.
    await replica.repl.close(0);
    await replica.store.close();
    simL.powerLoss();
    await leader.repl.close(0);
    await leader.store.close().catch(() => undefined);
    // Restarted while its replica is down: nothing to take back from, it continues from its own end.
    leader = await startPod(simL, 0, ports);
    assert.ok(leader.store.lastOffset < 100);
    const ownEnd = leader.store.lastOffset;
    const { last } = await leader.store.append(Array.from({ length: 5 }, (_, i) => Buffer.from(`new-${i}`)), { fsync: true });
    // Offsets ownEnd+1 … now name different events on the leader and on the replica's old copy.
    replica = await startPod(simR, 1, ports);
    await until(async () => (await leader.repl.replicaStatus())[0]!.durableOffset === last, 10_000, 'replica copied the new log');
    assert.equal((await replica.repl.metrics.divergedCopies.get()).values[0]?.value, 1, 'the divergence was counted');
    const aside = simR.list('/pod1/replicas').filter((n) => n.startsWith('0.diverged-'));
    assert.equal(aside.length, 1, `the old copy was moved aside, not deleted (${simR.list('/pod1/replicas').join(', ')})`);
    await replica.repl.close(0);
    const copy = await FileStore.open('/pod1/replicas/0', { logger: silentLogger, fs: simR.view(), flushIntervalMs: 600_000 });
    assert.deepEqual(await contents(copy), await contents(leader.store), 'the new copy is the leader\'s log');
    await copy.close();
  } finally {
    await leader.repl.close(0);
    await replica.repl.close(0);
    await leader.store.close();
    await replica.store.close();
  }
});
