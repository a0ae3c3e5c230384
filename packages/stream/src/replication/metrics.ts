/**
 * Replication metrics (docs/metrics.md, "Replication"), registered on the partition's registry.
 * Series of a replica carry `replica` = the partition number of the pod holding the copy.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

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
    const registers = [registry];
    this.factor = new Gauge({ name: REPLICATION_METRIC.factor, help: 'Copies of this partition (spec.replicationFactor in effect; 1 = no replicas).', registers });
    this.replicaDurableOffset = new Gauge({ name: REPLICATION_METRIC.replicaDurableOffset, help: 'Highest offset the replica on pod `replica` reported durable.', labelNames: ['replica'], registers });
    this.replicaLagEvents = new Gauge({ name: REPLICATION_METRIC.replicaLagEvents, help: 'Events of this partition the replica does not hold durably yet.', labelNames: ['replica'], registers });
    this.replicaLagSeconds = new Gauge({ name: REPLICATION_METRIC.replicaLagSeconds, help: 'Age in seconds of the oldest event the replica does not hold durably yet (0 = none).', labelNames: ['replica'], registers });
    this.replicaInSync = new Gauge({ name: REPLICATION_METRIC.replicaInSync, help: '1 when the replica fetched within HADRON_REPLICATION_TIMEOUT_MS and holds every event, else 0.', labelNames: ['replica'], registers });
    this.replicaStateLag = new Gauge({ name: REPLICATION_METRIC.replicaStateLag, help: 'Durable-state changes (group offsets, pipeline state, retention) the replica has not confirmed yet.', labelNames: ['replica'], registers });
    this.publishUnreplicated = new Counter({ name: REPLICATION_METRIC.publishUnreplicated, help: 'Publishes failed with UNAVAILABLE because their ack mode\'s copies were not durable in time.', labelNames: ['ack'], registers });
    this.copiedOffset = new Gauge({ name: REPLICATION_METRIC.copiedOffset, help: 'On this pod: last offset copied of partition `leader` (a replica held here).', labelNames: ['leader'], registers });
    this.divergedCopies = new Counter({ name: REPLICATION_METRIC.divergedCopies, help: 'Replica copies set aside because they did not continue the leader\'s log (see logs).', labelNames: ['leader'], registers });
    this.recoveredRecords = new Gauge({ name: REPLICATION_METRIC.recoveredRecords, help: 'Records this partition took back from its replicas at the last start.', registers });
  }
}
