/**
 * Operator configuration, parsed once from the environment (reference §3.1) into a frozen object.
 * `HADRON_LOG_LEVEL` replaces the original's `RUST_LOG`. The Kubernetes API is found through
 * `KUBECONFIG` or the in-cluster service account (see @hadron/k8s `loadConnection`).
 *
 * | variable                | meaning                                                  |
 * |-------------------------|----------------------------------------------------------|
 * | HADRON_LOG_LEVEL        | fatal…trace, silent (default info)                        |
 * | CLIENT_PORT             | gRPC `operator.Operator` (no methods; UNIMPLEMENTED), 7000 |
 * | WEBHOOKS_PORT           | HTTPS admission webhooks, 7001                            |
 * | METRICS_PORT            | HTTP /metrics and /health, 7002                           |
 * | NAMESPACE               | the namespace managed                                     |
 * | POD_NAME                | Lease identity, metric label                              |
 * | LEASE_DURATION_SECONDS  | Lease validity (chart: 15)                                |
 * | LEASE_RENEW_SECONDS     | renewal interval (chart: 10)                              |
 * | WEBHOOK_CERT / _KEY     | PEM certificate chain and private key (the text itself)   |
 * | HADRON_BIND_HOST        | listen address (default 0.0.0.0)                          |
 * | HADRON_PARTITION_URL_TEMPLATE | where the operator asks a partition (scale-down safety; partition-loss.ts) |
 * | HADRON_PARTITION_PORT_BASE    | `{port}` = base + partition instead of 7000 (tests)  |
 *
 * Checks (as the original): every value ≥ 1 s, duration > renew, renew > ⌊1.2 × retry⌋ where the
 * retry period is 2 s.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { HadronError, envEnum, envInt, envPort, envString, type Env } from '@hadron/core';
import { DEFAULT_PARTITION_URL_TEMPLATE } from './partition-loss.js';

export const LEASE_RETRY_SECONDS = 2;

export interface OperatorConfig {
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  clientPort: number;
  webhooksPort: number;
  metricsPort: number;
  host: string;
  namespace: string;
  podName: string;
  leaseDurationSeconds: number;
  leaseRenewSeconds: number;
  webhookCert: string;
  webhookKey: string;
  /** Client URL of a partition (partition-loss.ts); `{scheme}`, `{stream}`, `{partition}`, `{namespace}`, `{port}`. */
  partitionUrlTemplate: string;
  partitionPortBase: number | undefined;
}

function invalid(variable: string, problem: string): never {
  throw new HadronError('CONFIG_INVALID', `invalid configuration: ${variable} ${problem}`, { context: { variable } });
}

export function parseOperatorConfig(env: Env): Readonly<OperatorConfig> {
  const cfg: OperatorConfig = {
    logLevel: envEnum(env, 'HADRON_LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
    clientPort: envPort(env, 'CLIENT_PORT'),
    webhooksPort: envPort(env, 'WEBHOOKS_PORT'),
    metricsPort: envPort(env, 'METRICS_PORT'),
    host: envString(env, 'HADRON_BIND_HOST', '0.0.0.0'),
    namespace: envString(env, 'NAMESPACE'),
    podName: envString(env, 'POD_NAME'),
    leaseDurationSeconds: envInt(env, 'LEASE_DURATION_SECONDS', { min: 1 }),
    leaseRenewSeconds: envInt(env, 'LEASE_RENEW_SECONDS', { min: 1 }),
    webhookCert: envString(env, 'WEBHOOK_CERT'),
    webhookKey: envString(env, 'WEBHOOK_KEY'),
    partitionUrlTemplate: envString(env, 'HADRON_PARTITION_URL_TEMPLATE', DEFAULT_PARTITION_URL_TEMPLATE),
    partitionPortBase: env.HADRON_PARTITION_PORT_BASE ? envPort(env, 'HADRON_PARTITION_PORT_BASE') : undefined,
  };
  if (cfg.leaseDurationSeconds <= cfg.leaseRenewSeconds) {
    invalid('LEASE_DURATION_SECONDS', `must be greater than LEASE_RENEW_SECONDS (${cfg.leaseDurationSeconds} ≤ ${cfg.leaseRenewSeconds})`);
  }
  if (cfg.leaseRenewSeconds <= Math.floor(1.2 * LEASE_RETRY_SECONDS)) {
    invalid('LEASE_RENEW_SECONDS', `must be greater than ${Math.floor(1.2 * LEASE_RETRY_SECONDS)} (1.2 × the ${LEASE_RETRY_SECONDS} s retry period), got ${cfg.leaseRenewSeconds}`);
  }
  const certs = cfg.webhookCert.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (certs.length === 0) invalid('WEBHOOK_CERT', 'must contain at least one PEM certificate');
  try {
    for (const c of certs) new X509Certificate(c);
  } catch (err) {
    invalid('WEBHOOK_CERT', `holds an unreadable certificate: ${(err as Error).message}`);
  }
  try {
    createPrivateKey(cfg.webhookKey);
  } catch (err) {
    invalid('WEBHOOK_KEY', `is not a PEM private key (PKCS#1, PKCS#8 or SEC1): ${(err as Error).message}`);
  }
  return Object.freeze(cfg);
}
