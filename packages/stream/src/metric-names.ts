/**
 * Every metric name a partition server exports, gathered from the constants of the modules that
 * register them, so that checks of what queries them (the chart's dashboard and alert rules,
 * docs/metrics.md) compare with the names the code really uses rather than with a copied list.
 */
import { CREDENTIAL_METRIC } from './credential-guard.js';
import { DEAD_LETTER_METRIC } from './dead-letter.js';
import { HTTP_METRIC } from './http/ingress.js';
import { METRIC } from './metrics.js';
import { PROTOCOL_METRIC } from './protocol-metrics.js';
import { REPLICATION_METRIC } from './replication/metrics.js';
import { TRIGGER_METRIC } from './sinks/trigger-manager.js';
import { TLS_METRIC } from './tls-files.js';

/** The metric-name constants by the module area that owns them. */
export const STREAM_METRIC_GROUPS = {
  stream: METRIC,
  protocol: PROTOCOL_METRIC,
  replication: REPLICATION_METRIC,
  http: HTTP_METRIC,
  tls: TLS_METRIC,
  credentials: CREDENTIAL_METRIC,
  deadLetter: DEAD_LETTER_METRIC,
  triggers: TRIGGER_METRIC,
} as const;

/** Every metric name of a partition server (histograms by their base name, without `_bucket`/`_sum`/`_count`). */
export const STREAM_METRIC_NAMES: readonly string[] = Object.values(STREAM_METRIC_GROUPS).flatMap((g) => Object.values(g));
