/**
 * Metrics of the protocol-correctness guards (issue 14 items 4 and 9), kept apart from
 * metrics.ts so each concern's series are declared in one small place. Registered on the
 * partition's registry by `StreamMetrics`.
 */
import { Counter, type Registry } from 'prom-client';

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
    const registers = [registry];
    this.undecodableSkipped = new Counter({
      name: PROTOCOL_METRIC.undecodableSkipped,
      help: 'Stored events that no conforming decoder accepts, skipped by a group or pipeline (logged with their offset).',
      labelNames: ['kind', 'consumer'],
      registers,
    });
    this.ackMismatches = new Counter({
      name: PROTOCOL_METRIC.ackMismatches,
      help: 'Acks or nacks whose offset does not match the batch in flight to that member (ignored).',
      labelNames: ['kind', 'consumer'],
      registers,
    });
    this.clientTextSuppressed = new Counter({
      name: PROTOCOL_METRIC.clientTextSuppressed,
      help: 'Log lines with client-provided text (nack reasons) dropped by the per-group rate limit.',
      registers,
    });
  }

  /** Drops a group's series when the group goes. */
  removeGroup(group: string): void {
    this.ackMismatches.remove({ kind: 'group', consumer: group });
    this.undecodableSkipped.remove({ kind: 'group', consumer: group });
  }
}
