/**
 * The operator's side of replication (issue 9): the effective replication factor, the Secret
 * with the key the partitions authenticate replication traffic with, and where each partition's
 * copies live (for the Stream's status).
 *
 *   Secret {stream}-replication  type hadron.rs/replication-key  key: 32 random bytes (base64)
 *
 * The Secret is created once, when missing, and never rewritten by a reconcile: rotating the key
 * under running partitions would cut replication between pods holding different keys. It carries
 * the operator's labels and an owner reference to the Stream (deleted with it). The partitions
 * read it as `HADRON_REPLICATION_KEY` (secretKeyRef).
 */
import { randomBytes } from 'node:crypto';
import type { Stream } from '@hadron/core';
import type { KubeObject } from '@hadron/k8s';
import { ownerRef, streamLabels } from './objects.js';

export const REPLICATION_KEY_ENV = 'HADRON_REPLICATION_KEY';
export const REPLICATION_SECRET_KEY = 'key';
export const REPLICATION_KEY_BYTES = 32;
/**
 * The Secret's type. Not Opaque: partitions watch the operator's Secrets (same labels) for token
 * keys and skip this type, as they skip kubernetes.io/tls (core parseTokenSecret).
 */
export const REPLICATION_SECRET_TYPE = 'hadron.rs/replication-key';

export const replicationSecretName = (stream: string): string => `${stream}-replication`;

/**
 * `spec.replicationFactor`, or min(2, partitions) when absent; never above partitions. Read from
 * the raw spec: the API server validated it (CRD schema), and the shared parser may not carry it.
 */
export function replicationFactor(s: Stream, rawSpec?: Record<string, unknown>): number {
  const raw = rawSpec?.['replicationFactor'] ?? (s.spec as { replicationFactor?: unknown }).replicationFactor;
  const partitions = s.spec.partitions;
  const r = typeof raw === 'number' && Number.isInteger(raw) && raw >= 1 ? raw : Math.min(2, partitions);
  return Math.min(r, partitions);
}

/** A new Secret with a fresh random key (only created when none exists). */
export function newReplicationSecret(s: Stream, namespace: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: REPLICATION_SECRET_TYPE,
    metadata: { name: replicationSecretName(s.metadata.name), namespace, labels: streamLabels(s.metadata.name), ownerReferences: [ownerRef(s)] },
    // The pods get the Secret's decoded value as an environment variable, so the key must be text:
    // 32 random bytes as base64url (43 printable characters). Raw bytes arrived as invalid UTF-8
    // and no replica could authenticate on a real node.
    data: { [REPLICATION_SECRET_KEY]: Buffer.from(randomBytes(REPLICATION_KEY_BYTES).toString('base64url'), 'utf8').toString('base64') },
  } as KubeObject;
}

/** The partition container's env entry for the key. */
export function replicationKeyEnv(stream: string): { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } } {
  return { name: REPLICATION_KEY_ENV, valueFrom: { secretKeyRef: { name: replicationSecretName(stream), key: REPLICATION_SECRET_KEY } } };
}

/** Partition N is served by pod N and copied to pods N+1 … N+r−1 (mod partitions). */
export function replicaPlacement(stream: string, partitions: number, r: number): Array<{ partition: number; pod: string; replicaPods: string[] }> {
  return Array.from({ length: partitions }, (_, n) => ({
    partition: n,
    pod: `${stream}-${n}`,
    replicaPods: Array.from({ length: Math.max(0, r - 1) }, (_, k) => `${stream}-${(n + k + 1) % partitions}`),
  }));
}
