/**
 * Shared helpers of the replication end-to-end tests: metrics, "replica caught up", publishing
 * with a record of every acknowledged batch, and the checker of acknowledged events.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { encodeEvent } from '@hadron/proto';
import { RawClient, readAll, startStream, testEvent, until, type TestStream } from '@hadron/testing';

export const ALL = 0;
export const MAJORITY = 1;
export const NONE = 2;

export async function metric(c: TestStream, p: number, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${c.metricsUrl(p)}/metrics`)).text();
  const m = new RegExp(`^${name}\\{[^}]*${labels}[^}]*\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** The replica on pod `replica` holds every event and every state change of partition `p`. */
export async function replicaCaughtUp(c: TestStream, p: number, replica: number): Promise<void> {
  await until(
    async () => (await metric(c, p, 'hadron_stream_replica_lag_events', `replica="${replica}"`)) === 0 && (await metric(c, p, 'hadron_stream_replica_state_lag_changes', `replica="${replica}"`)) === 0,
    15_000,
    `replica ${replica} of partition ${p} caught up`,
  );
}

export interface Acked {
  last: number;
  bytes: Buffer[];
}

/** Publishes `batches` batches of 10 with `ack`, recording what was acknowledged. */
export async function publishBatches(cl: RawClient, tag: string, batches: number, ack: number, acked: Acked[]): Promise<void> {
  for (let b = 0; b < batches; b++) {
    const evs = Array.from({ length: 10 }, (_, i) => testEvent(0, { id: `${tag}-${b}-${i}`, data: Buffer.alloc(100 + i, b) }));
    const r = await cl.publish(evs, { fsync: true, ack });
    acked.push({ last: r.offset, bytes: evs.map((e) => Buffer.from(encodeEvent(e))) });
  }
}

export async function checkAcked(cl: RawClient, acked: Acked[]): Promise<void> {
  const max = Math.max(...acked.map((a) => a.last));
  const all = await readAll(cl, max);
  assert.deepEqual(all.slice(0, max).map((e) => e.offset), Array.from({ length: max }, (_, i) => i + 1), 'offsets dense from 1');
  for (const a of acked) {
    const got = all.slice(a.last - a.bytes.length, a.last).map((e) => Buffer.from(encodeEvent(e.event)));
    assert.deepEqual(got, a.bytes, `acknowledged batch ending at ${a.last} is back, byte-identical`);
  }
}


/**
 * Registers the leader-volume-loss test for replication factor `r` and each ack mode: publishers
 * record every acknowledged batch, a durable group acks 100 events, the leader is killed (kill -9),
 * its whole data directory deleted and it is restarted: every acknowledged event is back at its
 * offset byte-identical, the group resumes at 101, new publishes continue at 601.
 */
export function volumeLossTests(r: number): void {
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
