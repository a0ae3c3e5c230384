/**
 * External access to a Stream (`spec.external`, issue 12): per-partition Services reachable from
 * outside the cluster, and the env that makes each partition announce them in Metadata as
 * `external` (packages/stream/src/external.ts renders the addresses).
 *
 *   spec.external: {type: NodePort, nodePortBase: 30700, host?: 'nodes.example.com'}
 *     Service {stream}-{i}-external  NodePort, client port 7000 → node port nodePortBase + i
 *     announced: {host}:{nodePortBase + i}, host default: the pod's node IP (status.hostIP)
 *   spec.external: {type: LoadBalancer, host: '{stream}-{partition}.example.com', port?: 7000}
 *     Service {stream}-{i}-external  LoadBalancer, port → 7000
 *     announced: {host}:{port}, the host template resolving to partition i's load balancer
 *     (e.g. external-dns with the hostname annotation this Service carries)
 *
 * Why fixed node ports: every partition announces every partition's address itself, so the
 * address must be computable without reading Service status back from the API; a node port
 * per partition is what any cluster (kind, k3s, bare metal, cloud) can offer without a load
 * balancer controller. With NodePort any node forwards to the partition (externalTrafficPolicy
 * Cluster), so announcing the announcing pod's own node IP works for all partitions.
 */
import type { Stream } from '@hadron/core';
import type { KubeObject } from '@hadron/k8s';
import { LABEL_POD_NAME, LABEL_STATEFULSET, PORTS, ownerRef, streamLabels } from './objects.js';

export const LABEL_EXTERNAL = 'hadron.rs/external';

export type ExternalSpec = { type: 'NodePort'; nodePortBase: number; host?: string } | { type: 'LoadBalancer'; host: string; port: number };

type Raw = Record<string, unknown>;

/** `spec.external` as validated by the CRD schema, or undefined. */
export function externalSpec(spec: Raw | undefined): ExternalSpec | undefined {
  const e = spec?.['external'];
  if (typeof e !== 'object' || e === null) return undefined;
  const x = e as Raw;
  const host = typeof x['host'] === 'string' && x['host'] !== '' ? x['host'] : undefined;
  if (x['type'] === 'NodePort' && typeof x['nodePortBase'] === 'number') return { type: 'NodePort', nodePortBase: x['nodePortBase'], ...(host ? { host } : {}) };
  if (x['type'] === 'LoadBalancer' && host) return { type: 'LoadBalancer', host, port: typeof x['port'] === 'number' ? x['port'] : PORTS.client };
  return undefined;
}

export const externalServiceName = (stream: string, i: number): string => `${stream}-${i}-external`;

/** Service `{stream}-{i}-external` for partition i. */
export function externalService(s: Stream, namespace: string, i: number, ext: ExternalSpec): KubeObject {
  const name = s.metadata.name;
  const pod = `${name}-${i}`;
  const port =
    ext.type === 'NodePort'
      ? { name: 'client-port', port: PORTS.client, targetPort: PORTS.client, protocol: 'TCP', nodePort: ext.nodePortBase + i }
      : { name: 'client-port', port: ext.port, targetPort: PORTS.client, protocol: 'TCP' };
  const hostname = ext.type === 'LoadBalancer' ? renderHost(ext.host, name, namespace, i) : undefined;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: externalServiceName(name, i),
      namespace,
      labels: { ...streamLabels(name), [LABEL_STATEFULSET]: name, [LABEL_POD_NAME]: pod, [LABEL_EXTERNAL]: 'true' },
      ...(hostname ? { annotations: { 'external-dns.alpha.kubernetes.io/hostname': hostname } } : {}),
      ownerReferences: [ownerRef(s)],
    },
    spec: { type: ext.type, selector: { ...streamLabels(name), [LABEL_POD_NAME]: pod }, ports: [port] },
  };
}

function renderHost(template: string, stream: string, namespace: string, i: number): string {
  return template.replaceAll('{stream}', stream).replaceAll('{namespace}', namespace).replaceAll('{partition}', String(i));
}

/** Env of the partition container: what it announces as `external`. */
export function externalEnv(ext: ExternalSpec | undefined): Raw[] {
  if (!ext) return [];
  if (ext.type === 'NodePort') {
    return [
      ...(ext.host ? [] : [{ name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } }]),
      { name: 'HADRON_EXTERNAL_ADVERTISE_TEMPLATE', value: `${ext.host ?? '{hostIP}'}:{port}` },
      { name: 'HADRON_EXTERNAL_PORT_BASE', value: String(ext.nodePortBase) },
    ];
  }
  return [{ name: 'HADRON_EXTERNAL_ADVERTISE_TEMPLATE', value: `${ext.host}:${ext.port}` }];
}
