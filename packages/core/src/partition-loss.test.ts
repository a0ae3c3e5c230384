import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwtUnverified, verifyJwt, newHmacKey } from './auth/jwt.js';
import { ALLOW_PARTITION_LOSS, allowsPartitionLoss, checkPartitionLoss, mintShortLivedToken, partitionLossRefusal, tokenMayInspect, type PartitionLossReport } from './partition-loss.js';
import type { Token } from './manifests/types.js';

const report = (r: Partial<PartitionLossReport>): PartitionLossReport => ({ stream: 's', from: 3, to: 1, leftBehind: [], unreachable: [], ...r });

test('the annotation allows partition loss unless it says "false"', () => {
  const s = (annotations?: Record<string, string>) => ({ metadata: { name: 's', ...(annotations ? { annotations } : {}) } });
  assert.equal(allowsPartitionLoss(s()), false);
  assert.equal(allowsPartitionLoss(s({ [ALLOW_PARTITION_LOSS]: 'true' })), true);
  assert.equal(allowsPartitionLoss(s({ [ALLOW_PARTITION_LOSS]: '' })), true);
  assert.equal(allowsPartitionLoss(s({ [ALLOW_PARTITION_LOSS]: 'false' })), false);
});

test('refusal names partition, group, pipeline and count, and unreachable partitions', () => {
  assert.equal(partitionLossRefusal(report({}), false), undefined);
  const r = report({
    leftBehind: [
      { partition: 1, kind: 'group', name: 'audit', unacked: 3 },
      { partition: 2, kind: 'pipeline', name: 'p', unacked: 0, activeInstances: 2 },
    ],
    unreachable: [{ partition: 2, error: 'connect ECONNREFUSED' }],
  });
  assert.equal(
    partitionLossRefusal(r, false),
    'scaling stream s from 3 to 1 partitions would remove partitions 1..2, but they hold events not yet delivered: partition 1: group audit (3 unacked event(s)); partition 2: pipeline p (2 active instance(s), 0 event(s) not yet scanned); and it cannot be known what they hold: partition 2 could not be asked (connect ECONNREFUSED); consume them first, or set annotation hadron.rs/allow-partition-loss: "true" on the Stream to remove them anyway',
  );
  assert.equal(partitionLossRefusal(r, true), undefined);
});

test('without a token no partition is asked, and that is a refusal', async () => {
  const r = await checkPartitionLoss({ stream: 's', from: 2, to: 1, urlOf: () => 'http://127.0.0.1:1', token: undefined, noTokenReason: 'no Token may subscribe', pipelines: [] });
  assert.deepEqual(r.unreachable, [{ partition: 1, error: 'no Token may subscribe' }]);
  assert.match(partitionLossRefusal(r, false)!, /partition 1 could not be asked \(no Token may subscribe\)/);
});

test('a partition where nothing listens is reported as unreachable with the reason', async () => {
  const r = await checkPartitionLoss({ stream: 's', from: 2, to: 1, urlOf: () => 'http://127.0.0.1:1', token: 'a.b.c', pipelines: [], timeoutMs: 2000 });
  assert.equal(r.unreachable.length, 1);
  assert.match(r.unreachable[0]!.error, /ECONNREFUSED/);
});

test('inspection permission and short-lived tokens', () => {
  const tok = (spec: Token['spec']): Token => ({ apiVersion: 'hadron.rs/v1beta1', kind: 'Token', metadata: { name: 't' }, spec });
  assert.equal(tokenMayInspect(tok({ all: true }), 's'), true);
  assert.equal(tokenMayInspect(tok({ all: false, streams: { pub: ['s'], sub: [] } }), 's'), false);
  assert.equal(tokenMayInspect(tok({ all: false, streams: { pub: [], sub: ['s'] } }), 's'), true);
  const key = newHmacKey();
  const jwt = mintShortLivedToken('t', key, 60, 1_800_000_000_000);
  const claims = verifyJwt(decodeJwtUnverified(jwt), key, 1_800_000_000);
  assert.equal(claims.sub, 't');
  assert.equal(claims.exp, 1_800_000_060);
});
