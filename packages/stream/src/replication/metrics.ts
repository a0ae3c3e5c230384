/**
 * Replication metrics (docs/metrics.md, "Replication"), registered on the partition's registry.
 * Series of a replica carry `replica` = the partition number of the pod holding the copy.
 */
import type { Counter, Gauge, Registry } from 'prom-client';
import { MetricBuilder } from '../metric-builder.js';

export const REPLICATION_METRIC = {
  /** spec.replicationFactor in effect. */
  factor: 'hadron_stream_replication_factor',
  /** Highest offset each replica of this partition reported durable. */
  replicaDurableOffset: 'hadron_stream_replica_durable_offset',
  /** Events the replica does not hold yet. */
  replicaLagEvents: 'hadron_stream_replica_lag_events',
  /** Age of the oldest event the replica does not hold yet (0 when it holds everything). */
  replicaLagSeconds: 'hadron_stream_replica_lag_seconds',
  /** 1 when the replica fetched within the replication timeout and holds everything. */
  replicaInSync: 'hadron_stream_replica_in_sync',
  /** Durable-state changes (group offsets, pipeline state, retention) the replica has not confirmed. */
  replicaStateLag: 'hadron_stream_replica_state_lag_changes',
  /** Publishes refused because the copies their ack asked for were not had in time. */
  publishUnreplicated: 'hadron_stream_publish_unreplicated_total',
  /** On a replica: the last offset copied of each leader (`leader` label). */
  copiedOffset: 'hadron_stream_replica_copied_offset',
  /** On a replica: copies set aside because they did not continue their leader's log. */
  divergedCopies: 'hadron_stream_replica_diverged_total',
  /** Records a starting leader took back from a replica (lost volume or lost unsynced tail). */
  recoveredRecords: 'hadron_stream_replication_recovered_records',
} as const;

export class ReplicationMetrics {
  readonly factor: Gauge;
  readonly replicaDurableOffset: Gauge<'replica'>;
  readonly replicaLagEvents: Gauge<'replica'>;
  readonly replicaLagSeconds: Gauge<'replica'>;
  readonly replicaInSync: Gauge<'replica'>;
  readonly replicaStateLag: Gauge<'replica'>;
  readonly publishUnreplicated: Counter<'ack'>;
  readonly copiedOffset: Gauge<'leader'>;
  readonly divergedCopies: Counter<'leader'>;
  readonly recoveredRecords: Gauge;

  constructor(registry: Registry) {
    const m = new MetricBuilder(registry);
    const replica = ['replica'] as const;
    this.factor = m.gauge(REPLICATION_METRIC.factor, 'Copies of this partition (spec.replicationFactor in effect; 1 = no replicas).');
    this.replicaDurableOffset = m.gauge(REPLICATION_METRIC.replicaDurableOffset, 'Highest offset the replica on pod `replica` reported durable.', replica);
    this.replicaLagEvents = m.gauge(REPLICATION_METRIC.replicaLagEvents, 'Events of this partition the replica does not hold durably yet.', replica);
    this.replicaLagSeconds = m.gauge(REPLICATION_METRIC.replicaLagSeconds, 'Age in seconds of the oldest event the replica does not hold durably yet (0 = none).', replica);
    this.replicaInSync = m.gauge(REPLICATION_METRIC.replicaInSync, '1 when the replica fetched within HADRON_REPLICATION_TIMEOUT_MS and holds every event, else 0.', replica);
    this.replicaStateLag = m.gauge(REPLICATION_METRIC.replicaStateLag, 'Durable-state changes (group offsets, pipeline state, retention) the replica has not confirmed yet.', replica);
    this.publishUnreplicated = m.counter(REPLICATION_METRIC.publishUnreplicated, 'Publishes failed with UNAVAILABLE because their ack mode\'s copies were not durable in time.', ['ack']);
    this.copiedOffset = m.gauge(REPLICATION_METRIC.copiedOffset, 'On this pod: last offset copied of partition `leader` (a replica held here).', ['leader']);
    this.divergedCopies = m.counter(REPLICATION_METRIC.divergedCopies, 'Replica copies set aside because they did not continue the leader\'s log (see logs).', ['leader']);
    this.recoveredRecords = m.gauge(REPLICATION_METRIC.recoveredRecords, 'Records this partition took back from its replicas at the last start.');
  }
}
