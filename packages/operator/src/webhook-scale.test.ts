/**
 * Which Stream UPDATEs the webhook asks the partitions about (scaleDownOf): a lower
 * spec.partitions, or a Scale of the `scale` subresource with fewer replicas; nothing else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '@hadron/k8s';
import { review, scaleDownOf } from './webhook.js';

const stream = (partitions: number, annotations?: Record<string, string>): KubeObject =>
  ({ apiVersion: 'hadron.rs/v1beta1', kind: 'Stream', metadata: { name: 'events', ...(annotations ? { annotations } : {}) }, spec: { partitions, image: 'img' } }) as KubeObject;
const scale = (replicas: number): Record<string, unknown> => ({ apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name: 'events' }, spec: { replicas } });
const body = (object: unknown, oldObject: unknown, extra: Record<string, unknown> = {}): unknown => ({ request: { uid: 'u', operation: 'UPDATE', object, oldObject, ...extra } });

test('a lower spec.partitions is a scale-down; equal, higher and CREATE are not', () => {
  const d = scaleDownOf(body(stream(1, { 'hadron.rs/allow-partition-loss': 'true' }), stream(3)), () => undefined);
  assert.deepEqual([d?.from, d?.to, d?.stream.metadata.annotations?.['hadron.rs/allow-partition-loss']], [3, 1, 'true']);
  assert.equal(scaleDownOf(body(stream(3), stream(3)), () => undefined), undefined);
  assert.equal(scaleDownOf(body(stream(4), stream(3)), () => undefined), undefined);
  assert.equal(scaleDownOf({ request: { operation: 'CREATE', object: stream(1) } }, () => undefined), undefined);
});

test('a Scale of streams/scale with fewer replicas is a scale-down of the Stream it names', () => {
  const live = stream(3, { 'hadron.rs/allow-partition-loss': 'true' });
  const d = scaleDownOf(body(scale(2), scale(3), { subResource: 'scale', name: 'events' }), (n) => (n === 'events' ? live : undefined));
  assert.deepEqual([d?.from, d?.to, d?.stream.metadata.name], [3, 2, 'events']);
  assert.equal(scaleDownOf(body(scale(4), scale(3), { subResource: 'scale', name: 'events' }), () => live), undefined);
  // The Scale itself passes the Stream schema checks (it is not a Stream).
  assert.equal(review('streams', body(scale(2), scale(3), { subResource: 'scale', name: 'events' })).response.allowed, true);
});
