import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStream, parseTokenSecret, type Stream } from '@hadron/core';
import { newReplicationSecret, replicaPlacement, replicationFactor } from './replication.js';

function stream(partitions: number): Stream {
  const r = parseStream({ metadata: { name: 'events', uid: 'u1' }, spec: { partitions, image: 'img' } });
  assert.ok(r.ok);
  return r.value;
}

test('the replication key Secret: 32 random bytes as printable text (an env var), owned by the Stream, and not a token Secret to the partitions', () => {
  const a = newReplicationSecret(stream(3), 'prod');
  const b = newReplicationSecret(stream(3), 'prod');
  // What the pods see as HADRON_REPLICATION_KEY: printable text encoding 32 random bytes.
  const key = Buffer.from((a as unknown as { data: Record<string, string> }).data['key']!, 'base64').toString('utf8');
  assert.match(key, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(Buffer.from(key, 'base64url').length, 32);
  assert.notDeepEqual((a as unknown as { data: unknown }).data, (b as unknown as { data: unknown }).data, 'a fresh key each time one is made');
  assert.equal(a.metadata.ownerReferences?.[0]?.kind, 'Stream');
  // Stream pods watch the operator's Secrets for token keys (same labels): this one must be
  // skipped quietly, not reported as a broken token Secret (seen on the real node before).
  assert.equal(parseTokenSecret(a as never), null);
});

test('effective replication factor and placement', () => {
  assert.equal(replicationFactor(stream(1)), 1);
  assert.equal(replicationFactor(stream(5)), 2);
  assert.equal(replicationFactor(stream(5), { replicationFactor: 3 }), 3);
  assert.equal(replicationFactor(stream(2), { replicationFactor: 9 }), 2, 'never above partitions');
  assert.deepEqual(replicaPlacement('events', 3, 3)[2], { partition: 2, pod: 'events-2', replicaPods: ['events-0', 'events-1'] });
  assert.deepEqual(replicaPlacement('events', 1, 1), [{ partition: 0, pod: 'events-0', replicaPods: [] }]);
});
