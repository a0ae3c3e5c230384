/**
 * Where the copies of a partition live (DESIGN.md "Replication"): partition N's leader is pod N,
 * its replicas are pods N+1 … N+r−1 (mod partitions). Pure functions, no transport, no storage.
 */

/** WriteAck of stream.proto: ALL = 0, MAJORITY = 1, NONE = 2. */
export const WRITE_ACK = { ALL: 0, MAJORITY: 1, NONE: 2 } as const;

export function ackName(ack: number): string {
  return ack === WRITE_ACK.MAJORITY ? 'MAJORITY' : ack === WRITE_ACK.NONE ? 'NONE' : 'ALL';
}

/** The replication factor in effect: the spec's r, never above the partition count, at least 1. */
export function effectiveFactor(spec: { partitions: number; replicationFactor?: number }): number {
  return Math.max(1, Math.min(spec.replicationFactor ?? 1, spec.partitions));
}

/** The pods (by partition number) holding replicas of `leader`'s partition. */
export function replicaPartitions(leader: number, partitions: number, r: number): number[] {
  if (leader >= partitions) return [];
  const out: number[] = [];
  for (let i = 1; i < Math.min(r, partitions); i++) out.push((leader + i) % partitions);
  return out;
}

/** The partitions whose replicas pod `pod` holds. */
export function replicatedLeaders(pod: number, partitions: number, r: number): number[] {
  if (pod >= partitions) return [];
  const out: number[] = [];
  for (let i = 1; i < Math.min(r, partitions); i++) out.push((pod - i + partitions) % partitions);
  return out;
}

/** Copies (the leader's included) a publish waits for: ALL = r, MAJORITY = ⌊r/2⌋+1, NONE = 1. */
export function copiesRequired(ack: number, r: number): number {
  if (ack === WRITE_ACK.NONE) return 1;
  if (ack === WRITE_ACK.MAJORITY) return Math.floor(r / 2) + 1;
  return r;
}
