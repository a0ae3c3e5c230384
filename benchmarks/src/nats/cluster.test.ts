/**
 * Smoke test of the replication peer (nats/cluster.ts, nats/repl.ts) against real nats-server
 * processes. Kept out of `npm test`: it needs nats-server, which CI does not install (.ci/run).
 * Run it with `npm run test:nats-cluster -w @hadron/benchmarks` (sets BENCH_NATS_CLUSTER_TEST=1).
 * The start-up failure test needs no nats-server and always runs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { natsServerVersion } from '../lib/machine.js';
import { payload } from '../lib/events.js';
import { startNatsCluster } from './cluster.js';
import { jsPublish } from './publish.js';
import { addReplicatedStream } from './repl.js';
import { streamName, streamState, subject } from './server.js';

const skip =
  process.env.BENCH_NATS_CLUSTER_TEST !== '1'
    ? 'needs nats-server: run with BENCH_NATS_CLUSTER_TEST=1 (npm run test:nats-cluster -w @hadron/benchmarks)'
    : natsServerVersion()
      ? false
      : 'nats-server is not installed';

test('the 3-node JetStream cluster forms, places R3 and R1 stream leaders on the wanted nodes, replicates, and stops leaving nothing behind', { skip, timeout: 120_000 }, async () => {
  const c = await startNatsCluster();
  const admin = await c.connect(0).catch(async (err: unknown) => {
    await c.stop();
    throw err;
  });
  try {
    // Formed: every node names the same meta leader and a cluster of 3; the leader sees the 2 others current.
    const views = await Promise.all(c.nodes.map((_, i) => c.meta(i)));
    const leader = views[0]!.leader!;
    assert.ok(['n0', 'n1', 'n2'].includes(leader), `meta leader ${leader}`);
    for (const v of views) assert.deepEqual([v.leader, v.cluster_size], [leader, 3]);
    const peers = views[c.nodes.findIndex((n) => n.name === leader)]!.replicas ?? [];
    assert.deepEqual(peers.map((p) => p.name).sort(), ['n0', 'n1', 'n2'].filter((n) => n !== leader));
    assert.ok(peers.every((p) => p.current));

    // R3 stream led by n2 (moved there by step-downs if elected elsewhere), 3 copies current.
    assert.equal(await addReplicatedStream(c, admin, 0, 3, 2), 2);
    const jsm = await admin.jetstreamManager();
    const info = await jsm.streams.info(streamName(0));
    assert.equal(info.config.num_replicas, 3);
    assert.equal(info.cluster?.leader, 'n2');
    assert.deepEqual(info.cluster?.replicas?.map((r) => r.name).sort(), ['n0', 'n1']);
    // Published through the leader's node: every PubAck arrives and the stream holds them all.
    const nc = await c.connect(2);
    try {
      assert.equal(await jsPublish(nc, subject(0), 500, 100, payload(1024)), 500);
    } finally {
      await nc.close();
    }
    assert.deepEqual(await streamState(admin, 0), { messages: 500, lastSeq: 500 });

    // R1 stream pinned to n1 by its server tag.
    assert.equal(await addReplicatedStream(c, admin, 1, 1, 1), 1);
    const one = await jsm.streams.info(streamName(1));
    assert.equal(one.cluster?.leader, 'n1');
    assert.equal((one.cluster?.replicas ?? []).length, 0);
  } finally {
    await admin.close();
    await c.stop();
  }
  for (const n of c.nodes) assert.ok(n.proc.exitCode !== null || n.proc.signalCode !== null, `${n.name} exited`);
  assert.equal(fs.existsSync(c.dir), false);
});

test('without a nats-server binary the cluster start fails naming the spawn error, instead of waiting out its deadline and hanging in stop()', { timeout: 60_000 }, async () => {
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent-bench-path';
  try {
    await assert.rejects(startNatsCluster({ formTimeoutMs: 30_000 }), /nats-server n0 exited during start-up:[\s\S]*spawn error: spawn nats-server ENOENT/);
  } finally {
    process.env.PATH = saved;
  }
});
