/**
 * A partition whose own server is up but cannot acknowledge `ALL` (its replica's pod is gone)
 * answers every publish UNAVAILABLE while the client's connection to it stays up. The client
 * must send those events to another partition, as it does when a partition's connection is down
 * (docs/client.md, "Failures, retries and fail-over"); before, `markDown` flipped straight back
 * to ready, every retry went to the same refusing partition and the publish failed although
 * partition 0 could take it. Seen on the real node while a rolling upgrade replaced a replica pod.
 * Real partition processes, real replication.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStream, until } from '@hadron/testing';
import { createClient } from './client.js';
import { partitionOf } from './hash.js';

function keyFor(p: number, n: number): string {
  for (let i = 0; ; i++) if (partitionOf({ id: '', source: '', optattrs: { partitionkey: `k${i}` } }, n) === p) return `k${i}`;
}

test('a partition refusing ALL publishes (its replica pod is gone) is failed over, then used again once it acknowledges', async (t) => {
  const n = 3;
  // r = 2: partition 1's replica lives on pod 2, partition 0's on pod 1, partition 2's on pod 0.
  const c = await startStream({ partitions: n, spec: { replicationFactor: 2 }, env: { HADRON_REPLICATION_TIMEOUT_MS: '1000' } });
  t.after(() => c[Symbol.asyncDispose]());
  // Default publish options: ack ALL, fail-over on, 5 attempts.
  const client = createClient({ url: c.url(0), token: c.tokens.full });
  t.after(() => client.close());
  await client.ready();
  const key = keyFor(1, n);
  assert.equal((await client.publish({ id: 'before', source: 'test', type: 't', partitionkey: key })).partition, 1);

  // Pod 2 gone: partition 2 is down (connection refused) and partition 1 cannot get its copy.
  await c.kill(2, 'SIGKILL');
  const failedOver = await client.publish({ id: 'while-down', source: 'test', type: 't', partitionkey: key });
  assert.equal(failedOver.partition, 0, 'partition 1 refused, partition 2 is down: partition 0 takes it');
  assert.equal(client.partitions().find((p) => p.partition === 1)?.health, 'ready', 'partition 1 itself stayed reachable');
  const more = await client.publish(Array.from({ length: 20 }, (_, i) => ({ id: `more-${i}`, source: 'test', type: 't', partitionkey: key })));
  assert.ok(more.every((a) => a.partition === 0), `all on partition 0: ${JSON.stringify(more.map((a) => a.partition))}`);

  // Pod 2 back: partition 1 acknowledges again and its key's events return to it.
  await c.startPartition(2);
  let i = 0;
  await until(async () => (await client.publish({ id: `after-${i++}`, source: 'test', type: 't', partitionkey: key })).partition === 1, 30_000, 'publishes of partition 1\'s key land on partition 1 again');
  assert.ok(i <= 1000, 'bounded');
});
