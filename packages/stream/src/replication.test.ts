/**
 * Replication end to end (docs/replication.md): real partition processes on loopback, real disks.
 * The checker: every acknowledged event is back at its offset with its bytes after the leader's
 * whole volume is deleted; acks wait for the copies their mode asks for; replicas catch up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { GrpcStatusError, HadronError, Status } from '@hadron/core';
import { encodeEvent } from '@hadron/proto';
import { RawClient, readAll, startStream, testEvent, until, type TestStream } from '@hadron/testing';

const ALL = 0;
const MAJORITY = 1;
const NONE = 2;

async function metric(c: TestStream, p: number, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${c.metricsUrl(p)}/metrics`)).text();
  const m = new RegExp(`^${name}\\{[^}]*${labels}[^}]*\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** The replica on pod `replica` holds every event and every state change of partition `p`. */
async function replicaCaughtUp(c: TestStream, p: number, replica: number): Promise<void> {
  await until(
    async () => (await metric(c, p, 'hadron_stream_replica_lag_events', `replica="${replica}"`)) === 0 && (await metric(c, p, 'hadron_stream_replica_state_lag_changes', `replica="${replica}"`)) === 0,
    15_000,
    `replica ${replica} of partition ${p} caught up`,
  );
}

interface Acked {
  last: number;
  bytes: Buffer[];
}

/** Publishes `batches` batches of 10 with `ack`, recording what was acknowledged. */
async function publishBatches(cl: RawClient, tag: string, batches: number, ack: number, acked: Acked[]): Promise<void> {
  for (let b = 0; b < batches; b++) {
    const evs = Array.from({ length: 10 }, (_, i) => testEvent(0, { id: `${tag}-${b}-${i}`, data: Buffer.alloc(100 + i, b) }));
    const r = await cl.publish(evs, { fsync: true, ack });
    acked.push({ last: r.offset, bytes: evs.map((e) => Buffer.from(encodeEvent(e))) });
  }
}

async function checkAcked(cl: RawClient, acked: Acked[]): Promise<void> {
  const max = Math.max(...acked.map((a) => a.last));
  const all = await readAll(cl, max);
  assert.deepEqual(all.slice(0, max).map((e) => e.offset), Array.from({ length: max }, (_, i) => i + 1), 'offsets dense from 1');
  for (const a of acked) {
    const got = all.slice(a.last - a.bytes.length, a.last).map((e) => Buffer.from(encodeEvent(e.event)));
    assert.deepEqual(got, a.bytes, `acknowledged batch ending at ${a.last} is back, byte-identical`);
  }
}

for (const r of [2, 3] as const) {
  for (const ack of [ALL, MAJORITY, NONE]) {
    test(`r=${r} ack ${['ALL', 'MAJORITY', 'NONE'][ack]}: kill -9 the leader, delete its volume, restart: every acknowledged event and the group offset come back`, async () => {
      await using c = await startStream({ partitions: 3, spec: { replicationFactor: r }, env: { HADRON_REPLICATION_TIMEOUT_MS: '5000' } });
      const cl = new RawClient(c.url(0), c.tokens.full);
      const acked: Acked[] = [];
      await Promise.all([publishBatches(cl, 'a', 30, ack, acked), publishBatches(cl, 'b', 30, ack, acked)]);
      // A durable group acks the first 100 events.
      const sub = cl.subscribe({ group: 'g', durable: true, maxBatchSize: 50, start: { beginning: true } });
      let seen = 0;
      while (seen < 100) {
        const d = await sub.next();
        seen = d.lastIncludedOffset;
        sub.ack();
      }
      sub.close();
      assert.equal(seen, 100);
      // Every replica holds all events and the group's offset (the state lag counts the commit).
      for (let i = 1; i < r; i++) await replicaCaughtUp(c, 0, i);
      await cl.close();
      await c.kill(0, 'SIGKILL');
      fs.rmSync(path.join(c.dataDir, 'events-0'), { recursive: true, force: true });
      await c.startPartition(0);
      assert.equal(await metric(c, 0, 'hadron_stream_replication_recovered_records'), 600, 'all 600 events taken back');
      const cl2 = new RawClient(c.url(0), c.tokens.full);
      await checkAcked(cl2, acked);
      // The group resumes after what it acked.
      const sub2 = cl2.subscribe({ group: 'g', durable: true, maxBatchSize: 10, start: { beginning: true } });
      const d = await sub2.next();
      assert.equal(d.lastIncludedOffset - d.events.length + 1, 101, 'group resumes at offset 101');
      sub2.close();
      // New publishes continue after the recovered log and replicate again.
      const more = await cl2.publish([testEvent(1)], { ack: ALL });
      assert.equal(more.offset, 601);
      await cl2.close();
    });
  }
}

test('replica paused (SIGSTOP): ack ALL fails with UNAVAILABLE naming it within the timeout; MAJORITY with r=3 keeps acking; after SIGCONT it catches up', async () => {
  await using c = await startStream({ partitions: 3, spec: { replicationFactor: 3 }, env: { HADRON_REPLICATION_TIMEOUT_MS: '1500' } });
  const cl = new RawClient(c.url(0), c.tokens.full);
  const acked: Acked[] = [];
  await publishBatches(cl, 'warm', 5, ALL, acked);
  const paused = c.procs.get(2)!.proc;
  paused.kill('SIGSTOP');
  try {
    const started = Date.now();
    const err = await cl.publish([testEvent(1)], { ack: ALL }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof GrpcStatusError, `ALL must fail, got ${String(err)}`);
    assert.equal(err.grpcStatus, Status.UNAVAILABLE);
    assert.match(err.message, /events-2/, 'names the missing replica');
    assert.doesNotMatch(err.message, /events-1 \(/, 'does not name the replica that has the batch');
    assert.ok(Date.now() - started < 30_000);
    // MAJORITY: the leader and pod 1 make 2 of 3.
    await publishBatches(cl, 'maj', 20, MAJORITY, acked);
  } finally {
    paused.kill('SIGCONT');
  }
  await replicaCaughtUp(c, 0, 2);
  await publishBatches(cl, 'all-again', 3, ALL, acked);
  await checkAcked(cl, acked);
  await cl.close();
});

test('replica killed: ack ALL fails fast once it is unreachable; restarted, it catches up and ALL acks again', async () => {
  await using c = await startStream({ partitions: 2, spec: { replicationFactor: 2 }, env: { HADRON_REPLICATION_TIMEOUT_MS: '1000' } });
  const cl = new RawClient(c.url(0), c.tokens.full);
  const acked: Acked[] = [];
  await publishBatches(cl, 'x', 5, ALL, acked);
  await c.kill(1, 'SIGKILL');
  const errors: unknown[] = [];
  for (let i = 0; i < 3; i++) errors.push(await cl.publish([testEvent(i)], { ack: ALL }).catch((e: unknown) => e));
  for (const e of errors) {
    assert.ok(e instanceof HadronError && e.code === 'UNAVAILABLE', `ALL without the replica fails with UNAVAILABLE, got ${String(e)}`);
  }
  // NONE needs only the leader's copy.
  await publishBatches(cl, 'none', 5, NONE, acked);
  await c.startPartition(1);
  await replicaCaughtUp(c, 0, 1);
  await publishBatches(cl, 'y', 5, ALL, acked);
  await checkAcked(cl, acked);
  await cl.close();
});

test('the replication service refuses client tokens and wrong keys', async () => {
  await using c = await startStream({ partitions: 2, spec: { replicationFactor: 2 } });
  const { GrpcChannel } = await import('@hadron/core');
  const { METHOD, ReplicaStateRequestSchema, create, toBinary } = await import('@hadron/proto');
  const ch = new GrpcChannel(`http://127.0.0.1:${c.serverBase + 1}`);
  const req = toBinary(ReplicaStateRequestSchema, create(ReplicaStateRequestSchema, { partition: 0 }));
  const attempts: Array<Record<string, string>> = [{ authorization: `bearer ${c.tokens.full}` }, { 'hadron-replication-key': 'wrong-key-wrong-key-wrong' }, {}];
  for (const metadata of attempts) {
    const err = await ch.unary(METHOD.replicaState, req, { metadata }).catch((e: unknown) => e);
    assert.ok(err instanceof GrpcStatusError && err.grpcStatus === Status.UNAUTHENTICATED, `refused: ${JSON.stringify(Object.keys(metadata))} → ${String(err)}`);
  }
  // And the client port does not serve it at all.
  const client = new GrpcChannel(c.url(1));
  const err = await client.unary(METHOD.replicaState, req, { metadata: { 'hadron-replication-key': 'test-replication-key-0123456789abcdef' } }).catch((e: unknown) => e);
  assert.ok(err instanceof GrpcStatusError && err.grpcStatus === Status.UNIMPLEMENTED, `client port: ${String(err)}`);
  await ch.close();
  await client.close();
});
