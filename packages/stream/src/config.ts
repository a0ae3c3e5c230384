/**
 * Partition server configuration, parsed once from the environment (reference §2.1, all of it
 * honoured — the original silently ignored the retention variables) into a frozen object.
 */
import path from 'node:path';
import { DEFAULT_STREAM_URL_TEMPLATE, parseStreamUrls } from './dead-letter.js';
import { parseExternalAdvertise, type ExternalAdvertise } from './external.js';
import { DEFAULT_MAX_MESSAGE_BYTES, HadronError, envEnum, envInt, envPort, envString, type Env, type RetentionStrategy } from '@hadron/core';

export interface StreamConfig {
  clientPort: number;
  serverPort: number;
  metricsPort: number;
  /** Address to bind listeners to (default 0.0.0.0). */
  host: string;
  namespace: string;
  stream: string;
  statefulset: string;
  podName: string;
  partition: number;
  storageDataPath: string;
  /** `{storageDataPath}/{podName}` */
  dataDir: string;
  /** Retention until the Stream resource is seen; the Stream spec wins once known. */
  retention: { strategy: RetentionStrategy; retentionSeconds: number };
  logLevel: string;
  /** Local control plane: YAML files/directories (path-list). Empty = Kubernetes (KUBECONFIG or in-cluster). */
  manifests: string[];
  advertiseTemplate: string;
  partitionPortBase: number | undefined;
  /** The external address announced in Metadata (external.ts); undefined: none. */
  external: ExternalAdvertise | undefined;
  maxMessageBytes: number;
  maxDeliveryBytes: number;
  segmentBytes: number;
  tailCacheBytes: number;
  flushIntervalMs: number;
  ackDeadlineMs: number;
  nackBackoffBaseMs: number;
  nackBackoffMaxMs: number;
  compactionIntervalSeconds: number;
  retentionMaxBytes: number;
  shutdownGraceMs: number;
  /** Resource limits (docs/configuration.md, "Limits"). */
  maxEventsPerRequest: number;
  maxInflightRequestBytes: number;
  maxSubscriberBufferBytes: number;
  maxConnections: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  requestBodyTimeoutMs: number;
  /** TLS on the client port (HADRON_TLS_CERT_FILE + HADRON_TLS_KEY_FILE); undefined = h2c. */
  tls: { certFile: string; keyFile: string; clientCaFile: string | undefined } | undefined;
  tlsReloadIntervalMs: number;
  /**
   * TLS of this server's own outbound connections (outbound-tls.ts): the HTTP ingress' forwarding
   * hop, dead-letter and reply publishing, https:// Trigger sinks. HADRON_TLS_CA_FILE is trusted
   * besides the system CAs; HADRON_TLS_CLIENT_CERT_FILE/KEY_FILE is presented to servers that
   * verify clients.
   */
  outboundTls: { caFile: string | undefined; clientCertFile: string | undefined; clientKeyFile: string | undefined };
  /** CloudEvents HTTP ingress port (HADRON_HTTP_PORT); undefined = not served (docs/http.md). */
  httpPort: number | undefined;
  /** Most CloudEvents HTTP requests in flight before 429 (HADRON_HTTP_MAX_INFLIGHT). */
  httpMaxInflight: number;
  /** Bootstrap URLs of other Streams by name (HADRON_STREAM_URLS), e.g. dead-letter Streams. */
  streamUrls: ReadonlyMap<string, string>;
  /** Bootstrap URL of another Stream when not in streamUrls (HADRON_STREAM_URL_TEMPLATE). */
  streamUrlTemplate: string;
  /** Replication (docs/replication.md). Partition n's server port = base + n when set (hadron dev), else SERVER_PORT. */
  serverPortBase: number | undefined;
  /** The Stream's pod-to-pod key (HADRON_REPLICATION_KEY); required when replicationFactor > 1. */
  replicationKey: string | undefined;
  /** How long a publish waits for its copies before UNAVAILABLE (HADRON_REPLICATION_TIMEOUT_MS). */
  replicationTimeoutMs: number;
  /** How long a starting leader waits for its replicas to answer (HADRON_REPLICATION_RECOVERY_TIMEOUT_MS). */
  replicationRecoveryTimeoutMs: number;
  /** Long-poll time of a replica's fetch (HADRON_REPLICATION_POLL_MS). */
  replicationPollMs: number;
}

export const DEFAULT_ADVERTISE_TEMPLATE = '{stream}-{partition}.{namespace}.svc.cluster.local:{port}';

/** Partition number = the integer after the last `-` of the pod name (`events-2` → 2). */
export function partitionOfPodName(podName: string): number {
  const m = /-(\d+)$/.exec(podName);
  if (!m || !Number.isSafeInteger(Number(m[1]))) {
    throw new HadronError('CONFIG_INVALID', `invalid configuration: POD_NAME ${JSON.stringify(podName)} is an invalid pod name, expected offset suffix at the end of the name (e.g. events-0)`, {
      context: { variable: 'POD_NAME' },
    });
  }
  return Number(m[1]);
}

/** Accepts HADRON_LOG_LEVEL (pino level) or a RUST_LOG filter like `error,hadron_stream=debug`. */
function logLevelOf(env: Env): string {
  const direct = env.HADRON_LOG_LEVEL;
  if (direct) {
    if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(direct)) {
      throw new HadronError('CONFIG_INVALID', `invalid configuration: HADRON_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got ${JSON.stringify(direct)}`);
    }
    return direct;
  }
  const rust = env.RUST_LOG;
  if (rust) {
    const m = /hadron_stream=(\w+)/.exec(rust) ?? /^(\w+)$/.exec(rust);
    const lvl = m?.[1]?.toLowerCase();
    if (lvl && ['error', 'warn', 'info', 'debug', 'trace'].includes(lvl)) return lvl;
  }
  return 'info';
}

/** Certificate and key come together; a client CA only with them. */
function tlsConfigOf(env: Env): StreamConfig['tls'] {
  const certFile = env.HADRON_TLS_CERT_FILE || undefined;
  const keyFile = env.HADRON_TLS_KEY_FILE || undefined;
  const clientCaFile = env.HADRON_TLS_CLIENT_CA_FILE || undefined;
  if (certFile === undefined && keyFile === undefined) {
    if (clientCaFile !== undefined) {
      throw new HadronError('CONFIG_INVALID', 'invalid configuration: HADRON_TLS_CLIENT_CA_FILE needs HADRON_TLS_CERT_FILE and HADRON_TLS_KEY_FILE (client certificates are verified only over TLS)', {
        context: { variable: 'HADRON_TLS_CLIENT_CA_FILE' },
      });
    }
    return undefined;
  }
  if (certFile === undefined || keyFile === undefined) {
    const missing = certFile === undefined ? 'HADRON_TLS_CERT_FILE' : 'HADRON_TLS_KEY_FILE';
    throw new HadronError('CONFIG_INVALID', `invalid configuration: ${missing} is required when ${missing === 'HADRON_TLS_CERT_FILE' ? 'HADRON_TLS_KEY_FILE' : 'HADRON_TLS_CERT_FILE'} is set`, {
      context: { variable: missing },
    });
  }
  return { certFile, keyFile, clientCaFile };
}

/** The outbound CA and client certificate; certificate and key come together. */
function outboundTlsOf(env: Env): StreamConfig['outboundTls'] {
  const caFile = env.HADRON_TLS_CA_FILE || undefined;
  const clientCertFile = env.HADRON_TLS_CLIENT_CERT_FILE || undefined;
  const clientKeyFile = env.HADRON_TLS_CLIENT_KEY_FILE || undefined;
  if ((clientCertFile === undefined) !== (clientKeyFile === undefined)) {
    const missing = clientCertFile === undefined ? 'HADRON_TLS_CLIENT_CERT_FILE' : 'HADRON_TLS_CLIENT_KEY_FILE';
    const other = missing === 'HADRON_TLS_CLIENT_CERT_FILE' ? 'HADRON_TLS_CLIENT_KEY_FILE' : 'HADRON_TLS_CLIENT_CERT_FILE';
    throw new HadronError('CONFIG_INVALID', `invalid configuration: ${missing} is required when ${other} is set`, { context: { variable: missing } });
  }
  return { caFile, clientCertFile, clientKeyFile };
}

/** At least 16 characters: the key is all that stands between the server port and the log. */
function replicationKeyOf(env: Env): string | undefined {
  const key = env.HADRON_REPLICATION_KEY;
  if (key === undefined || key === '') return undefined;
  if (key.length < 16) {
    throw new HadronError('CONFIG_INVALID', `invalid configuration: HADRON_REPLICATION_KEY must be at least 16 characters, got ${key.length}`, { context: { variable: 'HADRON_REPLICATION_KEY' } });
  }
  // It travels as an HTTP/2 header value: raw bytes (e.g. a Secret holding binary data) arrive
  // here as invalid UTF-8 and could never match what a peer sends.
  if (!/^[\x21-\x7e]+$/.test(key)) {
    throw new HadronError('CONFIG_INVALID', 'invalid configuration: HADRON_REPLICATION_KEY must be printable ASCII without spaces (e.g. base64url text), got binary or non-ASCII data', { context: { variable: 'HADRON_REPLICATION_KEY' } });
  }
  return key;
}

export function parseStreamConfig(env: Env): Readonly<StreamConfig> {
  const podName = envString(env, 'POD_NAME');
  const storageDataPath = envString(env, 'STORAGE_DATA_PATH', '/usr/local/hadron/db');
  const strategy = envEnum(env, 'RETENTION_POLICY_STRATEGY', ['time', 'retain'] as const, 'time');
  const manifests = (env.HADRON_MANIFESTS ?? '').split(path.delimiter).filter((s) => s !== '');
  const base = env.HADRON_PARTITION_PORT_BASE;
  const cfg: StreamConfig = {
    clientPort: envPort(env, 'CLIENT_PORT'),
    serverPort: envPort(env, 'SERVER_PORT'),
    metricsPort: envPort(env, 'METRICS_PORT'),
    host: envString(env, 'HADRON_BIND_HOST', '0.0.0.0'),
    namespace: envString(env, 'NAMESPACE'),
    stream: envString(env, 'STREAM'),
    statefulset: envString(env, 'STATEFULSET'),
    podName,
    partition: partitionOfPodName(podName),
    storageDataPath,
    dataDir: path.join(storageDataPath, podName),
    retention: { strategy, retentionSeconds: envInt(env, 'RETENTION_POLICY_RETENTION_SECONDS', { def: 604_800, min: 0 }) },
    logLevel: logLevelOf(env),
    manifests,
    advertiseTemplate: envString(env, 'HADRON_ADVERTISE_TEMPLATE', DEFAULT_ADVERTISE_TEMPLATE),
    partitionPortBase: base === undefined || base === '' ? undefined : envPort(env, 'HADRON_PARTITION_PORT_BASE'),
    external: parseExternalAdvertise(env),
    maxMessageBytes: envInt(env, 'HADRON_MAX_MESSAGE_BYTES', { def: DEFAULT_MAX_MESSAGE_BYTES, min: 1024, max: 2 ** 31 - 1 }),
    maxDeliveryBytes: envInt(env, 'HADRON_MAX_DELIVERY_BYTES', { def: 4 * 1024 * 1024, min: 1024 }),
    segmentBytes: envInt(env, 'HADRON_SEGMENT_BYTES', { def: 64 * 1024 * 1024, min: 4096, max: 2 ** 31 }),
    tailCacheBytes: envInt(env, 'HADRON_TAIL_CACHE_BYTES', { def: 64 * 1024 * 1024, min: 0 }),
    flushIntervalMs: envInt(env, 'HADRON_FLUSH_INTERVAL_MS', { def: 100, min: 1, max: 60_000 }),
    ackDeadlineMs: envInt(env, 'HADRON_ACK_DEADLINE_MS', { def: 30_000, min: 10 }),
    nackBackoffBaseMs: envInt(env, 'HADRON_NACK_BACKOFF_BASE_MS', { def: 500, min: 0 }),
    nackBackoffMaxMs: envInt(env, 'HADRON_NACK_BACKOFF_MAX_MS', { def: 30_000, min: 0 }),
    compactionIntervalSeconds: envInt(env, 'HADRON_COMPACTION_INTERVAL_SECONDS', { def: 1800, min: 1 }),
    retentionMaxBytes: envInt(env, 'HADRON_RETENTION_MAX_BYTES', { def: 0, min: 0 }),
    shutdownGraceMs: envInt(env, 'HADRON_SHUTDOWN_GRACE_MS', { def: 20_000, min: 0 }),
    maxEventsPerRequest: envInt(env, 'HADRON_MAX_EVENTS_PER_REQUEST', { def: 10_000, min: 1 }),
    maxInflightRequestBytes: envInt(env, 'HADRON_MAX_INFLIGHT_REQUEST_BYTES', { def: 256 * 1024 * 1024, min: 1024 }),
    maxSubscriberBufferBytes: envInt(env, 'HADRON_MAX_SUBSCRIBER_BUFFER_BYTES', { def: 64 * 1024 * 1024, min: 1024 }),
    maxConnections: envInt(env, 'HADRON_MAX_CONNECTIONS', { def: 4096, min: 0 }),
    handshakeTimeoutMs: envInt(env, 'HADRON_HANDSHAKE_TIMEOUT_MS', { def: 10_000, min: 10 }),
    idleTimeoutMs: envInt(env, 'HADRON_IDLE_TIMEOUT_MS', { def: 300_000, min: 0 }),
    requestBodyTimeoutMs: envInt(env, 'HADRON_REQUEST_BODY_TIMEOUT_MS', { def: 30_000, min: 0 }),
    tls: tlsConfigOf(env),
    outboundTls: outboundTlsOf(env),
    tlsReloadIntervalMs: envInt(env, 'HADRON_TLS_RELOAD_INTERVAL_MS', { def: 1000, min: 50, max: 3_600_000 }),
    // Opt-in outside Kubernetes (several pods on one host would clash on a fixed default); the
    // operator sets 7003 on every pod and the Stream's Service.
    httpPort: env.HADRON_HTTP_PORT === undefined || env.HADRON_HTTP_PORT === '' ? undefined : envPort(env, 'HADRON_HTTP_PORT'),
    httpMaxInflight: envInt(env, 'HADRON_HTTP_MAX_INFLIGHT', { def: 1024, min: 1 }),
    streamUrls: parseStreamUrls(env.HADRON_STREAM_URLS),
    streamUrlTemplate: envString(env, 'HADRON_STREAM_URL_TEMPLATE', DEFAULT_STREAM_URL_TEMPLATE),
    serverPortBase: env.HADRON_SERVER_PORT_BASE === undefined || env.HADRON_SERVER_PORT_BASE === '' ? undefined : envPort(env, 'HADRON_SERVER_PORT_BASE'),
    replicationKey: replicationKeyOf(env),
    replicationTimeoutMs: envInt(env, 'HADRON_REPLICATION_TIMEOUT_MS', { def: 5000, min: 10, max: 600_000 }),
    replicationRecoveryTimeoutMs: envInt(env, 'HADRON_REPLICATION_RECOVERY_TIMEOUT_MS', { def: 10_000, min: 0, max: 3_600_000 }),
    replicationPollMs: envInt(env, 'HADRON_REPLICATION_POLL_MS', { def: 1000, min: 10, max: 10_000 }),
  };
  // One request must fit in the budget, else a maximum-size publish could never succeed.
  if (cfg.maxInflightRequestBytes < cfg.maxMessageBytes) {
    throw new HadronError(
      'CONFIG_INVALID',
      `invalid configuration: HADRON_MAX_INFLIGHT_REQUEST_BYTES (${cfg.maxInflightRequestBytes}) must be at least HADRON_MAX_MESSAGE_BYTES (${cfg.maxMessageBytes})`,
      { context: { variable: 'HADRON_MAX_INFLIGHT_REQUEST_BYTES' } },
    );
  }
  if (cfg.maxSubscriberBufferBytes < cfg.maxDeliveryBytes) {
    throw new HadronError(
      'CONFIG_INVALID',
      `invalid configuration: HADRON_MAX_SUBSCRIBER_BUFFER_BYTES (${cfg.maxSubscriberBufferBytes}) must be at least HADRON_MAX_DELIVERY_BYTES (${cfg.maxDeliveryBytes})`,
      { context: { variable: 'HADRON_MAX_SUBSCRIBER_BUFFER_BYTES' } },
    );
  }
  return Object.freeze(cfg);
}

/** Renders the address of partition `n` from the advertise template. */
export function advertisedAddress(cfg: Pick<StreamConfig, 'advertiseTemplate' | 'stream' | 'namespace' | 'clientPort' | 'partitionPortBase'>, n: number): string {
  const port = cfg.partitionPortBase !== undefined ? cfg.partitionPortBase + n : cfg.clientPort;
  return cfg.advertiseTemplate
    .replaceAll('{stream}', cfg.stream)
    .replaceAll('{namespace}', cfg.namespace)
    .replaceAll('{partition}', String(n))
    .replaceAll('{port}', String(port));
}

/** `host:port` of partition `n`'s server port (replication), from the advertise template. */
export function serverAddress(cfg: Pick<StreamConfig, 'advertiseTemplate' | 'stream' | 'namespace' | 'serverPort' | 'serverPortBase'>, n: number): string {
  const port = cfg.serverPortBase !== undefined ? cfg.serverPortBase + n : cfg.serverPort;
  return cfg.advertiseTemplate
    .replaceAll('{stream}', cfg.stream)
    .replaceAll('{namespace}', cfg.namespace)
    .replaceAll('{partition}', String(n))
    .replaceAll('{port}', String(port))
    .replace(/^[a-z]+:\/\//, '');
}
