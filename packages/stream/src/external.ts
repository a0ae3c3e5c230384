/**
 * The external address a partition announces in Metadata (`StreamPartition.external`, issue 12),
 * for clients outside the cluster (`createClient({ mode: 'external' })`, `hadron --external`).
 *
 *   HADRON_EXTERNAL_ADVERTISE_TEMPLATE  e.g. `{hostIP}:{port}` (NodePort) or
 *                                       `{stream}-{partition}.example.com:7000` (LoadBalancer + DNS)
 *   HADRON_EXTERNAL_PORT_BASE           `{port}` of partition N is base + N (NodePort: the operator
 *                                       gives partition N node port base + N); else CLIENT_PORT
 *   HOST_IP                             `{hostIP}`: the node's IP (downward API status.hostIP)
 *
 * Unset template: no external address (empty, as in the original). Every partition renders
 * every partition's address itself (no API write-back), so the address must be computable:
 * that is why the operator fixes node ports per partition instead of letting Kubernetes pick.
 */
import { HadronError, envPort, type Env } from '@hadron/core';

export interface ExternalAdvertise {
  template: string;
  portBase: number | undefined;
  hostIP: string;
}

export function parseExternalAdvertise(env: Env): ExternalAdvertise | undefined {
  const template = (env['HADRON_EXTERNAL_ADVERTISE_TEMPLATE'] ?? '').trim();
  if (template === '') return undefined;
  const hostIP = (env['HOST_IP'] ?? '').trim();
  if (template.includes('{hostIP}') && hostIP === '') {
    throw new HadronError('CONFIG_INVALID', 'invalid configuration: HADRON_EXTERNAL_ADVERTISE_TEMPLATE uses {hostIP} but HOST_IP is not set (set it from the downward API: status.hostIP)', {
      context: { variable: 'HOST_IP' },
    });
  }
  const base = env['HADRON_EXTERNAL_PORT_BASE'];
  return { template, portBase: base === undefined || base === '' ? undefined : envPort(env, 'HADRON_EXTERNAL_PORT_BASE'), hostIP };
}

/** Partition `n`'s external address, '' when none is configured. */
export function externalAddress(ext: ExternalAdvertise | undefined, cfg: { stream: string; namespace: string; clientPort: number }, n: number): string {
  if (!ext) return '';
  const port = ext.portBase !== undefined ? ext.portBase + n : cfg.clientPort;
  return ext.template
    .replaceAll('{stream}', cfg.stream)
    .replaceAll('{namespace}', cfg.namespace)
    .replaceAll('{partition}', String(n))
    .replaceAll('{port}', String(port))
    .replaceAll('{hostIP}', ext.hostIP.includes(':') ? `[${ext.hostIP}]` : ext.hostIP);
}
