/**
 * The Kubernetes control-plane source of the partition server (reference §2.10), end to end: an
 * operator makes the token Secrets, and a `hadron-stream` process started with a pod's env (no
 * HADRON_MANIFESTS, KUBECONFIG of the chart's `hadron-stream` ServiceAccount) watches the API.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { HadronError } from '@hadron/core';
import { RT, resourcePath, type KubeClient, type KubeObject } from '@hadron/k8s';
import { freePorts } from '@hadron/testing/ports';
import { RawClient, testEvent } from '@hadron/testing/raw-client';
import { startControlPlane, type ControlPlane } from '@hadron/testing/k8s/control-plane';
import { adminClient, eventually, installChart, K8S_TEST_TIMEOUT, kubectl, OperatorProcess, serviceAccountKubeconfig, STREAM_BIN, tempDir } from './test-support.js';

const NS = 'hadron-pod';

describe('partition server reading its control plane from the Kubernetes API', { timeout: K8S_TEST_TIMEOUT }, () => {
  let cp: ControlPlane;
  let api: KubeClient;
  let dir: string;
  let op: OperatorProcess;
  let server: ChildProcess;
  const output: string[] = [];
  let url = '';
  let metricsUrl = '';

  const tokenOf = async (name: string): Promise<string> => {
    const s = await eventually(`Secret ${name}`, 30_000, () => api.getOrUndefined<KubeObject & { data: Record<string, string> }>(resourcePath(RT.secrets, NS, name)));
    return Buffer.from(s.data.token!, 'base64').toString();
  };
  /** Publishes one event; resolves with the error code, or 'OK'. */
  const publish = async (token: string, type = 'test.event'): Promise<string> => {
    const c = new RawClient(url, token);
    try {
      await c.publish([testEvent(Date.now(), { type })]);
      return 'OK';
    } catch (err) {
      return err instanceof HadronError ? err.code : String(err);
    } finally {
      await c.close();
    }
  };

  before(async () => {
    cp = await startControlPlane({});
    api = adminClient(cp);
    dir = tempDir('hadron-pod-test-');
    const chart = await installChart(cp, NS);
    op = await OperatorProcess.start({ name: 'hadron-operator-0', namespace: NS, kubeconfig: await serviceAccountKubeconfig(cp, NS, 'hadron-operator', dir), tls: chart.tls });
    await kubectl(
      cp,
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          { apiVersion: 'hadron.rs/v1beta1', kind: 'Stream', metadata: { name: 'events', namespace: NS }, spec: { partitions: 1, image: 'img', pvcVolumeSize: '1Gi' } },
          { apiVersion: 'hadron.rs/v1beta1', kind: 'Token', metadata: { name: 'writer', namespace: NS }, spec: { streams: { pub: ['events'], sub: ['events'] } } },
        ],
      }),
    );
    await tokenOf('writer');
    const [client, metrics] = (await freePorts(2)) as [number, number];
    url = `http://127.0.0.1:${client}`;
    metricsUrl = `http://127.0.0.1:${metrics}`;
    // The env the operator's StatefulSet gives pod events-0, with loopback ports.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      RUST_LOG: 'error,hadron_stream=info,hadron_core=info',
      CLIENT_PORT: String(client),
      SERVER_PORT: '0',
      METRICS_PORT: String(metrics),
      NAMESPACE: NS,
      STREAM: 'events',
      STATEFULSET: 'events',
      POD_NAME: 'events-0',
      STORAGE_DATA_PATH: path.join(dir, 'data'),
      RETENTION_POLICY_STRATEGY: 'time',
      RETENTION_POLICY_RETENTION_SECONDS: '604800',
      HADRON_BIND_HOST: '127.0.0.1',
      HADRON_ADVERTISE_TEMPLATE: '127.0.0.1:{port}',
      KUBECONFIG: await serviceAccountKubeconfig(cp, NS, 'hadron-stream', dir),
    };
    server = spawn(process.execPath, [STREAM_BIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
    server.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
    await eventually('partition server started', 30_000, () => {
      if (server.exitCode !== null) throw new Error(`hadron-stream exited ${server.exitCode}: ${output.join('')}`);
      return output.join('').includes('"partition server started"') ? true : undefined;
    });
  });

  after(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGKILL');
      await new Promise((r) => server.once('exit', r));
    }
    await op?.kill('SIGKILL');
    api?.close();
    await cp?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves the token from the operator-made Secret', async () => {
    const token = await tokenOf('writer');
    assert.equal(await eventually('publish accepted', 10_000, async () => ((await publish(token)) === 'OK' ? 'OK' : undefined)), 'OK');
    assert.equal(await publish('not-a-jwt'), 'UNAUTHENTICATED');
    const ready = await fetch(`${metricsUrl}/ready`);
    assert.equal(ready.status, 200, 'the Stream was read from the API');
  });

  it('a Token created with kubectl works within seconds; deleting it revokes within seconds', async () => {
    await kubectl(cp, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'hadron.rs/v1beta1', kind: 'Token', metadata: { name: 'late', namespace: NS }, spec: { all: true } }));
    const token = await tokenOf('late');
    let t0 = Date.now();
    await eventually('new token accepted', 10_000, async () => ((await publish(token)) === 'OK' ? true : undefined));
    const acceptedMs = Date.now() - t0;
    await kubectl(cp, ['delete', '-n', NS, 'token/late']);
    t0 = Date.now();
    const code = await eventually('token rejected after deletion', 10_000, async () => {
      const c = await publish(token);
      return c === 'OK' ? undefined : c;
    });
    const revokedMs = Date.now() - t0;
    assert.equal(code, 'UNAUTHENTICATED');
    assert.ok(acceptedMs < 5_000 && revokedMs < 5_000, `accepted after ${acceptedMs} ms, revoked after ${revokedMs} ms`);
    // The other token is unaffected.
    assert.equal(await publish(await tokenOf('writer')), 'OK');
  });

  it('picks up a Pipeline created with kubectl and delivers its stage', async () => {
    const token = await tokenOf('writer');
    const c = new RawClient(url, token);
    try {
      await assert.rejects(c.pipelineStatus('flow'), (err: unknown) => err instanceof HadronError && err.code === 'NOT_FOUND');
      await kubectl(
        cp,
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'hadron.rs/v1beta1',
          kind: 'Pipeline',
          metadata: { name: 'flow', namespace: NS },
          spec: { sourceStream: 'events', triggers: ['order.created'], maxParallel: 5, startPoint: { location: 'beginning' }, stages: [{ name: 'first' }] },
        }),
      );
      const st = await eventually('pipeline running on the partition', 10_000, async () => c.pipelineStatus('flow'));
      assert.equal(st.maxParallel, 5);
      await c.publish([testEvent(1, { type: 'order.created', id: 'order-1' })]);
      const stage = c.pipelineStage('flow', 'first');
      try {
        const d = await stage.next();
        assert.equal(d.stage, 'first');
        assert.equal(d.root.id, 'order-1');
      } finally {
        stage.close();
      }
    } finally {
      await c.close();
    }
  });

  it('the Stream, Pipeline and Token watches had no errors', async () => {
    const text = await (await fetch(`${metricsUrl}/metrics`)).text();
    for (const kind of ['streams', 'pipelines', 'tokens', 'secrets']) {
      const m = new RegExp(`^hadron_${kind}_watcher_errors(\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
      assert.ok(m, `hadron_${kind}_watcher_errors missing`);
      assert.equal(Number(m[2]), 0);
    }
  });
});
