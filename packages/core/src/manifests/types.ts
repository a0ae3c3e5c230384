/**
 * The resource model of `hadron.rs/v1beta1` (reference §4) and the operator-made token Secrets
 * (reference §3.5). These types are shared by the local manifests reader, the Kubernetes
 * watchers, the operator and the CRD schemas, so they cannot drift apart.
 */

export const API_GROUP = 'hadron.rs';
export const API_VERSION = 'hadron.rs/v1beta1';

/** Labels on every object the operator creates (and on token Secrets). */
export const CANONICAL_LABELS = {
  app: 'hadron',
  'hadron.rs/component': 'hadron-stream',
  'hadron.rs/controlled-by': 'hadron-operator',
} as const;

/** Pipelines may only drop stages when this annotation is present (any value). */
export const ALLOW_DESTRUCTIVE_UPDATE = 'hadron.rs/allow-destructive-update';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  generation?: number;
  resourceVersion?: string;
  uid?: string;
}

export type RetentionStrategy = 'time' | 'retain';

export interface StreamSpec {
  partitions: number;
  /**
   * Copies of each partition's log (docs/replication.md): the leader (pod N) plus replicas on
   * pods N+1 … N+r−1 (mod partitions). 1 ≤ r ≤ partitions; default `defaultReplicationFactor()`.
   */
  replicationFactor: number;
  debug?: boolean;
  retentionPolicy: { strategy: RetentionStrategy; retentionSeconds?: number | null };
  image: string;
  pvcVolumeSize: string;
  pvcAccessModes?: string[] | null;
  pvcStorageClass?: string | null;
  /**
   * TLS on the partitions' client port (docs/security.md). Absent/null: cleartext h2c. `{}`: the
   * operator makes a CA and a server certificate (Secrets `{stream}-tls-ca`, `{stream}-tls`).
   * `{secretName}`: a `kubernetes.io/tls` Secret made elsewhere (e.g. by cert-manager).
   */
  tls?: StreamTls | null;
  /**
   * Dead-lettering for every durable subscription group and pipeline stage of this Stream
   * (docs/http.md): after `maxAttempts` deliveries that were nacked or timed out, the batch is
   * published to Stream `stream` (as Token `token`, which needs `pub` on it) and acked.
   */
  deadLetter?: DeadLetterPolicy | null;
}

export interface DeadLetterPolicy {
  stream: string;
  maxAttempts: number;
  token: string;
}

export interface StreamTls {
  /** Secret with `tls.crt` and `tls.key` (and usually `ca.crt`); operator-generated when absent. */
  secretName?: string | null;
}

export interface PipelineStage {
  name: string;
  after: string[];
  dependencies: string[];
}

export type StartLocation = 'beginning' | 'latest' | 'offset';

export interface PipelineSpec {
  sourceStream: string;
  triggers: string[];
  stages: PipelineStage[];
  maxParallel: number;
  startPoint: { location: StartLocation; offset?: number | null };
}

export interface PubSub {
  pub: string[];
  sub: string[];
}

export interface TokenSpec {
  all: boolean;
  streams?: PubSub | null;
  exchanges?: PubSub | null;
  endpoints?: PubSub | null;
}

export interface Resource<K extends string, S> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
  status?: Record<string, unknown> | null;
}

/**
 * Push delivery of a Stream's events to an HTTP sink (docs/http.md, "Triggers"), named after
 * Knative Eventing's Trigger: a filter on the source and a subscriber to POST matching events
 * to in CloudEvents binary mode.
 */
export interface TriggerSpec {
  sourceStream: string;
  /** Event type patterns with the Pipeline trigger rules (`*` one token, `>` the rest); empty: all. */
  filter: { types: string[] };
  /** Exactly one of `uri` (absolute http/https URL) and `ref` (a Service of the namespace). */
  sink: { uri: string | null; ref: { name: string; port: number; path: string } | null };
  startPoint: { location: StartLocation; offset: number | null };
  /** Events in flight per partition (default 1: one at a time, in order). */
  parallelism: number;
  /** Per POST (default 10000). */
  timeoutMs: number;
  /** POSTs per event before it is dead-lettered (default 5); backoff with jitter between them. */
  retry: { maxAttempts: number; backoffMs: number; maxBackoffMs: number };
  /** Where events go after `retry.maxAttempts` failures; absent: retried until they succeed. */
  deadLetter: { stream: string; token: string } | null;
  /**
   * Where a sink's CloudEvent reply (binary or structured mode in a 2xx answer) is published,
   * as the Token `token` (pub on `stream`); absent: replies are read and discarded.
   */
  reply: { stream: string; token: string } | null;
}

export type Stream = Resource<'Stream', StreamSpec>;
export type Trigger = Resource<'Trigger', TriggerSpec>;
export type Pipeline = Resource<'Pipeline', PipelineSpec>;
export type Token = Resource<'Token', TokenSpec>;

/** A token Secret as the operator makes it, with `data` already base64-decoded. */
export interface TokenSecret {
  name: string;
  hmacKey: Buffer;
  token: string | undefined;
}

export const DEFAULT_RETENTION_SECONDS = 604_800;
