/**
 * The objects the operator creates, exactly as reference §3.5 specifies them (names, labels,
 * ports, env, probes, volume claim), plus owner references (the original set none). Pure
 * functions: a Stream or Token in, the applied configuration out.
 */
import { API_VERSION, CANONICAL_LABELS, type Stream, type Token } from '@hadron/core';
import type { KubeObject, OwnerReference } from '@hadron/k8s';

export const FIELD_MANAGER = 'hadron-operator';
export const STREAM_CONTAINER = 'hadron-stream';
export const STREAM_SERVICE_ACCOUNT = 'hadron-stream';
export const DATA_PATH = '/usr/local/hadron-stream/data';
export const PORTS = { client: 7000, server: 7001, metrics: 7002, http: 7003 } as const;

export const LABEL_STREAM = 'hadron.rs/stream';
export const LABEL_STATEFULSET = 'hadron.rs/statefulset';
export const LABEL_POD_NAME = 'statefulset.kubernetes.io/pod-name';

// TLS (spec.tls): the Secret volume and env of the partitions; the Secrets: tls-secrets.ts.
export const TLS_MOUNT_PATH = '/etc/hadron/tls';
export const TLS_VOLUME = 'tls';

/** The Secret mounted into the partitions, or undefined when the Stream has no TLS. */
export function tlsSecretName(s: Stream): string | undefined {
  if (!s.spec.tls) return undefined;
  return s.spec.tls.secretName ?? `${s.metadata.name}-tls`;
}

/** Env of the partition container for TLS (empty without). */
export function tlsEnv(s: Stream): Array<{ name: string; value: string }> {
  if (!tlsSecretName(s)) return [];
  return [
    { name: 'HADRON_TLS_CERT_FILE', value: `${TLS_MOUNT_PATH}/tls.crt` },
    { name: 'HADRON_TLS_KEY_FILE', value: `${TLS_MOUNT_PATH}/tls.key` },
  ];
}

export function ownerRef(obj: { kind: string; metadata: { name: string; uid?: string } }): OwnerReference {
  return { apiVersion: API_VERSION, kind: obj.kind, name: obj.metadata.name, uid: obj.metadata.uid ?? '', controller: true, blockOwnerDeletion: true };
}

export function streamLabels(stream: string): Record<string, string> {
  return { ...CANONICAL_LABELS, [LABEL_STREAM]: stream };
}

/**
 * The Stream's StatefulSet. `placement` (scheduling.ts) adds pod-spec fields (spread, priority
 * class, node selection) and the container's resources; `env` is appended (external.ts).
 */
export function statefulSet(s: Stream, namespace: string, placement: { pod?: Record<string, unknown>; resources?: Record<string, unknown>; env?: Array<Record<string, unknown>> } = {}): KubeObject {
  const name = s.metadata.name;
  const labels = streamLabels(name);
  const rp = s.spec.retentionPolicy;
  const retentionSeconds = rp.retentionSeconds;
  const tlsSecret = tlsSecretName(s);
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace, labels, ownerReferences: [ownerRef(s)] },
    spec: {
      serviceName: name,
      replicas: s.spec.partitions,
      selector: { matchLabels: labels },
      updateStrategy: { type: 'RollingUpdate' },
      template: {
        metadata: { labels },
        spec: {
          terminationGracePeriodSeconds: 30,
          ...placement.pod,
          serviceAccountName: STREAM_SERVICE_ACCOUNT,
          automountServiceAccountToken: true,
          ...(tlsSecret ? { volumes: [{ name: TLS_VOLUME, secret: { secretName: tlsSecret } }] } : {}),
          containers: [
            {
              name: STREAM_CONTAINER,
              image: s.spec.image,
              imagePullPolicy: 'IfNotPresent',
              command: ['/bin/hadron-stream'],
              ports: [
                { name: 'client-port', containerPort: PORTS.client, protocol: 'TCP' },
                { name: 'server-port', containerPort: PORTS.server, protocol: 'TCP' },
                { name: 'metrics-port', containerPort: PORTS.metrics, protocol: 'TCP' },
                { name: 'http-port', containerPort: PORTS.http, protocol: 'TCP' },
              ],
              env: [
                { name: 'RUST_LOG', value: s.spec.debug ? 'error,hadron_stream=debug,hadron_core=debug' : 'error,hadron_stream=info,hadron_core=info' },
                { name: 'CLIENT_PORT', value: String(PORTS.client) },
                { name: 'SERVER_PORT', value: String(PORTS.server) },
                { name: 'METRICS_PORT', value: String(PORTS.metrics) },
                { name: 'NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                { name: 'STREAM', value: name },
                { name: 'STATEFULSET', value: name },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'STORAGE_DATA_PATH', value: DATA_PATH },
                { name: 'RETENTION_POLICY_STRATEGY', value: rp.strategy },
                retentionSeconds === undefined || retentionSeconds === null
                  ? { name: 'RETENTION_POLICY_RETENTION_SECONDS' }
                  : { name: 'RETENTION_POLICY_RETENTION_SECONDS', value: String(retentionSeconds) },
                // CloudEvents HTTP ingress (docs/http.md); after the reference's variables, which keep their order.
                { name: 'HADRON_HTTP_PORT', value: String(PORTS.http) },
                ...tlsEnv(s),
                // Replication (issue 9): the key from Secret {stream}-replication (replication.ts).
                { name: 'HADRON_REPLICATION_KEY', valueFrom: { secretKeyRef: { name: `${name}-replication`, key: 'key' } } },
                ...(placement.env ?? []),
              ],
              volumeMounts: [{ name: 'data', mountPath: DATA_PATH }, ...(tlsSecret ? [{ name: TLS_VOLUME, mountPath: TLS_MOUNT_PATH, readOnly: true }] : [])],
              ...(placement.resources ? { resources: placement.resources } : {}),
              readinessProbe: { tcpSocket: { port: PORTS.client }, initialDelaySeconds: 5, periodSeconds: 10 },
              livenessProbe: { tcpSocket: { port: PORTS.client }, initialDelaySeconds: 15, periodSeconds: 20 },
            },
          ],
        },
      },
      volumeClaimTemplates: [volumeClaimTemplate(s)],
    },
  };
}

export function volumeClaimTemplate(s: Stream): KubeObject {
  const spec: Record<string, unknown> = {
    accessModes: s.spec.pvcAccessModes && s.spec.pvcAccessModes.length > 0 ? s.spec.pvcAccessModes : ['ReadWriteOnce'],
    resources: { requests: { storage: s.spec.pvcVolumeSize } },
  };
  if (s.spec.pvcStorageClass) spec.storageClassName = s.spec.pvcStorageClass;
  return { metadata: { name: 'data' }, spec };
}

const servicePorts = [
  { name: 'client-port', port: PORTS.client, targetPort: PORTS.client, protocol: 'TCP' },
  { name: 'server-port', port: PORTS.server, targetPort: PORTS.server, protocol: 'TCP' },
  { name: 'http-port', port: PORTS.http, targetPort: PORTS.http, protocol: 'TCP' },
];

/** Headless Service `{stream}`: bootstrap address `{stream}.{ns}.svc.cluster.local:7000`. */
export function headlessService(s: Stream, namespace: string): KubeObject {
  const name = s.metadata.name;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: { ...streamLabels(name), [LABEL_STATEFULSET]: name }, ownerReferences: [ownerRef(s)] },
    spec: { type: 'ClusterIP', clusterIP: 'None', selector: streamLabels(name), ports: servicePorts },
  };
}

/** Per-pod ClusterIP Service `{stream}-{i}`: partition i's stable address. */
export function podService(s: Stream, namespace: string, i: number): KubeObject {
  const name = s.metadata.name;
  const pod = `${name}-${i}`;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: pod, namespace, labels: { ...streamLabels(name), [LABEL_STATEFULSET]: name, [LABEL_POD_NAME]: pod }, ownerReferences: [ownerRef(s)] },
    spec: { type: 'ClusterIP', selector: { ...streamLabels(name), [LABEL_POD_NAME]: pod }, ports: servicePorts },
  };
}

/** Token Secret `{token}`: 128-byte `hmac_key` and the HS512 JWT `{jti, sub}` in `token`. */
export function tokenSecret(t: Token, namespace: string, minted: { key: Uint8Array; token: string }): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name: t.metadata.name, namespace, labels: { ...CANONICAL_LABELS }, ownerReferences: [ownerRef(t)] },
    data: { hmac_key: Buffer.from(minted.key).toString('base64'), token: Buffer.from(minted.token).toString('base64') },
  };
}

/** The partition index of a per-pod Service (`{stream}-{i}`), or undefined for the headless one. */
export function podIndexOf(svc: KubeObject): number | undefined {
  const pod = svc.metadata.labels?.[LABEL_POD_NAME];
  const m = pod === undefined ? null : /-(\d+)$/.exec(pod);
  return m ? Number(m[1]) : undefined;
}
