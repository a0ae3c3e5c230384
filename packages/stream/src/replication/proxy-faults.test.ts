/**
 * Faults on the path between a leader and its replica: a loopback TCP proxy that delays, cuts
 * (mid-batch) and black-holes the replication connection. Two "pods" in this process on
 * simulated disks, replicating over real gRPC. Checked: acks never claim a copy that is not there
 * (a black hole fails ALL with UNAVAILABLE), and once the path heals the copy is exactly the
 * leader's log — no gap, no duplicate, no torn record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { HadronError, silentLogger, type ControlPlaneView, type Stream } from '@hadron/core';
import { freePorts, until } from '@hadron/testing';
import { Registry } from 'prom-client';
import { FileStore } from '../storage/partition-store.js';
import { SimFs } from '../storage/sim-fs.js';
import { Replication } from './replication.js';
import { WRITE_ACK } from './placement.js';

type Mode = { kind: 'pass' } | { kind: 'delay'; ms: number } | { kind: 'cut-after'; bytes: number } | { kind: 'black-hole' };

/** Forwards 127.0.0.1:port → 127.0.0.1:target, misbehaving as `mode` says. */
class FaultProxy {
  mode: Mode = { kind: 'pass' };
  cuts = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;
  constructor(readonly target: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(target, '127.0.0.1');
      this.sockets.add(client).add(upstream);
      let forwarded = 0;
      const pipe = (from: net.Socket, to: net.Socket, countCut: boolean): void => {
        from.on('data', (chunk: Buffer) => {
          const m = this.mode;
          if (m.kind === 'black-hole') return; // bytes vanish; the connection stays open
          if (m.kind === 'cut-after' && countCut) {
            forwarded += chunk.length;
            if (forwarded > m.bytes) {
              // Cut in the middle of whatever is in flight: part of the chunk goes, then nothing.
              to.write(chunk.subarray(0, Math.max(0, chunk.length - (forwarded - m.bytes))));
              this.cuts++;
              client.destroy();
              upstream.destroy();
              return;
            }
          }
          if (m.kind === 'delay') setTimeout(() => to.writable && to.write(chunk), m.ms);
          else to.write(chunk);
        });
      };
      pipe(client, upstream, false);
      pipe(upstream, client, true); // leader → replica: the records
      const close = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('close', close).on('error', close);
      upstream.on('close', close).on('error', close);
    });
  }
  listen(port: number): Promise<void> {
    return new Promise((resolve) => this.server.listen(port, '127.0.0.1', resolve));
  }
  /** Ends every connection (a black-holed one included). */
  cutAll(): void {
    for (const s of this.sockets) s.destroy();
  }
  close(): Promise<void> {
    this.cutAll();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function view(): ControlPlaneView {
  const stream = { apiVersion: 'hadron.rs/v1beta1', kind: 'Stream', metadata: { name: 'events' }, spec: { partitions: 2, replicationFactor: 2, retentionPolicy: { strategy: 'retain' }, image: '', pvcVolumeSize: '1Gi' } } as unknown as Stream;
  return { streams: new Map([['events', stream]]), pipelines: new Map(), tokens: new Map(), secrets: new Map() };
}

async function pod(sim: SimFs, partition: number, address: (n: number) => string, port: number): Promise<{ store: FileStore; repl: Replication }> {
  const dir = `/pod${partition}`;
  const fs = sim.view();
  const store = await FileStore.open(dir, { logger: silentLogger, fs, flushIntervalMs: 600_000, segmentBytes: 32 * 1024 });
  const repl = new Replication({
    stream: 'events',
    partition,
    dataDir: dir,
    store,
    key: 'proxy-faults-test-key-0123456789',
    address,
    timeoutMs: 1500,
    recoveryTimeoutMs: 500,
    pollMs: 200,
    maxMessageBytes: 64 * 1024 * 1024,
    storeOptions: { fs, flushIntervalMs: 600_000, segmentBytes: 32 * 1024 },
    logger: silentLogger,
    registry: new Registry(),
  });
  await repl.listen(port, '127.0.0.1');
  await repl.apply(view());
  await repl.recover();
  return { store, repl };
}

async function contents(store: FileStore): Promise<string[]> {
  const out: string[] = [];
  for (let o = store.firstOffset; o <= store.lastOffset; ) {
    const batch = await store.readFrom(o, { maxEvents: 1000 });
    for (const e of batch) out.push(`${e.offset}:${e.timestamp}:${e.payload.toString('base64')}`);
    o = batch[batch.length - 1]!.offset + 1;
  }
  return out;
}

test('delayed, cut mid-batch and black-holed replication: acks only for what the replica holds; healed, the copy equals the log', async () => {
  const [leaderPort, replicaPort, proxyPort] = await freePorts(3);
  const simL = new SimFs();
  const simR = new SimFs();
  const proxy = new FaultProxy(leaderPort!);
  await proxy.listen(proxyPort!);
  // The replica reaches the leader only through the proxy.
  const leader = await pod(simL, 0, (n) => `127.0.0.1:${n === 0 ? leaderPort : replicaPort}`, leaderPort!);
  const replica = await pod(simR, 1, (n) => `127.0.0.1:${n === 0 ? proxyPort : leaderPort}`, replicaPort!);
  const copyOf = (): Promise<FileStore> => FileStore.open('/pod1/replicas/0', { logger: silentLogger, fs: simR.view(), flushIntervalMs: 600_000 });
  let n = 0;
  const publish = async (events: number, size: number): Promise<{ last: number; ok: boolean; err?: HadronError }> => {
    const evs = Array.from({ length: events }, () => Buffer.alloc(size, n++ % 251));
    const { last } = await leader.store.append(evs, { fsync: false });
    try {
      await leader.repl.waitCopies(last, WRITE_ACK.ALL, new AbortController().signal);
      return { last, ok: true };
    } catch (err) {
      assert.ok(err instanceof HadronError);
      return { last, ok: false, err };
    }
  };
  const acked: number[] = [];
  try {
    // 1. Delay: every ack still comes, just later.
    proxy.mode = { kind: 'delay', ms: 30 };
    for (let i = 0; i < 5; i++) {
      const r = await publish(20, 500);
      assert.ok(r.ok, `delayed path still acks: ${r.err?.message}`);
      acked.push(r.last);
    }
    // 2. Cut mid-batch: 64 KiB batches, the connection cut after ~20 KiB of each response.
    proxy.mode = { kind: 'cut-after', bytes: 20 * 1024 };
    for (let i = 0; i < 3; i++) {
      const r = await publish(64, 1024);
      if (r.ok) acked.push(r.last);
      else assert.equal(r.err!.code, 'UNAVAILABLE');
    }
    assert.ok(proxy.cuts > 0, 'connections were cut');
    // 3. Black hole: ALL cannot be had: UNAVAILABLE naming the replica, never an early success.
    proxy.mode = { kind: 'black-hole' };
    const r = await publish(10, 100);
    assert.equal(r.ok, false, 'no ack through a black hole');
    assert.equal(r.err!.code, 'UNAVAILABLE');
    assert.match(r.err!.message, /missing replicas: events-1/);
    // Heal: the replica reconnects and catches up, exactly.
    proxy.mode = { kind: 'pass' };
    proxy.cutAll();
    const last = leader.store.lastOffset;
    await until(async () => (await leader.repl.replicaStatus())[0]!.durableOffset === last, 15_000, 'replica caught up after healing');
    const r2 = await publish(10, 100);
    assert.ok(r2.ok, 'ALL acks again');
    await until(async () => (await leader.repl.replicaStatus())[0]!.durableOffset === r2.last, 5000, 'replica has the last batch');
  } finally {
    await replica.repl.close(0);
    await leader.repl.close(0);
    await replica.store.close();
    await proxy.close();
  }
  // Everything acknowledged is in the copy, and the copy is the log: same offsets, times, bytes.
  const copy = await copyOf();
  try {
    assert.ok(copy.lastOffset >= Math.max(...acked));
    assert.deepEqual(await contents(copy), await contents(leader.store));
  } finally {
    await copy.close();
    await leader.store.close();
  }
});
