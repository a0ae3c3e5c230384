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
import { RawClient, startStream, streamManifest, testEvent, until } from '@hadron/testing';
import { ALL, MAJORITY, NONE, checkAcked, metric, publishBatches, replicaCaughtUp, type Acked } from './replication-test-support.js';

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

test('replicationFactor raised live: the new replica catches up from sealed segments and the tail while the leader serves; retention runs on it; lowered again, its copy stops', async () => {
  await using c = await startStream({
    partitions: 2,
    spec: { replicationFactor: 1 },
    retention: { strategy: 'time', retentionSeconds: 2 },
    env: { HADRON_SEGMENT_BYTES: '8192', HADRON_COMPACTION_INTERVAL_SECONDS: '1', HADRON_REPLICATION_TIMEOUT_MS: '2000' },
  });
  const cl = new RawClient(c.url(0), c.tokens.full);
  const acked: Acked[] = [];
  // r = 1: ALL is the leader's copy alone, even with pod 1 gone.
  await c.kill(1, 'SIGKILL');
  await publishBatches(cl, 'solo', 20, ALL, acked);
  await c.startPartition(1);
  const copyDir = path.join(c.dataDir, 'events-1', 'replicas', '0', 'log');
  assert.equal(fs.existsSync(copyDir), false, 'no copy while r = 1');
  c.writeManifest('stream.yaml', streamManifest('events', 2, { strategy: 'time', retentionSeconds: 2 }, { replicationFactor: 2 }));
  // Publishing goes on while the new replica copies the sealed segments and the tail.
  const during = publishBatches(cl, 'during', 20, NONE, acked);
  await replicaCaughtUp(c, 0, 1);
  await during;
  await publishBatches(cl, 'after', 5, ALL, acked);
  const segs = fs.readdirSync(copyDir).filter((f) => f.endsWith('.log'));
  assert.ok(segs.length > 1, `the copy has sealed segments too (${segs.join(',')})`);
  // Retention (2 s) removes old segments on the leader and then on the replica.
  await until(async () => (await metric(c, 0, 'hadron_stream_first_offset')) > 1, 20_000, 'retention ran on the leader');
  await until(() => !fs.readdirSync(copyDir).includes('00000000000000000001.log'), 20_000, 'retention removed the oldest segment of the copy');
  // Lowered to 1: ALL no longer needs pod 1.
  c.writeManifest('stream.yaml', streamManifest('events', 2, { strategy: 'time', retentionSeconds: 2 }, { replicationFactor: 1 }));
  await until(async () => (await metric(c, 0, 'hadron_stream_replication_factor')) === 1, 10_000, 'r = 1 in effect');
  await c.kill(1, 'SIGKILL');
  await publishBatches(cl, 'solo-again', 3, ALL, acked);
  await cl.close();
});
