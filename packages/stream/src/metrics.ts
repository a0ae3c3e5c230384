/**
 * Prometheus metrics of a partition server. Names of reference §2.11 are kept, with the
 * semantics their names promise (the original's §11.4 bugs fixed); new ones are added. Every
 * series carries the labels namespace, stream, statefulset, pod, partition.
 */
import { Registry, collectDefaultMetrics, type Counter, type Gauge, type Histogram } from 'prom-client';
import type { LimitName, LimitObserver } from '@hadron/core';
import type { PipelineMetricsSink } from './pipelines/controller.js';
import { MetricBuilder } from './metric-builder.js';
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
  fsyncLatency: 'hadron_stream_fsync_duration_seconds',
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
  /** Duration of each fdatasync of the partition's log (one serves every fsync publish waiting). */
  readonly fsyncLatency: Histogram;
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
    const m = new MetricBuilder(this.registry);
    const group = ['group'] as const;
    const pipeline = ['pipeline'] as const;
    const stage = ['pipeline', 'stage'] as const;
    this.protocol = new ProtocolMetrics(this.registry);
    this.currentOffset = m.gauge(METRIC.currentOffset, 'Last offset written to the partition (0 before the first event).');
    this.firstOffset = m.gauge(METRIC.firstOffset, 'First readable offset after retention.');
    this.lastCompactedOffset = m.gauge(METRIC.lastCompactedOffset, 'Highest offset removed by retention.');
    this.publishedEvents = m.counter(METRIC.publishedEvents, 'Events acknowledged to publishers.');
    this.publishedBytes = m.counter(METRIC.publishedBytes, 'Encoded event bytes acknowledged to publishers.');
    this.publishBatchSize = m.histogram(METRIC.publishBatchSize, 'Events per publish request.', [1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000]);
    this.publishLatency = m.histogram(
      METRIC.publishLatency,
      'Time from receiving a publish to acknowledging it (includes the fsync when fsync=true).',
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      ['fsync'],
    );
    this.publishLatencyFsync = this.publishLatency.labels({ fsync: 'true' });
    this.publishLatencyNoFsync = this.publishLatency.labels({ fsync: 'false' });
    this.publishErrors = m.counter(METRIC.publishErrors, 'Publish requests that failed, by error code.', ['code']);
    this.fsyncLatency = m.histogram(
      METRIC.fsyncLatency,
      'Duration of each fdatasync of the partition log (fsync=true publishes and the periodic flush).',
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    );
    this.storageBytes = m.gauge(METRIC.storageBytes, 'Bytes of event segments on disk.');
    this.corruptRecords = m.gauge(METRIC.corruptRecords, 'Corrupt records met by reads since start (never served).');
    this.recoveryTruncatedBytes = m.gauge(METRIC.recoveryTruncatedBytes, 'Bytes of torn tail truncated by the last recovery.');
    this.recoveryClampedProgress = m.gauge(
      METRIC.recoveryClampedProgress,
      'Group offsets, pipeline positions and instances found beyond the end of the log by the last recovery (clamped or deleted).',
    );
    this.numGroups = m.gauge(METRIC.numGroups, 'Subscription groups on this partition.');
    this.groupMembers = m.gauge(METRIC.groupMembers, 'Connected members per group.', group);
    this.lastOffsetProcessed = m.gauge(METRIC.lastOffsetProcessed, 'Last offset acked by the group.', group);
    this.groupLag = m.gauge(METRIC.groupLag, 'Events written but not yet acked by the group.', group);
    this.deliveries = m.counter(METRIC.deliveries, 'Batches delivered (first attempts and redeliveries).', group);
    this.redeliveries = m.counter(METRIC.redeliveries, 'Batches delivered again after a nack, timeout or disconnect.', group);
    this.nacks = m.counter(METRIC.nacks, 'Batches nacked by members.', group);
    this.ackTimeouts = m.counter(METRIC.ackTimeouts, 'Deliveries not answered within the ack deadline.', group);
    this.skippedByRetention = m.counter(METRIC.skippedByRetention, 'Events a durable group had not acked when retention removed them.', group);
    this.pipelineActive = m.gauge(METRIC.pipelineActiveInstances, 'Active pipeline instances on this partition.', pipeline);
    this.pipelineLastOffset = m.gauge(METRIC.pipelineLastOffsetProcessed, 'Last source offset scanned for pipeline triggers.', pipeline);
    this.pipelineStageSubs = m.gauge(METRIC.pipelineStageSubscriptions, 'Connected workers per pipeline stage.', stage);
    this.pipelineStageDuration = m.histogram(METRIC.pipelineStageDuration, 'Time from delivering a stage to its ack.', [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30], stage);
    this.pipelineStageRedeliveries = m.counter(METRIC.pipelineStageRedeliveries, 'Stage deliveries retried after a nack, ack timeout or disconnect.', [...stage, 'reason']);
    this.pipelineCompleted = m.counter(METRIC.pipelineInstancesCompleted, 'Pipeline instances completed.', pipeline);
    this.limitRejections = m.counter(METRIC.limitRejections, 'Requests refused or connections closed by a resource limit.', ['limit']);
    for (const limit of LIMIT_NAMES) this.limitRejections.inc({ limit }, 0);
    // Gauges read on each scrape from sources set once the server and subscriptions exist.
    m.sampled(METRIC.connections, 'Open client connections (including ones still in their HTTP/2 handshake).', () => this.serverStats?.().connections ?? 0);
    m.sampled(METRIC.inflightRequestBytes, 'Request message bytes reserved across all connections (bounded by HADRON_MAX_INFLIGHT_REQUEST_BYTES).', () => this.serverStats?.().inflightRequestBytes ?? 0);
    m.sampled(
      METRIC.subscriberBufferedBytes,
      'Event bytes held for subscription groups: batches in flight and read ahead (bounded by HADRON_MAX_SUBSCRIBER_BUFFER_BYTES).',
      () => this.subscriberBuffered?.() ?? 0,
    );
    this.watcherErrors = {
      tokens: m.counter(METRIC.tokensWatcherErrors, 'Token watcher errors.'),
      streams: m.counter(METRIC.streamsWatcherErrors, 'Stream watcher errors.'),
      pipelines: m.counter(METRIC.pipelinesWatcherErrors, 'Pipeline watcher errors.'),
      secrets: m.counter(METRIC.secretsWatcherErrors, 'Secret watcher errors.'),
      triggers: m.counter(METRIC.triggersWatcherErrors, 'Trigger watcher errors.'),
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
