/**
 * Scale-down safety through a real kube-apiserver (issue 10): the API server calls the operator's
 * validating webhook on a Stream UPDATE that lowers `spec.partitions`; the operator asks the live
 * partitions — real `hadron-stream` processes on loopback reading their control plane from the
 * API — with a short-lived JWT it signs itself. Undelivered events of a durable group, or a
 * partition that cannot be asked, refuse the change; the annotation lets it through, and the
 * controller records what was left behind in the Stream's status.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { RT, resourcePath, type KubeClient, type KubeObject } from '@hadron/k8s';
import { freePortRange, RawClient, testEvent } from '@hadron/testing';
import { freePorts } from '@hadron/testing/ports';
import { startControlPlane, type ControlPlane } from '@hadron/testing/k8s/control-plane';
import { adminClient, eventually, installChart, K8S_TEST_TIMEOUT, kubectl, OperatorProcess, serviceAccountKubeconfig, STREAM_BIN, tempDir } from './test-support.js';

const NS = 'hadron-loss';

const stream = (partitions: number, annotations?: Record<string, string>): string =>
  JSON.stringify({
    apiVersion: 'hadron.rs/v1beta1',
    kind: 'Stream',
    metadata: { name: 'events', namespace: NS, ...(annotations ? { annotations } : {}) },
    // replicationFactor 1: this test is about what removed partitions hold, not their copies (no key needed).
    spec: { partitions, replicationFactor: 1, image: 'img', pvcVolumeSize: '1Gi' },
  });

describe('webhook: removing partitions that hold undelivered events', { timeout: K8S_TEST_TIMEOUT }, () => {
  let cp: ControlPlane;
  let api: KubeClient;
  let dir: string;
  let op: OperatorProcess;
  let base: number;
  let streamKubeconfig: string;
  const servers = new Map<number, { proc: ChildProcess; output: string[] }>();

  /** kubectl apply; resolves with the webhook's denial message, or undefined when admitted. */
  const apply = async (doc: string): Promise<string | undefined> => {
    const r = await cp.kubectl(['apply', '-f', '-'], doc);
    if (r.code === 0) return undefined;
    const m = /denied the request: (.*)$/s.exec(r.stderr.trim());
    assert.ok(m, `kubectl failed without a webhook denial: ${r.stderr}`);
    return m[1]!.trim();
  };

  /** Partition n as a pod of the StatefulSet would run it, on loopback port base + n. */
  const startPartition = async (n: number): Promise<void> => {
    const [metrics] = (await freePorts(1)) as [number];
    const output: string[] = [];
    const proc = spawn(process.execPath, [STREAM_BIN], {
      env: {
        PATH: process.env.PATH,
        CLIENT_PORT: String(base + n),
        SERVER_PORT: '0',
        METRICS_PORT: String(metrics),
        NAMESPACE: NS,
        STREAM: 'events',
        STATEFULSET: 'events',
        POD_NAME: `events-${n}`,
        STORAGE_DATA_PATH: path.join(dir, 'data'),
        HADRON_BIND_HOST: '127.0.0.1',
        HADRON_ADVERTISE_TEMPLATE: '127.0.0.1:{port}',
        HADRON_PARTITION_PORT_BASE: String(base),
        KUBECONFIG: streamKubeconfig,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
    proc.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
    servers.set(n, { proc, output });
    await eventually(`partition ${n} started`, 30_000, () => {
      if (proc.exitCode !== null) throw new Error(`hadron-stream exited ${proc.exitCode}: ${output.join('')}`);
      return output.join('').includes('"partition server started"') ? true : undefined;
    });
  };
  const stopPartition = async (n: number): Promise<void> => {
    const s = servers.get(n);
    if (!s || s.proc.exitCode !== null) return;
    const exited = new Promise((r) => s.proc.once('exit', r));
    s.proc.kill('SIGTERM');
    await exited;
  };
  const tokenOf = async (name: string): Promise<string> => {
    const s = await eventually(`Secret ${name}`, 30_000, () => api.getOrUndefined<KubeObject & { data: Record<string, string> }>(resourcePath(RT.secrets, NS, name)));
    return Buffer.from(s.data.token!, 'base64').toString();
  };

  before(async () => {
    cp = await startControlPlane({});
    api = adminClient(cp);
    dir = tempDir('hadron-loss-test-');
    base = await freePortRange(2);
    const [port] = (await freePorts(1)) as [number];
    const chart = await installChart(cp, NS, { webhooks: true, sets: [`vaw.url=https://127.0.0.1:${port}`, 'vaw.selfSigned.ipAddresses={127.0.0.1}'] });
    op = await OperatorProcess.start({
      name: 'hadron-operator-0',
      namespace: NS,
      kubeconfig: await serviceAccountKubeconfig(cp, NS, 'hadron-operator', dir),
      tls: chart.tls,
      webhooksPort: port,
      env: { HADRON_PARTITION_URL_TEMPLATE: 'http://127.0.0.1:{port}', HADRON_PARTITION_PORT_BASE: String(base) },
    });
    streamKubeconfig = await serviceAccountKubeconfig(cp, NS, 'hadron-stream', dir);
  });

  after(async () => {
    for (const n of servers.keys()) {
      const s = servers.get(n)!;
      if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
    }
    await op?.kill('SIGKILL');
    api?.close();
    await cp?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses, without a Token that may ask the partitions, naming why', async () => {
    assert.equal(await apply(stream(2)), undefined);
    await startPartition(0);
    await startPartition(1);
    const msg = await apply(stream(1));
    assert.equal(
      msg,
      `scaling stream events from 2 to 1 partitions would remove partitions 1..1, but it cannot be known what they hold: partition 1 could not be asked (no Token in namespace ${NS} may subscribe to stream events, so the operator cannot ask it); consume them first, or set annotation hadron.rs/allow-partition-loss: "true" on the Stream to remove them anyway`,
    );
  });

  it('refuses while a durable group has unacked events on the removed partition, naming partition, group and count', async () => {
    await kubectl(cp, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'hadron.rs/v1beta1', kind: 'Token', metadata: { name: 'full', namespace: NS }, spec: { all: true } }));
    const token = await tokenOf('full');
    const p1 = new RawClient(`http://127.0.0.1:${base + 1}`, token);
    try {
      await eventually('publish to partition 1', 15_000, async () => {
        try {
          return await p1.publish([testEvent(1), testEvent(2), testEvent(3)]);
        } catch {
          return undefined; // the partition has not seen the Token's Secret yet
        }
      });
      // A durable group that has received the events but acked none of them.
      const sub = p1.subscribe({ group: 'audit', durable: true, start: { beginning: true } });
      const d = await sub.next();
      assert.equal(d.events.length, 3);
      sub.close();
    } finally {
      await p1.channel.close();
    }
    const msg = await apply(stream(1));
    assert.equal(
      msg,
      'scaling stream events from 2 to 1 partitions would remove partitions 1..1, but they hold events not yet delivered: partition 1: group audit (3 unacked event(s)); consume them first, or set annotation hadron.rs/allow-partition-loss: "true" on the Stream to remove them anyway',
    );
    const spec = await kubectl(cp, ['get', '-n', NS, 'stream/events', '-o', 'jsonpath={.spec.partitions}']);
    assert.equal(spec, '2');
  });

  it('refuses when a removed partition cannot be asked', async () => {
    await stopPartition(1);
    const msg = await apply(stream(1));
    assert.match(msg ?? '', /^scaling stream events from 2 to 1 partitions would remove partitions 1\.\.1, but it cannot be known what they hold: partition 1 could not be asked \(.*ECONNREFUSED.*\); consume them first/);
  });

  it('admits with hadron.rs/allow-partition-loss; the Stream status lists what was left behind', async () => {
    await startPartition(1);
    assert.equal(await apply(stream(1, { 'hadron.rs/allow-partition-loss': 'true' })), undefined);
    const st = await eventually('status.partitionLoss', 30_000, async () => {
      const s = await api.getOrUndefined<KubeObject & { status?: { partitionLoss?: unknown; conditions?: Array<{ type: string; message: string }> } }>(resourcePath(RT.streams, NS, 'events'));
      return s?.status?.partitionLoss ? s.status : undefined;
    });
    assert.deepEqual(st.partitionLoss && { ...(st.partitionLoss as Record<string, unknown>), time: undefined }, {
      time: undefined,
      fromPartitions: 2,
      toPartitions: 1,
      leftBehind: [{ partition: 1, kind: 'group', name: 'audit', unacked: 3 }],
      unreachable: [],
    });
    const condition = await eventually('the PartitionsRemoved condition', 30_000, async () => {
      const s = await api.getOrUndefined<KubeObject & { status?: { conditions?: Array<{ type: string; status: string; message: string }> } }>(resourcePath(RT.streams, NS, 'events'));
      return s?.status?.conditions?.find((c) => c.type === 'PartitionsRemoved');
    });
    assert.equal(condition.status, 'True');
    assert.match(condition.message, /^scaled from 2 to 1 partitions at \S+; left behind \(kept on their volumes\): partition 1: group audit \(3 unacked event\(s\)\)$/);
    const replicas = await kubectl(cp, ['get', '-n', NS, 'statefulset/events', '-o', 'jsonpath={.spec.replicas}']);
    assert.equal(replicas, '1');
  });
});
