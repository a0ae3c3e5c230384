import assert from 'node:assert/strict';
import { test } from 'node:test';
import { copiesRequired, effectiveFactor, replicaPartitions, replicatedLeaders, WRITE_ACK } from './placement.js';

test('replicas are the next r−1 pods, wrapping around', () => {
  assert.deepEqual(replicaPartitions(0, 3, 2), [1]);
  assert.deepEqual(replicaPartitions(2, 3, 2), [0]);
  assert.deepEqual(replicaPartitions(1, 3, 3), [2, 0]);
  assert.deepEqual(replicaPartitions(0, 1, 1), []);
  assert.deepEqual(replicaPartitions(4, 3, 2), [], 'a pod beyond the partition count leads nothing');
});

test('each pod holds the replicas of the r−1 partitions before it', () => {
  for (const [p, r] of [[3, 2], [3, 3], [5, 3], [4, 4]] as const) {
    for (let pod = 0; pod < p; pod++) {
      const expected = Array.from({ length: p }, (_, n) => n).filter((n) => replicaPartitions(n, p, r).includes(pod));
      assert.deepEqual([...replicatedLeaders(pod, p, r)].sort(), expected.sort(), `pod ${pod} of ${p}, r=${r}`);
    }
  }
});

test('copies required per ack mode', () => {
  assert.equal(copiesRequired(WRITE_ACK.ALL, 3), 3);
  assert.equal(copiesRequired(WRITE_ACK.MAJORITY, 3), 2);
  assert.equal(copiesRequired(WRITE_ACK.MAJORITY, 2), 2);
  assert.equal(copiesRequired(WRITE_ACK.MAJORITY, 1), 1);
  assert.equal(copiesRequired(WRITE_ACK.NONE, 3), 1);
  assert.equal(effectiveFactor({ partitions: 2, replicationFactor: 5 }), 2);
  assert.equal(effectiveFactor({ partitions: 2 }), 1);
});
