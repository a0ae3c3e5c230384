/**
 * The `hadron-operator` container image, run for real with podman (read-only root filesystem,
 * UID 65532) against the real test control plane, with the chart's `hadron-operator`
 * ServiceAccount: it starts, answers /health, does its job (a Token gets its Secret) and stops
 * cleanly on SIGTERM. Without configuration it names what is missing and exits 2.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { RT, resourcePath, type KubeClient, type KubeObject } from '@hadron/k8s';
import { freePorts } from '@hadron/testing/ports';
import { Podman, buildImages, type Container, type ImageInfo } from '@hadron/testing/images';
import { startControlPlane, type ControlPlane } from '@hadron/testing/k8s/control-plane';
import { adminClient, eventually, installChart, K8S_TEST_TIMEOUT, kubectl, REPO_ROOT, serviceAccountKubeconfig, tempDir } from './test-support.js';

const NS = 'hadron-image';
const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('container image hadron-operator (podman, read-only, UID 65532, real API server)', { timeout: K8S_TEST_TIMEOUT }, () => {
  let image: ImageInfo;
  let podman: Podman;
  let cp: ControlPlane;
  let api: KubeClient;
  let dir: string;

  before(async () => {
    image = (await buildImages(['hadron-operator']))['hadron-operator']!;
    podman = await Podman.create();
    assert.deepEqual(await podman.load(path.join(REPO_ROOT, image.archive)), [`localhost/hadron-operator:${VERSION}`]);
    cp = await startControlPlane({});
    api = adminClient(cp);
    dir = tempDir('hadron-operator-image-');
  });
  after(async () => {
    await podman?.[Symbol.asyncDispose]();
    if (podman) assert.deepEqual(podman.mountsUnder(), [], 'nothing left mounted');
    api?.close();
    await cp?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('image config: user 65532, entrypoint /bin/hadron-operator, ports, labels', async () => {
    const { Config: c } = await podman.inspect(image.ref);
    assert.equal(c.User, '65532:65532');
    assert.deepEqual(c.Entrypoint, ['/bin/hadron-operator']);
    assert.deepEqual(Object.keys(c.ExposedPorts ?? {}).sort(), ['7000/tcp', '7001/tcp', '7002/tcp']);
    assert.equal(c.Labels?.['org.opencontainers.image.title'], 'hadron-operator');
    assert.equal(c.Labels?.['org.opencontainers.image.version'], VERSION);
  });

  it('without configuration: a clear error naming the variable, exit 2', async () => {
    const r = await podman.runToEnd({ image: image.ref });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^hadron-operator: invalid configuration: \w+ is required but not set$/m);
  });

  it('prints the CRDs (`hadron-operator crds`)', async () => {
    const r = await podman.runToEnd({ image: image.ref, args: ['crds'] });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /name: streams\.hadron\.rs/);
  });

  it('runs against the API server as the chart ServiceAccount: /health, a Token gets its Secret, SIGTERM exits 0', async () => {
    const chart = await installChart(cp, NS);
    const kubeconfig = await serviceAccountKubeconfig(cp, NS, 'hadron-operator', dir);
    fs.chmodSync(dir, 0o755);
    fs.chmodSync(kubeconfig, 0o644); // read by UID 65532 in the container
    const [client, webhooks, metrics] = (await freePorts(3)) as [number, number, number];
    const op: Container = podman.run({
      image: image.ref,
      user: '65532:65532',
      readOnly: true,
      mounts: [{ host: kubeconfig, container: '/etc/hadron/kubeconfig', readOnly: true }],
      env: {
        KUBECONFIG: '/etc/hadron/kubeconfig',
        HADRON_BIND_HOST: '127.0.0.1',
        HADRON_LOG_LEVEL: 'info',
        CLIENT_PORT: String(client),
        WEBHOOKS_PORT: String(webhooks),
        METRICS_PORT: String(metrics),
        NAMESPACE: NS,
        POD_NAME: 'hadron-operator-0',
        LEASE_DURATION_SECONDS: '15',
        LEASE_RENEW_SECONDS: '5',
        WEBHOOK_CERT: chart.tls.cert,
        WEBHOOK_KEY: chart.tls.key,
      },
    });
    await op.waitFor(/"operator started"/);
    const health = await fetch(`http://127.0.0.1:${metrics}/health`);
    assert.equal(health.status, 200);
    await kubectl(cp, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'hadron.rs/v1beta1', kind: 'Token', metadata: { name: 'from-image', namespace: NS }, spec: { all: true } }));
    const secret = await eventually('Secret from-image made by the operator in the container', 60_000, () =>
      api.getOrUndefined<KubeObject & { data: Record<string, string> }>(resourcePath(RT.secrets, NS, 'from-image')),
    );
    assert.ok(Buffer.from(secret.data.token ?? '', 'base64').toString().split('.').length === 3, 'the Secret holds a JWT');
    assert.deepEqual(await podman.stop(op), { code: 0, signal: null });
  });
});
