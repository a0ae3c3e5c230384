import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { startControlPlane, type ControlPlane } from './control-plane.js';

// A cold cache builds Kubernetes from source first (tens of minutes on 2 cores).
const TIMEOUT = 60 * 60_000;

/** Poll until `check` returns something other than undefined, or fail at the deadline. */
async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let interval = 100; ; interval = Math.min(interval * 2, 1000)) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await delay(interval);
  }
}

async function ok(cp: ControlPlane, args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function assertStopped(cp: ControlPlane): Promise<void> {
  await cp.stop();
  for (const p of cp.processes) assert.equal(alive(p.pid), false, `${p.name} (pid ${p.pid}) still running`);
  assert.equal(existsSync(cp.dataDir), false, `${cp.dataDir} not removed`);
  await cp[Symbol.asyncDispose](); // idempotent
}

test('API-only control plane: etcd + kube-apiserver with an admin token and RBAC', { timeout: TIMEOUT }, async () => {
  const cp = await startControlPlane({});
  try {
    console.log(`# API-only plane ready: ${JSON.stringify(cp.timings)}`);
    assert.deepEqual(
      cp.processes.map((p) => p.name),
      ['etcd', 'kube-apiserver'],
    );
    assert.match(cp.server, /^https:\/\/127\.0\.0\.1:\d+$/);
    const version = JSON.parse(await ok(cp, ['get', '--raw', '/version'])) as { gitVersion: string };
    assert.match(version.gitVersion, /^v1\.\d+\.\d+$/);
    assert.equal((await ok(cp, ['auth', 'can-i', '*', '*', '--all-namespaces'])).trim(), 'yes');
    // RBAC is really on: an unprivileged identity is refused.
    const r = await cp.kubectl(['auth', 'can-i', 'list', 'pods', '--as=nobody']);
    assert.equal(r.stdout.trim(), 'no');
  } finally {
    await assertStopped(cp);
  }
});

test('control plane with kwok nodes: CRD established, StatefulSet pods Ready', { timeout: TIMEOUT }, async () => {
  const cp = await startControlPlane({ withNodes: true });
  try {
    console.log(`# withNodes plane ready: ${JSON.stringify(cp.timings)}`);
    assert.deepEqual(
      cp.processes.map((p) => p.name),
      ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'],
    );
    const ns = `cp-test-${process.pid}`;
    await ok(cp, ['create', 'namespace', ns]);

    // --- CustomResourceDefinition ----------------------------------------------------------
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.test.hadron.dev' },
      spec: {
        group: 'test.hadron.dev',
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: { type: 'object', properties: { size: { type: 'integer', default: 1 } } },
                },
              },
            },
          },
        ],
      },
    };
    await ok(cp, ['apply', '-f', '-'], JSON.stringify(crd));
    await eventually('CRD Established', 60_000, async () => {
      const out = await ok(cp, [
        'get',
        'crd',
        'widgets.test.hadron.dev',
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Established")].status}',
      ]);
      return out === 'True' ? true : undefined;
    });
    // The served API works, including structural-schema defaulting.
    const widget = { apiVersion: 'test.hadron.dev/v1', kind: 'Widget', metadata: { name: 'w1', namespace: ns }, spec: {} };
    await eventually('Widget create', 30_000, async () => ((await cp.kubectl(['create', '-f', '-'], JSON.stringify(widget))).code === 0 ? true : undefined));
    assert.equal(await ok(cp, ['get', 'widget', 'w1', '-n', ns, '-o', 'jsonpath={.spec.size}']), '1');

    // --- StatefulSet with volume claims on static hostPath PVs -------------------------------
    const sc = {
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: `local-${ns}` },
      provisioner: 'kubernetes.io/no-provisioner',
      volumeBindingMode: 'WaitForFirstConsumer',
    };
    const pvs = [0, 1].map((i) => ({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: `pv-${ns}-${i}` },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: `local-${ns}`,
        hostPath: { path: `/tmp/hadron-pv-${ns}-${i}` },
      },
    }));
    const svc = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'stream', namespace: ns },
      spec: { clusterIP: 'None', selector: { app: 'hadron-stream' }, ports: [{ name: 'grpc', port: 7000 }] },
    };
    const sts = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'stream', namespace: ns },
      spec: {
        replicas: 2,
        serviceName: 'stream',
        selector: { matchLabels: { app: 'hadron-stream' } },
        template: {
          metadata: { labels: { app: 'hadron-stream' } },
          spec: {
            containers: [
              {
                name: 'stream',
                image: 'registry.invalid/hadron/stream:test', // never pulled: kwok runs no containers
                env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
                ports: [{ name: 'grpc', containerPort: 7000 }],
                volumeMounts: [{ name: 'data', mountPath: '/data' }],
              },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data' },
            spec: {
              accessModes: ['ReadWriteOnce'],
              storageClassName: `local-${ns}`,
              resources: { requests: { storage: '1Gi' } },
            },
          },
        ],
      },
    };
    const list = { apiVersion: 'v1', kind: 'List', items: [sc, ...pvs, svc, sts] };
    await ok(cp, ['apply', '-f', '-'], JSON.stringify(list));

    interface Pod {
      metadata: { name: string };
      spec: { nodeName?: string };
      status: { phase?: string; conditions?: { type: string; status: string }[] };
    }
    const pods = await eventually('2 StatefulSet pods Ready', 180_000, async () => {
      const out = JSON.parse(await ok(cp, ['get', 'pods', '-n', ns, '-l', 'app=hadron-stream', '-o', 'json'])) as {
        items: Pod[];
      };
      const ready = out.items.filter(
        (p) => p.status.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      );
      return ready.length === 2 ? ready : undefined;
    });
    assert.deepEqual(pods.map((p) => p.metadata.name).sort(), ['stream-0', 'stream-1']);
    for (const p of pods) assert.equal(p.spec.nodeName, cp.nodeName);
    await eventually('StatefulSet readyReplicas=2', 60_000, async () =>
      (await ok(cp, ['get', 'statefulset', 'stream', '-n', ns, '-o', 'jsonpath={.status.readyReplicas}'])) === '2'
        ? true
        : undefined,
    );
    const phases = await ok(cp, ['get', 'pvc', '-n', ns, '-o', 'jsonpath={.items[*].status.phase}']);
    assert.equal(phases, 'Bound Bound');
  } finally {
    await assertStopped(cp);
  }
});
