/**
 * The operator against a real Kubernetes control plane (etcd, kube-apiserver, controller-manager,
 * scheduler, kwok): two `hadron-operator` processes running with the chart's ServiceAccount and
 * RBAC (token from the TokenRequest API), the reference example applied with kubectl.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { X509Certificate, createHmac } from 'node:crypto';
import { CANONICAL_LABELS, API_VERSION } from '@hadron/core';
import { RT, resourcePath, type KubeClient } from '@hadron/k8s';
import { startControlPlane, type ControlPlane } from '@hadron/testing/k8s/control-plane';
import { EXAMPLE_IMAGE, exampleManifests, persistentVolumes } from './fixtures.js';
import { LEASE_NAME, LeaderElector, NotLeaderError } from './leader.js';
import { adminClient, applyExample, eventually, installChart, kubectl, K8S_TEST_TIMEOUT, OperatorProcess, serviceAccountKubeconfig, tempDir } from './test-support.js';
import { silentLogger } from '@hadron/core';

// Loose typing for assertions on API objects.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = { metadata: any; [k: string]: any };

const NS = 'hadron-op';
const LEASE_SECONDS = 6;

describe('operator on a real API server', { timeout: K8S_TEST_TIMEOUT }, () => {
  let cp: ControlPlane;
  let api: KubeClient;
  let dir: string;
  let kubeconfig: string;
  let tls: { cert: string; key: string };
  const ops = new Map<string, OperatorProcess>();
  /** The replication key as first created; no reconcile (nor a new leader) may change it. */
  let replicationKey = '';

  const get = (rt: (typeof RT)[keyof typeof RT], name: string): Promise<Obj | undefined> => api.getOrUndefined<Obj>(resourcePath(rt, NS, name));
  const leaseHolder = async (): Promise<string | undefined> => ((await get(RT.leases, LEASE_NAME))?.spec?.holderIdentity as string | undefined) || undefined;
  const leader = async (): Promise<OperatorProcess> => {
    const h = await eventually('a Lease holder', 30_000, leaseHolder);
    const op = ops.get(h);
    assert.ok(op, `Lease held by unknown ${h}`);
    return op;
  };
  /** Waits until the leader has processed everything queued so far. */
  const settled = async (op: OperatorProcess): Promise<void> => {
    await eventually('operator work queue drained', 30_000, async () => ((await op.metricSum('hadron_operator_work_in_progress')) === 0 ? true : undefined));
  };
  const startOp = async (name: string): Promise<OperatorProcess> => {
    const op = await OperatorProcess.start({ name, namespace: NS, kubeconfig, tls, leaseDurationSeconds: LEASE_SECONDS, leaseRenewSeconds: 3 });
    ops.set(name, op);
    return op;
  };

  before(async () => {
    cp = await startControlPlane({ withNodes: true });
    api = adminClient(cp);
    dir = tempDir('hadron-op-test-');
    const chart = await installChart(cp, NS);
    tls = chart.tls;
    kubeconfig = await serviceAccountKubeconfig(cp, NS, 'hadron-operator', dir);
    await kubectl(cp, ['apply', '-f', '-'], persistentVolumes(`pv-${NS}`, 5));
    const a = await startOp('hadron-operator-a');
    await eventually('operator a leads', 30_000, async () => ((await a.metricSum('hadron_operator_is_leader')) === 1 ? true : undefined));
    await startOp('hadron-operator-b');
  });

  after(async () => {
    for (const op of ops.values()) await op.kill('SIGKILL');
    api?.close();
    if (process.exitCode && dir) for (const op of ops.values()) fs.writeFileSync(`${dir}/${op.name}.log`, op.output.join('\n'));
    await cp?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs with the chart ServiceAccount, which is not cluster-admin', async () => {
    const can = async (verb: string, what: string): Promise<string> => {
      const r = await cp.kubectl(['auth', 'can-i', verb, what, '-n', NS, `--as=system:serviceaccount:${NS}:hadron-operator`]);
      return r.stdout.trim();
    };
    assert.equal(await can('patch', 'statefulsets.apps'), 'yes');
    assert.equal(await can('create', 'secrets'), 'yes');
    assert.equal(await can('get', 'secrets'), 'no');
    assert.equal(await can('list', 'pods'), 'no');
    assert.equal(await can('create', 'deployments.apps'), 'no');
  });

  it('applies the reference example: StatefulSet, Services and Secrets exactly as specified', async () => {
    const applied = await applyExample(cp, NS, exampleManifests(NS));
    assert.equal(applied.code, 0, applied.stderr);
    const stream = (await get(RT.streams, 'events'))!;
    const sts = await eventually('StatefulSet events', 30_000, () => get(RT.statefulsets, 'events'));
    const labels = { ...CANONICAL_LABELS, 'hadron.rs/stream': 'events' };
    assert.deepEqual(sts.metadata.labels, labels);
    assert.deepEqual(sts.metadata.ownerReferences, [{ apiVersion: API_VERSION, kind: 'Stream', name: 'events', uid: stream.metadata.uid, controller: true, blockOwnerDeletion: true }]);
    assert.equal(sts.spec.serviceName, 'events');
    assert.equal(sts.spec.replicas, 3);
    assert.deepEqual(sts.spec.selector, { matchLabels: labels });
    assert.deepEqual(sts.spec.template.metadata.labels, labels);
    assert.equal(sts.spec.updateStrategy.type, 'RollingUpdate');
    assert.equal(sts.spec.podManagementPolicy, 'Parallel', 'partitions start together: each waits for its replicas at start-up');
    const pod = sts.spec.template.spec;
    assert.equal(pod.serviceAccountName, 'hadron-stream');
    assert.equal(pod.automountServiceAccountToken, true);
    assert.equal(pod.terminationGracePeriodSeconds, 30);
    assert.equal(pod.containers.length, 1);
    const c = pod.containers[0];
    assert.equal(c.name, 'hadron-stream');
    assert.equal(c.image, EXAMPLE_IMAGE);
    assert.equal(c.imagePullPolicy, 'IfNotPresent');
    assert.deepEqual(c.command, ['/bin/hadron-stream']);
    assert.deepEqual(
      c.ports.map((p: Obj) => [p.name, p.containerPort, p.protocol]),
      [
        ['client-port', 7000, 'TCP'],
        ['server-port', 7001, 'TCP'],
        ['metrics-port', 7002, 'TCP'],
        ['http-port', 7003, 'TCP'],
      ],
    );
    assert.deepEqual(c.env, [
      { name: 'RUST_LOG', value: 'error,hadron_stream=debug,hadron_core=debug' },
      { name: 'CLIENT_PORT', value: '7000' },
      { name: 'SERVER_PORT', value: '7001' },
      { name: 'METRICS_PORT', value: '7002' },
      { name: 'NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
      { name: 'STREAM', value: 'events' },
      { name: 'STATEFULSET', value: 'events' },
      { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
      { name: 'STORAGE_DATA_PATH', value: '/usr/local/hadron-stream/data' },
      { name: 'RETENTION_POLICY_STRATEGY', value: 'time' },
      { name: 'RETENTION_POLICY_RETENTION_SECONDS', value: '604800' },
      { name: 'HADRON_HTTP_PORT', value: '7003' },
      { name: 'HADRON_REPLICATION_KEY', valueFrom: { secretKeyRef: { name: 'events-replication', key: 'key' } } },
    ]);
    // The replication key Secret: 32 random bytes as text, owned by the Stream, made before the pods need it.
    const repl = await eventually('Secret events-replication', 30_000, () => get(RT.secrets, 'events-replication'));
    assert.equal(repl.type, 'hadron.rs/replication-key');
    assert.deepEqual(repl.metadata.labels, labels);
    assert.deepEqual([repl.metadata.ownerReferences[0].kind, repl.metadata.ownerReferences[0].uid], ['Stream', stream.metadata.uid]);
    // Pods read it as an env var: text (base64url of 32 random bytes), never raw bytes.
    const keyText = Buffer.from(repl.data.key, 'base64').toString('utf8');
    assert.match(keyText, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(keyText, 'base64url').length, 32);
    replicationKey = repl.data.key as string;
    assert.deepEqual(c.volumeMounts, [{ name: 'data', mountPath: '/usr/local/hadron-stream/data' }]);
    assert.deepEqual(c.readinessProbe.tcpSocket, { port: 7000 });
    assert.deepEqual([c.readinessProbe.initialDelaySeconds, c.readinessProbe.periodSeconds], [5, 10]);
    assert.deepEqual([c.livenessProbe.initialDelaySeconds, c.livenessProbe.periodSeconds], [15, 20]);
    assert.equal(sts.spec.volumeClaimTemplates.length, 1);
    const vct = sts.spec.volumeClaimTemplates[0];
    assert.equal(vct.metadata.name, 'data');
    assert.deepEqual(vct.spec.accessModes, ['ReadWriteOnce']);
    assert.equal(vct.spec.resources.requests.storage, '5Gi');

    // Headless Service and per-pod Services.
    const svcLabels = { ...labels, 'hadron.rs/statefulset': 'events' };
    const ports = [
      ['client-port', 7000, 7000, 'TCP'],
      ['server-port', 7001, 7001, 'TCP'],
      ['http-port', 7003, 7003, 'TCP'],
    ];
    const headless = await eventually('Service events', 30_000, () => get(RT.services, 'events'));
    assert.deepEqual(headless.metadata.labels, svcLabels);
    assert.equal(headless.spec.clusterIP, 'None');
    assert.equal(headless.spec.type, 'ClusterIP');
    assert.deepEqual(headless.spec.selector, labels);
    assert.deepEqual(headless.spec.ports.map((p: Obj) => [p.name, p.port, p.targetPort, p.protocol]), ports);
    assert.equal(headless.metadata.ownerReferences[0].uid, stream.metadata.uid);
    for (let i = 0; i < 3; i++) {
      const svc = await eventually(`Service events-${i}`, 30_000, () => get(RT.services, `events-${i}`));
      const podLabel = { 'statefulset.kubernetes.io/pod-name': `events-${i}` };
      assert.deepEqual(svc.metadata.labels, { ...svcLabels, ...podLabel });
      assert.deepEqual(svc.spec.selector, { ...labels, ...podLabel });
      assert.notEqual(svc.spec.clusterIP, 'None');
      assert.deepEqual(svc.spec.ports.map((p: Obj) => [p.name, p.port, p.targetPort, p.protocol]), ports);
    }

    // Token Secrets: 128-byte key, HS512 JWT {jti, sub} signed with it.
    for (const name of ['hadron-full-access', 'hadron-read-only', 'hadron-read-write']) {
      const token = (await get(RT.tokens, name))!;
      const secret = await eventually(`Secret ${name}`, 30_000, () => get(RT.secrets, name));
      assert.equal(secret.type, 'Opaque');
      assert.deepEqual(secret.metadata.labels, { ...CANONICAL_LABELS });
      assert.equal(secret.metadata.ownerReferences[0].kind, 'Token');
      assert.equal(secret.metadata.ownerReferences[0].uid, token.metadata.uid);
      const key = Buffer.from(secret.data.hmac_key, 'base64');
      assert.equal(key.length, 128);
      const jwt = Buffer.from(secret.data.token, 'base64').toString();
      const [h, p, sig] = jwt.split('.') as [string, string, string];
      assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url').toString()), { typ: 'JWT', alg: 'HS512' });
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, string>;
      assert.deepEqual(Object.keys(claims).sort(), ['jti', 'sub']);
      assert.equal(claims.sub, name);
      assert.match(claims.jti!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(createHmac('sha512', key).update(`${h}.${p}`).digest('base64url'), sig);
      const st = await eventually(`Token ${name} status`, 30_000, async () => {
        const t = await get(RT.tokens, name);
        return t?.status?.conditions?.[0]?.status === 'True' ? t.status : undefined;
      });
      assert.equal(st.secretName, name);
      assert.equal(st.tokenId, claims.jti);
      assert.equal(st.observedGeneration, token.metadata.generation);
    }

    const pst = await eventually('Pipeline status', 30_000, async () => (await get(RT.pipelines, 'service-creation'))?.status);
    assert.equal(pst.stages, 5);
    assert.equal(pst.conditions[0].type, 'Accepted');
    assert.equal(pst.conditions[0].status, 'True');

    // A Trigger (docs/http.md): status says where its events go.
    await kubectl(cp, ['apply', '-n', NS, '-f', '-'], JSON.stringify({ apiVersion: 'hadron.rs/v1beta1', kind: 'Trigger', metadata: { name: 'to-billing' }, spec: { sourceStream: 'events', sink: { ref: { name: 'billing', port: 8080, path: '/in' } } } }));
    const tst = await eventually('Trigger status', 30_000, async () => (await get(RT.triggers, 'to-billing'))?.status);
    assert.equal(tst.sinkUri, `http://billing.${NS}.svc.cluster.local:8080/in`);
    assert.deepEqual([tst.conditions[0].type, tst.conditions[0].status, tst.conditions[0].reason], ['Accepted', 'True', 'Valid']);
    await kubectl(cp, ['delete', '-n', NS, 'trigger/to-billing']);
  });

  it('pods become Ready under kwok and the Stream status reports ready partitions', async () => {
    const st = await eventually('Stream events Ready', 60_000, async () => {
      const s = await get(RT.streams, 'events');
      return s?.status?.readyPartitions === 3 && s.status.conditions?.[0]?.status === 'True' ? s : undefined;
    });
    assert.equal(st.status.partitions, 3);
    assert.equal(st.status.observedGeneration, st.metadata.generation);
    // Replication: default min(2, partitions); partition N is copied to pod N+1 (mod 3).
    assert.equal(st.status.replicationFactor, 2);
    assert.deepEqual(st.status.replicas, [
      { partition: 0, pod: 'events-0', replicaPods: ['events-1'] },
      { partition: 1, pod: 'events-1', replicaPods: ['events-2'] },
      { partition: 2, pod: 'events-2', replicaPods: ['events-0'] },
    ]);
    // An explicit factor: each partition on the next two pods too.
    await kubectl(cp, ['patch', '-n', NS, 'stream/events', '--type=merge', '-p', JSON.stringify({ spec: { replicationFactor: 3 } })]);
    const r3 = await eventually('status.replicationFactor 3', 30_000, async () => {
      const s = await get(RT.streams, 'events');
      return s?.status?.replicationFactor === 3 ? s.status : undefined;
    });
    assert.deepEqual(r3.replicas[2], { partition: 2, pod: 'events-2', replicaPods: ['events-0', 'events-1'] });
    await kubectl(cp, ['patch', '-n', NS, 'stream/events', '--type=merge', '-p', JSON.stringify({ spec: { replicationFactor: null } })]);
    await eventually('status.replicationFactor back to 2', 30_000, async () => ((await get(RT.streams, 'events'))?.status?.replicationFactor === 2 ? true : undefined));
    assert.equal(st.status.selector, Object.entries({ ...CANONICAL_LABELS, 'hadron.rs/stream': 'events' }).map(([k, v]) => `${k}=${v}`).join(','));
    assert.equal(st.status.conditions[0].reason, 'AllPartitionsReady');
    // Printer columns show values.
    const table = await kubectl(cp, ['get', 'streams', '-n', NS]);
    assert.match(table, /NAME\s+PARTITIONS\s+READY PARTITIONS\s+READY\s+DEBUG\s+RETENTION\s+RETENTION SECONDS\s+PVC VOLUME SIZE/);
    assert.match(table, /events\s+3\s+3\s+True\s+true\s+time\s+604800\s+5Gi/);
    const tokens = await kubectl(cp, ['get', 'tokens', '-n', NS]);
    assert.match(tokens, /hadron-full-access\s+true\s+hadron-full-access\s+[0-9a-f-]{36}\s+True/);
  });

  it('placement: a PodDisruptionBudget per Stream, spread across nodes; resources, priority class, node selection from the spec; status shows them', async () => {
    const pdb = await eventually('PodDisruptionBudget events', 30_000, () => get(RT.poddisruptionbudgets, 'events'));
    const labels = { ...CANONICAL_LABELS, 'hadron.rs/stream': 'events' };
    assert.equal(pdb.spec.maxUnavailable, 1);
    assert.deepEqual(pdb.spec.selector, { matchLabels: labels });
    assert.equal(pdb.metadata.ownerReferences[0].kind, 'Stream');
    // The disruption controller (controller-manager) sees the 3 Ready pods: one may go.
    await eventually('PDB allows one disruption', 30_000, async () => ((await get(RT.poddisruptionbudgets, 'events'))?.status?.disruptionsAllowed === 1 ? true : undefined));
    const sts = (await get(RT.statefulsets, 'events'))!;
    assert.deepEqual(
      sts.spec.template.spec.topologySpreadConstraints.map((c: Obj) => [c.topologyKey, c.maxSkew, c.whenUnsatisfiable]),
      [
        ['kubernetes.io/hostname', 1, 'ScheduleAnyway'],
        ['topology.kubernetes.io/zone', 1, 'ScheduleAnyway'],
      ],
    );
    const st = (await get(RT.streams, 'events'))!.status;
    assert.deepEqual(st.scheduling, { podDisruptionBudget: 'events', maxUnavailable: 1, spread: 'preferred', tolerations: 0 });

    // A second Stream with every placement field (its claims use a class no PV has: it takes no PV).
    await kubectl(cp, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: 'hadron-test-high' }, value: 1000 }));
    const spec = {
      partitions: 2,
      image: EXAMPLE_IMAGE,
      pvcStorageClass: 'no-such-class',
      resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '256Mi' } },
      priorityClassName: 'hadron-test-high',
      nodeSelector: { 'kubernetes.io/hostname': 'kwok-node-0' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'hadron', effect: 'NoSchedule' }],
      spread: 'required',
    };
    await kubectl(cp, ['apply', '-n', NS, '-f', '-'], JSON.stringify({ apiVersion: 'hadron.rs/v1beta1', kind: 'Stream', metadata: { name: 'placed' }, spec }));
    const placed = await eventually('StatefulSet placed', 30_000, () => get(RT.statefulsets, 'placed'));
    const pod = placed.spec.template.spec;
    assert.deepEqual(pod.containers[0].resources, spec.resources);
    assert.equal(pod.priorityClassName, 'hadron-test-high');
    assert.deepEqual(pod.nodeSelector, spec.nodeSelector);
    assert.deepEqual(pod.tolerations, spec.tolerations);
    assert.equal(pod.topologySpreadConstraints[0].whenUnsatisfiable, 'DoNotSchedule');
    assert.ok(await eventually('PodDisruptionBudget placed', 30_000, () => get(RT.poddisruptionbudgets, 'placed')));
    const pst = await eventually('Stream placed status', 30_000, async () => (await get(RT.streams, 'placed'))?.status?.scheduling);
    assert.deepEqual(pst, {
      podDisruptionBudget: 'placed',
      maxUnavailable: 1,
      spread: 'required',
      priorityClassName: 'hadron-test-high',
      nodeSelector: spec.nodeSelector,
      tolerations: 1,
      resources: spec.resources,
    });
    // The schema refuses what the pod template would refuse.
    const bad = await kubectl(cp, ['apply', '-n', NS, '-f', '-'], JSON.stringify({ apiVersion: 'hadron.rs/v1beta1', kind: 'Stream', metadata: { name: 'bad-placement' }, spec: { partitions: 1, image: 'x', resources: { requests: { cpu: 'lots' } }, spread: 'sometimes' } })).catch((e: Error) => e.message);
    assert.match(String(bad), /spread|cpu/);
    await kubectl(cp, ['delete', '-n', NS, 'stream/placed']);
    await eventually('placed: StatefulSet and PDB gone', 30_000, async () => ((await get(RT.statefulsets, 'placed')) === undefined && (await get(RT.poddisruptionbudgets, 'placed')) === undefined ? true : undefined));
    // The operator keeps claims; this test's own are removed so later PVC counts hold.
    await kubectl(cp, ['delete', '-n', NS, 'pvc', '-l', 'hadron.rs/stream=placed', '--wait=true', '--timeout=60s']);
  });

  it('spec.external NodePort: per-partition Services on fixed node ports, pods told what to announce, status; removed again without it', async () => {
    const patch = (external: unknown): Promise<string> => kubectl(cp, ['patch', '-n', NS, 'stream/events', '--type=merge', '-p', JSON.stringify({ spec: { external } })]);
    // The API server refuses what cannot work.
    await assert.rejects(patch({ type: 'NodePort' }), /nodePortBase is required/);
    await assert.rejects(patch({ type: 'NodePort', nodePortBase: 32766 }), /exceeds the node port range/);
    await assert.rejects(patch({ type: 'LoadBalancer' }), /host is required/);
    await patch({ type: 'NodePort', nodePortBase: 30700 });
    for (let i = 0; i < 3; i++) {
      const svc = await eventually(`Service events-${i}-external`, 30_000, () => get(RT.services, `events-${i}-external`));
      assert.equal(svc.spec.type, 'NodePort');
      assert.deepEqual(svc.spec.ports.map((p: Obj) => [p.name, p.port, p.targetPort, p.nodePort]), [['client-port', 7000, 7000, 30700 + i]]);
      assert.deepEqual(svc.spec.selector, { ...CANONICAL_LABELS, 'hadron.rs/stream': 'events', 'statefulset.kubernetes.io/pod-name': `events-${i}` });
    }
    const env = await eventually('StatefulSet env for external addresses', 30_000, async () => {
      const e = (await get(RT.statefulsets, 'events'))?.spec.template.spec.containers[0].env as Obj[] | undefined;
      return e?.some((x) => x.name === 'HADRON_EXTERNAL_PORT_BASE') ? e : undefined;
    });
    assert.deepEqual(
      env.filter((x) => ['HOST_IP', 'HADRON_EXTERNAL_ADVERTISE_TEMPLATE', 'HADRON_EXTERNAL_PORT_BASE'].includes(x.name as string)),
      [
        { name: 'HOST_IP', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.hostIP' } } },
        { name: 'HADRON_EXTERNAL_ADVERTISE_TEMPLATE', value: '{hostIP}:{port}' },
        { name: 'HADRON_EXTERNAL_PORT_BASE', value: '30700' },
      ],
    );
    const st = await eventually('status.external', 30_000, async () => (await get(RT.streams, 'events'))?.status?.external);
    assert.deepEqual(st, { type: 'NodePort', services: ['events-0-external', 'events-1-external', 'events-2-external'] });
    // Off again: the Services, the env and the status entry go.
    await patch(null);
    await eventually('external Services removed', 30_000, async () => {
      const svcs = (await api.request<{ items: Obj[] }>('GET', resourcePath(RT.services, NS), { query: { labelSelector: 'hadron.rs/external=true' } })).items;
      return svcs.length === 0 ? true : undefined;
    });
    await eventually('env and status back', 30_000, async () => {
      const s = await get(RT.streams, 'events');
      const e = (await get(RT.statefulsets, 'events'))?.spec.template.spec.containers[0].env as Obj[];
      return s?.status?.external === undefined && !e.some((x) => String(x.name).startsWith('HADRON_EXTERNAL')) ? true : undefined;
    });
    // Both template changes rolled the pods: wait for the rollout to finish and the status to settle.
    await eventually('rollout finished, Stream events Ready again', 180_000, async () => {
      const sts = (await get(RT.statefulsets, 'events'))?.status;
      const s = await get(RT.streams, 'events');
      const done = sts && sts.currentRevision === sts.updateRevision && sts.readyReplicas === 3 && sts.updatedReplicas === 3;
      return done && s?.status?.readyPartitions === 3 && s.status.conditions?.[0]?.status === 'True' ? true : undefined;
    });
    await settled(await leader());
  });

  it('steady state: nothing is patched when nothing changed', async () => {
    const op = await leader();
    await settled(op);
    const before = await op.metricSum('hadron_operator_mutations_total');
    const stsRv = (await get(RT.statefulsets, 'events'))!.metadata.resourceVersion;
    const svcRv = (await get(RT.services, 'events-0'))!.metadata.resourceVersion;
    const reconciles = await op.metricSum('hadron_operator_reconciles_total');
    // A metadata-only change of the Stream and of a Token triggers reconciliation.
    await kubectl(cp, ['annotate', '-n', NS, 'stream/events', 'token/hadron-full-access', 'test/touch=1']);
    await eventually('reconciles ran', 30_000, async () => ((await op.metricSum('hadron_operator_reconciles_total')) >= reconciles + 2 ? true : undefined));
    await settled(op);
    assert.equal(await op.metricSum('hadron_operator_mutations_total'), before, 'the operator wrote although nothing changed');
    assert.equal((await get(RT.statefulsets, 'events'))!.metadata.resourceVersion, stsRv);
    assert.equal((await get(RT.services, 'events-0'))!.metadata.resourceVersion, svcRv);
  });

  it('scales 3 → 5 → 2 with per-pod Services following; PVCs are kept on scale-down', async () => {
    const services = async (): Promise<string[]> =>
      ((await api.request<{ items: Obj[] }>('GET', resourcePath(RT.services, NS), { query: { labelSelector: 'hadron.rs/stream=events' } })).items.map((s) => s.metadata.name)).sort();
    await kubectl(cp, ['patch', '-n', NS, 'stream/events', '--type=merge', '-p', '{"spec":{"partitions":5}}']);
    await eventually('5 partitions Ready', 60_000, async () => ((await get(RT.streams, 'events'))?.status?.readyPartitions === 5 ? true : undefined));
    assert.equal((await get(RT.statefulsets, 'events'))!.spec.replicas, 5);
    assert.deepEqual(await services(), ['events', 'events-0', 'events-1', 'events-2', 'events-3', 'events-4']);

    await kubectl(cp, ['patch', '-n', NS, 'stream/events', '--type=merge', '-p', '{"spec":{"partitions":2}}']);
    await eventually('per-pod Services 2..4 removed', 30_000, async () => ((await services()).join() === 'events,events-0,events-1' ? true : undefined));
    assert.equal((await get(RT.statefulsets, 'events'))!.spec.replicas, 2);
    const st = await eventually('2 partitions Ready', 60_000, async () => {
      const s = await get(RT.streams, 'events');
      return s?.status?.partitions === 2 && s.status.readyPartitions === 2 && s.status.conditions[0].status === 'True' ? s.status : undefined;
    });
    assert.equal(st.readyPartitions, 2);
    const pvcs = (await api.request<{ items: Obj[] }>('GET', `/api/v1/namespaces/${NS}/persistentvolumeclaims`)).items.map((p) => p.metadata.name).sort();
    assert.deepEqual(pvcs, ['data-events-0', 'data-events-1', 'data-events-2', 'data-events-3', 'data-events-4']);
  });

  it('repairs drift: a deleted per-pod Service comes back, a hand-edited StatefulSet is restored', async () => {
    const old = (await get(RT.services, 'events-1'))!;
    await kubectl(cp, ['delete', '-n', NS, 'service/events-1']);
    const back = await eventually('Service events-1 recreated', 30_000, async () => {
      const s = await get(RT.services, 'events-1');
      return s && s.metadata.uid !== old.metadata.uid ? s : undefined;
    });
    assert.equal(back.metadata.labels['statefulset.kubernetes.io/pod-name'], 'events-1');

    await kubectl(cp, ['patch', '-n', NS, 'statefulset/events', '--type=json', '-p', JSON.stringify([
      { op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'evil:latest' },
      { op: 'replace', path: '/spec/template/spec/containers/0/env/5/value', value: 'other' },
      { op: 'replace', path: '/spec/replicas', value: 4 },
    ])]);
    const restored = await eventually('StatefulSet restored', 30_000, async () => {
      const s = await get(RT.statefulsets, 'events');
      const c = s?.spec.template.spec.containers[0];
      return c?.image === EXAMPLE_IMAGE && c.env[5].value === 'events' && s!.spec.replicas === 2 ? s : undefined;
    });
    assert.equal(restored.spec.template.spec.containers[0].name, 'hadron-stream');
  });

  it('Tokens: deleting the Secret mints a new key (revoking the old JWT); deleting the Token deletes the Secret', async () => {
    const before = (await get(RT.secrets, 'hadron-read-only'))!;
    const oldKey = Buffer.from(before.data.hmac_key, 'base64');
    await kubectl(cp, ['delete', '-n', NS, 'secret/hadron-read-only']);
    const after = await eventually('a new Secret', 30_000, async () => {
      const s = await get(RT.secrets, 'hadron-read-only');
      return s && s.metadata.uid !== before.metadata.uid ? s : undefined;
    });
    const newKey = Buffer.from(after.data.hmac_key, 'base64');
    assert.equal(newKey.length, 128);
    assert.notDeepEqual(newKey, oldKey);
    const jwt = Buffer.from(after.data.token, 'base64').toString();
    const [h, p, sig] = jwt.split('.') as [string, string, string];
    assert.equal(createHmac('sha512', newKey).update(`${h}.${p}`).digest('base64url'), sig);
    const oldJwt = Buffer.from(before.data.token, 'base64').toString().split('.');
    assert.notEqual(createHmac('sha512', newKey).update(`${oldJwt[0]}.${oldJwt[1]}`).digest('base64url'), oldJwt[2], 'the old JWT must not verify with the new key');
    const jti = (JSON.parse(Buffer.from(p, 'base64url').toString()) as { jti: string }).jti;
    await eventually('Token status shows the new token id', 30_000, async () => ((await get(RT.tokens, 'hadron-read-only'))?.status?.tokenId === jti ? true : undefined));

    await kubectl(cp, ['delete', '-n', NS, 'token/hadron-read-only']);
    await eventually('Secret deleted with its Token', 30_000, async () => ((await get(RT.secrets, 'hadron-read-only')) === undefined ? true : undefined));
    assert.ok(await get(RT.secrets, 'hadron-read-write'), 'other Secrets stay');
  });

  it('a non-leader never writes, and its fence refuses', async () => {
    const lead = await leader();
    for (const op of ops.values()) {
      if (op === lead) continue;
      assert.equal(await op.metricSum('hadron_operator_is_leader'), 0);
      assert.equal(await op.metricSum('hadron_operator_mutations_total'), 0, `${op.name} wrote while following`);
    }
    assert.ok((await lead.metricSum('hadron_operator_mutations_total')) > 0);
    // An elector that is not the leader refuses to write (fencing), even after observing the Lease.
    const intruder = new LeaderElector({ client: api, namespace: NS, identity: 'intruder', leaseDurationSeconds: LEASE_SECONDS, renewSeconds: 3, logger: silentLogger });
    intruder.start();
    await eventually('intruder follows', 10_000, () => (intruder.state.kind === 'following' ? true : undefined));
    await assert.rejects(intruder.fence(), NotLeaderError);
    await intruder.stop();
    assert.equal(await leaseHolder(), lead.name);
  });

  it('kill the leader: the other takes over within the lease duration and reconciles', async () => {
    const old = await leader();
    const other = [...ops.values()].find((o) => o !== old)!;
    const transitions = ((await get(RT.leases, LEASE_NAME))!.spec.leaseTransitions as number) ?? 0;
    await old.kill('SIGKILL');
    ops.delete(old.name);
    const t0 = Date.now();
    await eventually('the other operator leads', (LEASE_SECONDS + 10) * 1000, async () => ((await leaseHolder()) === other.name && (await other.metricSum('hadron_operator_is_leader')) === 1 ? true : undefined));
    const took = (Date.now() - t0) / 1000;
    // Expiry is judged from when the follower last saw the Lease change (≤ one retry period of 2 s
    // after the last renewal), and it tries every 2 s: lease duration + 2 retry periods at most.
    assert.ok(took <= LEASE_SECONDS + 4 + 1, `takeover took ${took}s`);
    const lease = (await get(RT.leases, LEASE_NAME))!;
    assert.equal(lease.spec.leaseTransitions, transitions + 1);
    assert.ok((await other.metricSum('hadron_operator_leadership_changes_total')) >= 2);

    // The new leader repairs drift.
    const svc = (await get(RT.services, 'events-0'))!;
    await kubectl(cp, ['delete', '-n', NS, 'service/events-0']);
    await eventually('Service events-0 recreated by the new leader', 30_000, async () => {
      const s = await get(RT.services, 'events-0');
      return s && s.metadata.uid !== svc.metadata.uid ? true : undefined;
    });
    assert.ok((await other.metricSum('hadron_operator_mutations_total')) > 0);
    assert.equal((await get(RT.secrets, 'events-replication'))?.data?.key, replicationKey, 'the new leader kept the replication key');
  });

  it('a graceful stop hands the Lease over at once', async () => {
    const lead = await leader();
    const c = await startOp('hadron-operator-c');
    await eventually('c follows', 10_000, async () => ((await c.metricSum('hadron_operator_leadership_changes_total')) >= 1 ? true : undefined));
    const t0 = Date.now();
    await lead.kill('SIGTERM');
    ops.delete(lead.name);
    await eventually('c leads', 10_000, async () => ((await leaseHolder()) === 'hadron-operator-c' ? true : undefined));
    assert.ok(Date.now() - t0 < LEASE_SECONDS * 1000, 'released Lease taken over before it would have expired');
  });

  it('deleting the Stream removes its StatefulSet and Services but keeps the PVCs', async () => {
    await kubectl(cp, ['delete', '-n', NS, 'stream/events']);
    await eventually('StatefulSet and Services gone', 30_000, async () => {
      const sts = await get(RT.statefulsets, 'events');
      const svcs = (await api.request<{ items: Obj[] }>('GET', resourcePath(RT.services, NS), { query: { labelSelector: 'hadron.rs/stream=events' } })).items;
      return sts === undefined && svcs.length === 0 && (await get(RT.poddisruptionbudgets, 'events')) === undefined ? true : undefined;
    });
    const pvcs = (await api.request<{ items: Obj[] }>('GET', `/api/v1/namespaces/${NS}/persistentvolumeclaims`)).items;
    assert.equal(pvcs.length, 5);
  });
  it('spec.tls: the operator makes a CA and a server certificate Secret, mounts it, re-issues it on scale-up, and removes it with the Stream; secretName uses a given Secret', async () => {
    const manifest = (name: string, partitions: number, tls: string): string =>
      `apiVersion: ${API_VERSION}\nkind: Stream\nmetadata: {name: ${name}, namespace: ${NS}}\nspec: {partitions: ${partitions}, image: ${EXAMPLE_IMAGE}, pvcVolumeSize: 1Gi, tls: ${tls}}\n`;
    await kubectl(cp, ['apply', '-f', '-'], manifest('secure', 2, '{}') + '---\n' + manifest('secure-ext', 1, '{secretName: ext-cert}'));
    const data = (o: Obj, k: string): string => Buffer.from(o.data[k] as string, 'base64').toString();
    const server = await eventually('Secret secure-tls', 30_000, () => get(RT.secrets, 'secure-tls'));
    const caSecret = (await get(RT.secrets, 'secure-tls-ca'))!;
    assert.equal(server.type, 'kubernetes.io/tls');
    assert.equal(caSecret.type, 'kubernetes.io/tls');
    assert.equal(server.metadata.ownerReferences[0].kind, 'Stream');
    const caCert = new X509Certificate(data(caSecret, 'tls.crt'));
    assert.equal(data(server, 'ca.crt'), data(caSecret, 'tls.crt'));
    assert.equal(server.data['tls.key'] !== undefined && server.data['ca.key'] === undefined, true, 'the CA key is never in the mounted Secret');
    const cert = new X509Certificate(data(server, 'tls.crt'));
    assert.ok(cert.verify(caCert.publicKey));
    assert.equal(cert.checkHost(`secure-1.${NS}.svc.cluster.local`), `secure-1.${NS}.svc.cluster.local`);
    const sts = await eventually('StatefulSet secure', 30_000, () => get(RT.statefulsets, 'secure'));
    const pod = sts.spec.template.spec;
    assert.deepEqual(pod.volumes, [{ name: 'tls', secret: { secretName: 'secure-tls', defaultMode: 420 } }]);
    assert.ok(pod.containers[0].env.some((e: { name: string; value: string }) => e.name === 'HADRON_TLS_CERT_FILE' && e.value === '/etc/hadron/tls/tls.crt'));
    const ext = await eventually('StatefulSet secure-ext', 30_000, () => get(RT.statefulsets, 'secure-ext'));
    assert.equal(ext.spec.template.spec.volumes[0].secret.secretName, 'ext-cert');
    assert.equal(await get(RT.secrets, 'secure-ext-tls'), undefined);
    assert.equal(await get(RT.secrets, 'secure-ext-tls-ca'), undefined);

    await kubectl(cp, ['patch', '-n', NS, 'stream/secure', '--type=merge', '-p', '{"spec":{"partitions":3}}']);
    const reissued = await eventually('a server certificate naming secure-2', 30_000, async () => {
      const sec = await get(RT.secrets, 'secure-tls');
      return sec && new X509Certificate(data(sec, 'tls.crt')).checkHost(`secure-2.${NS}.svc.cluster.local`) ? sec : undefined;
    });
    assert.ok(new X509Certificate(data(reissued, 'tls.crt')).verify(caCert.publicKey), 're-issued by the same CA');
    assert.equal(new X509Certificate(data((await get(RT.secrets, 'secure-tls-ca'))!, 'tls.crt')).fingerprint256, caCert.fingerprint256, 'the CA is kept');

    await kubectl(cp, ['delete', '-n', NS, 'stream/secure', 'stream/secure-ext']);
    await eventually('TLS Secrets removed with the Stream', 30_000, async () =>
      (await get(RT.secrets, 'secure-tls')) === undefined && (await get(RT.secrets, 'secure-tls-ca')) === undefined ? true : undefined,
    );
  });
});
