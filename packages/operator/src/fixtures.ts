/**
 * Fallback for the reference example `examples/full.yaml` (reference §7), used when that file is
 * absent (test-support `applyExample`): Stream
 * `events` (3 partitions, debug, 5Gi, RWO), Pipeline `service-creation`, Tokens
 * `hadron-full-access`, `hadron-read-only`, `hadron-read-write`.
 */
export const EXAMPLE_IMAGE = 'localhost/hadron-stream:0.1.0';

export function exampleManifests(namespace: string): string {
  return `---
apiVersion: hadron.rs/v1beta1
kind: Stream
metadata:
  name: events
  namespace: ${namespace}
spec:
  partitions: 3
  debug: true
  image: ${EXAMPLE_IMAGE}
  pvcVolumeSize: 5Gi
  pvcAccessModes:
    - ReadWriteOnce
---
apiVersion: hadron.rs/v1beta1
kind: Pipeline
metadata:
  name: service-creation
  namespace: ${namespace}
spec:
  sourceStream: events
  triggers:
    - service.created
  maxParallel: 50
  startPoint:
    location: beginning
  stages:
    - name: deploy-service
    - name: setup-billing
      dependencies: [deploy-service]
    - name: setup-monitoring
      dependencies: [deploy-service]
    - name: notify-user
      dependencies: [deploy-service]
    - name: cleanup
      dependencies: [deploy-service, setup-billing, setup-monitoring, notify-user]
---
apiVersion: hadron.rs/v1beta1
kind: Token
metadata:
  name: hadron-full-access
  namespace: ${namespace}
spec:
  all: true
---
apiVersion: hadron.rs/v1beta1
kind: Token
metadata:
  name: hadron-read-only
  namespace: ${namespace}
spec:
  streams:
    pub: []
    sub: [events]
---
apiVersion: hadron.rs/v1beta1
kind: Token
metadata:
  name: hadron-read-write
  namespace: ${namespace}
spec:
  streams:
    pub: [events]
    sub: [events]
`;
}

/** Pre-provisioned PersistentVolumes (no class) so StatefulSet claims bind without a provisioner. */
export function persistentVolumes(prefix: string, count: number, size = '5Gi'): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: Array.from({ length: count }, (_, i) => ({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: `${prefix}-${i}` },
      spec: {
        capacity: { storage: size },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        hostPath: { path: `/tmp/${prefix}-${i}` },
      },
    })),
  });
}
