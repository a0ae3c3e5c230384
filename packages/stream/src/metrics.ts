/**
 * Prometheus metrics of a partition server. Names of reference §2.11 are kept, with the
 * semantics their names promise (the original's §11.4 bugs fixed); new ones are added. Every
 * series carries the labels namespace, stream, statefulset, pod, partition.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LimitName, LimitObserver } from '@hadron/core';
import type { PipelineMetricsSink } from './pipelines/controller.js';
import { ProtocolMetrics } from './protocol-metrics.js';

export const METRIC = {
  currentOffset: 'hadron_stream_current_offset',
  firstOffset: 'hadron_stream_first_offset',
  lastCompactedOffset: 'hadron_stream_last_compacted_offset',
  publishedEvents: 'hadron_stream_published_events_total',
  publishedBytes: 'hadron_stream_published_bytes_total',
  publishBatchSize: 'hadron_stream_publish_batch_size',
  publishLatency: 'hadron_stream_publish_duration_seconds',
  publishErrors: 'hadron_stream_publish_errors_total',
  storageBytes: 'hadron_stream_storage_bytes',
  corruptRecords: 'hadron_stream_corrupt_records_total',
  recoveryTruncatedBytes: 'hadron_stream_recovery_truncated_bytes',
  recoveryClampedProgress: 'hadron_stream_recovery_clamped_progress',
  numGroups: 'hadron_stream_subscriber_num_groups',
  groupMembers: 'hadron_stream_subscriber_group_members',
  lastOffsetProcessed: 'hadron_stream_subscriber_last_offset_processed',
  groupLag: 'hadron_stream_subscriber_group_lag',
  deliveries: 'hadron_stream_subscriber_deliveries_total',
  redeliveries: 'hadron_stream_subscriber_redeliveries_total',
  nacks: 'hadron_stream_subscriber_nacks_total',
  ackTimeouts: 'hadron_stream_subscriber_ack_timeouts_total',
  skippedByRetention: 'hadron_stream_subscriber_skipped_by_retention_total',
  pipelineActiveInstances: 'hadron_pipeline_active_instances',
  pipelineLastOffsetProcessed: 'hadron_pipeline_last_offset_processed',
  pipelineStageSubscriptions: 'hadron_pipeline_stage_subscriptions',
  pipelineStageDuration: 'hadron_pipeline_stage_duration_seconds',
  pipelineStageRedeliveries: 'hadron_pipeline_stage_redeliveries_total',
  pipelineInstancesCompleted: 'hadron_pipeline_instances_completed_total',
  limitRejections: 'hadron_stream_limit_rejections_total',
  connections: 'hadron_stream_connections',
  inflightRequestBytes: 'hadron_stream_inflight_request_bytes',
  subscriberBufferedBytes: 'hadron_stream_subscriber_buffered_bytes',
  tokensWatcherErrors: 'hadron_tokens_watcher_errors',
  streamsWatcherErrors: 'hadron_streams_watcher_errors',
  pipelinesWatcherErrors: 'hadron_pipelines_watcher_errors',
  secretsWatcherErrors: 'hadron_secrets_watcher_errors',
  triggersWatcherErrors: 'hadron_triggers_watcher_errors',
} as const;

/** Every limit that counts into `hadron_stream_limit_rejections_total{limit}`. */
export const LIMIT_NAMES: readonly LimitName[] = [
  'connections',
  'handshake_timeout',
  'idle_timeout',
  'request_body_timeout',
  'inflight_request_bytes',
  'events_per_request',
];

export class StreamMetrics implements PipelineMetricsSink, LimitObserver {
  readonly registry = new Registry();
  /** Poison-event, ack-offset and log-limit guards (protocol-metrics.ts). */
  readonly protocol: ProtocolMetrics;
  /** Last written offset (a gauge set to the offset; it only ever rises). */
  readonly currentOffset: Gauge;
  readonly firstOffset: Gauge;
  /** Highest offset removed by retention (first readable offset − 1), updated on every run. */
  readonly lastCompactedOffset: Gauge;
  readonly publishedEvents: Counter;
  readonly publishedBytes: Counter;
  readonly publishBatchSize: Histogram;
  readonly publishLatency: Histogram<'fsync'>;
  /** Label-bound children of publishLatency (binding per request costs a label hash). */
  readonly publishLatencyFsync: ReturnType<Histogram<'fsync'>['labels']>;
  readonly publishLatencyNoFsync: ReturnType<Histogram<'fsync'>['labels']>;
  readonly publishErrors: Counter<'code'>;
  readonly storageBytes: Gauge;
  readonly corruptRecords: Gauge;
  readonly recoveryTruncatedBytes: Gauge;
  /** Stored progress entries found past the log end at the last start (clamped; should be 0). */
  readonly recoveryClampedProgress: Gauge;
  readonly numGroups: Gauge;
  readonly groupMembers: Gauge<'group'>;
  /** Last offset acked by a group (durable and ephemeral), a gauge that follows acks. */
  readonly lastOffsetProcessed: Gauge<'group'>;
  readonly groupLag: Gauge<'group'>;
  readonly deliveries: Counter<'group'>;
  readonly redeliveries: Counter<'group'>;
  readonly nacks: Counter<'group'>;
  readonly ackTimeouts: Counter<'group'>;
  readonly skippedByRetention: Counter<'group'>;
  readonly watcherErrors: Record<'tokens' | 'streams' | 'pipelines' | 'secrets' | 'triggers', Counter>;
  readonly pipelineActive: Gauge<'pipeline'>;
  /** The pipeline's scan position (a gauge; the original summed absolute offsets). */
  readonly pipelineLastOffset: Gauge<'pipeline'>;
  readonly pipelineStageSubs: Gauge<'pipeline' | 'stage'>;
  readonly pipelineStageDuration: Histogram<'pipeline' | 'stage'>;
  readonly pipelineStageRedeliveries: Counter<'pipeline' | 'stage' | 'reason'>;
  readonly pipelineCompleted: Counter<'pipeline'>;
  /** Requests refused and connections closed by a resource limit, by limit. */
  readonly limitRejections: Counter<'limit'>;
  /** Where the connection and request-bytes gauges read from (set once the server exists). */
  serverStats: (() => { connections: number; inflightRequestBytes: number }) | undefined;
  /** Where the subscriber-buffer gauge reads from (set once subscriptions exist). */
  subscriberBuffered: (() => number) | undefined;

  constructor(labels: { namespace: string; stream: string; statefulset: string; pod: string; partition: number }) {
    this.registry.setDefaultLabels({ ...labels, partition: String(labels.partition) });
    collectDefaultMetrics({ register: this.registry });
    const r = [this.registry];
    this.protocol = new ProtocolMetrics(this.registry);
    this.currentOffset = new Gauge({ name: METRIC.currentOffset, help: 'Last offset written to the partition (0 before the first event).', registers: r });
    this.firstOffset = new Gauge({ name: METRIC.firstOffset, help: 'First readable offset after retention.', registers: r });
    this.lastCompactedOffset = new Gauge({ name: METRIC.lastCompactedOffset, help: 'Highest offset removed by retention.', registers: r });
    this.publishedEvents = new Counter({ name: METRIC.publishedEvents, help: 'Events acknowledged to publishers.', registers: r });
    this.publishedBytes = new Counter({ name: METRIC.publishedBytes, help: 'Encoded event bytes acknowledged to publishers.', registers: r });
    this.publishBatchSize = new Histogram({
      name: METRIC.publishBatchSize,
      help: 'Events per publish request.',
      buckets: [1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000],
      registers: r,
    });
    this.publishLatency = new Histogram({
      name: METRIC.publishLatency,
      help: 'Time from receiving a publish to acknowledging it (includes the fsync when fsync=true).',
      labelNames: ['fsync'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: r,
    });
    this.publishLatencyFsync = this.publishLatency.labels({ fsync: 'true' });
    this.publishLatencyNoFsync = this.publishLatency.labels({ fsync: 'false' });
    this.publishErrors = new Counter({ name: METRIC.publishErrors, help: 'Publish requests that failed, by error code.', labelNames: ['code'], registers: r });
    this.storageBytes = new Gauge({ name: METRIC.storageBytes, help: 'Bytes of event segments on disk.', registers: r });
    this.corruptRecords = new Gauge({ name: METRIC.corruptRecords, help: 'Corrupt records met by reads since start (never served).', registers: r });
    this.recoveryTruncatedBytes = new Gauge({ name: METRIC.recoveryTruncatedBytes, help: 'Bytes of torn tail truncated by the last recovery.', registers: r });
    this.recoveryClampedProgress = new Gauge({
      name: METRIC.recoveryClampedProgress,
      help: 'Group offsets, pipeline positions and instances found beyond the end of the log by the last recovery (clamped or deleted).',
      registers: r,
    });
    this.numGroups = new Gauge({ name: METRIC.numGroups, help: 'Subscription groups on this partition.', registers: r });
    this.groupMembers = new Gauge({ name: METRIC.groupMembers, help: 'Connected members per group.', labelNames: ['group'], registers: r });
    this.lastOffsetProcessed = new Gauge({ name: METRIC.lastOffsetProcessed, help: 'Last offset acked by the group.', labelNames: ['group'], registers: r });
    this.groupLag = new Gauge({ name: METRIC.groupLag, help: 'Events written but not yet acked by the group.', labelNames: ['group'], registers: r });
    this.deliveries = new Counter({ name: METRIC.deliveries, help: 'Batches delivered (first attempts and redeliveries).', labelNames: ['group'], registers: r });
    this.redeliveries = new Counter({ name: METRIC.redeliveries, help: 'Batches delivered again after a nack, timeout or disconnect.', labelNames: ['group'], registers: r });
    this.nacks = new Counter({ name: METRIC.nacks, help: 'Batches nacked by members.', labelNames: ['group'], registers: r });
    this.ackTimeouts = new Counter({ name: METRIC.ackTimeouts, help: 'Deliveries not answered within the ack deadline.', labelNames: ['group'], registers: r });
    this.skippedByRetention = new Counter({
      name: METRIC.skippedByRetention,
      help: 'Events a durable group had not acked when retention removed them.',
      labelNames: ['group'],
      registers: r,
    });
    this.pipelineActive = new Gauge({ name: METRIC.pipelineActiveInstances, help: 'Active pipeline instances on this partition.', labelNames: ['pipeline'], registers: r });
    this.pipelineLastOffset = new Gauge({ name: METRIC.pipelineLastOffsetProcessed, help: 'Last source offset scanned for pipeline triggers.', labelNames: ['pipeline'], registers: r });
    this.pipelineStageSubs = new Gauge({ name: METRIC.pipelineStageSubscriptions, help: 'Connected workers per pipeline stage.', labelNames: ['pipeline', 'stage'], registers: r });
    this.pipelineStageDuration = new Histogram({
      name: METRIC.pipelineStageDuration,
      help: 'Time from delivering a stage to its ack.',
      labelNames: ['pipeline', 'stage'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
      registers: r,
    });
    this.pipelineStageRedeliveries = new Counter({
      name: METRIC.pipelineStageRedeliveries,
      help: 'Stage deliveries retried after a nack, ack timeout or disconnect.',
      labelNames: ['pipeline', 'stage', 'reason'],
      registers: r,
    });
    this.pipelineCompleted = new Counter({ name: METRIC.pipelineInstancesCompleted, help: 'Pipeline instances completed.', labelNames: ['pipeline'], registers: r });
    this.limitRejections = new Counter({ name: METRIC.limitRejections, help: 'Requests refused or connections closed by a resource limit.', labelNames: ['limit'], registers: r });
    for (const limit of LIMIT_NAMES) this.limitRejections.inc({ limit }, 0);
    const self = this;
    new Gauge({
      name: METRIC.connections,
      help: 'Open client connections (including ones still in their HTTP/2 handshake).',
      registers: r,
      collect() {
        this.set(self.serverStats?.().connections ?? 0);
      },
    });
    new Gauge({
      name: METRIC.inflightRequestBytes,
      help: 'Request message bytes reserved across all connections (bounded by HADRON_MAX_INFLIGHT_REQUEST_BYTES).',
      registers: r,
      collect() {
        this.set(self.serverStats?.().inflightRequestBytes ?? 0);
      },
    });
    new Gauge({
      name: METRIC.subscriberBufferedBytes,
      help: 'Event bytes held for subscription groups: batches in flight and read ahead (bounded by HADRON_MAX_SUBSCRIBER_BUFFER_BYTES).',
      registers: r,
      collect() {
        this.set(self.subscriberBuffered?.() ?? 0);
      },
    });
    this.watcherErrors = {
      tokens: new Counter({ name: METRIC.tokensWatcherErrors, help: 'Token watcher errors.', registers: r }),
      streams: new Counter({ name: METRIC.streamsWatcherErrors, help: 'Stream watcher errors.', registers: r }),
      pipelines: new Counter({ name: METRIC.pipelinesWatcherErrors, help: 'Pipeline watcher errors.', registers: r }),
      secrets: new Counter({ name: METRIC.secretsWatcherErrors, help: 'Secret watcher errors.', registers: r }),
      triggers: new Counter({ name: METRIC.triggersWatcherErrors, help: 'Trigger watcher errors.', registers: r }),
    };
  }

  /**
   * Drops every series labelled with this group (the group is gone): without this each
   * short-lived group left its series behind for the life of the process (issue 14 item 5).
   * A group that comes back starts its counters from zero, which Prometheus reads as a reset.
   */
  removeGroupSeries(group: string): void {
    for (const m of [this.groupMembers, this.lastOffsetProcessed, this.groupLag, this.deliveries, this.redeliveries, this.nacks, this.ackTimeouts, this.skippedByRetention]) {
      m.remove({ group });
    }
  }

  limitHit(limit: LimitName): void {
    this.limitRejections.inc({ limit });
  }

  activeInstances(pipeline: string, n: number): void {
    this.pipelineActive.set({ pipeline }, n);
  }
  pipelineScanned(pipeline: string, offset: number): void {
    this.pipelineLastOffset.set({ pipeline }, offset);
  }
  stageMembers(pipeline: string, stage: string, n: number): void {
    this.pipelineStageSubs.set({ pipeline, stage }, n);
  }
  stageCompleted(pipeline: string, stage: string, seconds: number): void {
    this.pipelineStageDuration.observe({ pipeline, stage }, seconds);
  }
  stageRedelivered(pipeline: string, stage: string, reason: 'nack' | 'timeout' | 'disconnect'): void {
    this.pipelineStageRedeliveries.inc({ pipeline, stage, reason });
  }
  instanceCompleted(pipeline: string): void {
    this.pipelineCompleted.inc({ pipeline });
  }
  undecodableSkipped(pipeline: string): void {
    this.protocol.undecodableSkipped.inc({ kind: 'pipeline', consumer: pipeline });
  }
  ackMismatch(pipeline: string, stage: string): void {
    this.protocol.ackMismatches.inc({ kind: 'pipeline', consumer: `${pipeline}/${stage}` });
  }
  clientTextSuppressed(): void {
    this.protocol.clientTextSuppressed.inc();
  }
}
