/**
 * Metrics of the protocol-correctness guards (issue 14 items 4 and 9), kept apart from
 * metrics.ts so each concern's series are declared in one small place. Registered on the
 * partition's registry by `StreamMetrics`.
 */
import type { Counter, Registry } from 'prom-client';
import { MetricBuilder } from './metric-builder.js';

export const PROTOCOL_METRIC = {
  /** Stored events no decoder accepts (written before publish-time validation), skipped. */
  undecodableSkipped: 'hadron_stream_undecodable_events_skipped_total',
  /** Acks/nacks whose offset does not name the batch in flight to that member; ignored. */
  ackMismatches: 'hadron_stream_subscriber_ack_mismatches_total',
  /** Log lines carrying client-provided text (nack reasons) dropped by the rate limit. */
  clientTextSuppressed: 'hadron_stream_client_text_log_suppressed_total',
} as const;

export class ProtocolMetrics {
  /** Labels: `consumer` = group or pipeline name, `kind` = group | pipeline. */
  readonly undecodableSkipped: Counter<'kind' | 'consumer'>;
  /** Labels as for `undecodableSkipped`; a pipeline's consumer is `pipeline/stage`. */
  readonly ackMismatches: Counter<'kind' | 'consumer'>;
  readonly clientTextSuppressed: Counter;

  constructor(registry: Registry) {
    const m = new MetricBuilder(registry);
    const labels = ['kind', 'consumer'] as const;
    this.undecodableSkipped = m.counter(PROTOCOL_METRIC.undecodableSkipped, 'Stored events that no conforming decoder accepts, skipped by a group or pipeline (logged with their offset).', labels);
    this.ackMismatches = m.counter(PROTOCOL_METRIC.ackMismatches, 'Acks or nacks whose offset does not match the batch in flight to that member (ignored).', labels);
    this.clientTextSuppressed = m.counter(PROTOCOL_METRIC.clientTextSuppressed, 'Log lines with client-provided text (nack reasons) dropped by the per-group rate limit.');
  }

  /** Drops a group's series when the group goes. */
  removeGroup(group: string): void {
    this.ackMismatches.remove({ kind: 'group', consumer: group });
    this.undecodableSkipped.remove({ kind: 'group', consumer: group });
  }
}
