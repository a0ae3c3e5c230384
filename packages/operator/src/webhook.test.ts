/**
 * The validating admission webhook through a real kube-apiserver: the chart renders the
 * ValidatingWebhookConfiguration and generates the CA and serving certificate (certManager
 * disabled); the operator serves with that certificate; kubectl requests are admitted or
 * rejected by the API server calling it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import { freePorts } from '@hadron/testing/ports';
import { startControlPlane, type ControlPlane } from '@hadron/testing/k8s/control-plane';
import { exampleManifests } from './fixtures.js';
import { applyExample, installChart, K8S_TEST_TIMEOUT, kubectl, OperatorProcess, serviceAccountKubeconfig, tempDir } from './test-support.js';

const NS = 'hadron-vaw';

const pipeline = (name: string, stages: Array<{ name: string; dependencies?: string[]; after?: string[] }>, extra: { annotations?: Record<string, string>; maxParallel?: number; triggers?: string[] } = {}): string =>
  JSON.stringify({
    apiVersion: 'hadron.rs/v1beta1',
    kind: 'Pipeline',
    metadata: { name, namespace: NS, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: { sourceStream: 'events', triggers: extra.triggers ?? [], maxParallel: extra.maxParallel ?? 10, stages },
  });

describe('admission webhook through the API server', { timeout: K8S_TEST_TIMEOUT }, () => {
  let cp: ControlPlane;
  let dir: string;
  let op: OperatorProcess;
  let ca: string;
  let servingCert: string;

  /** kubectl apply; resolves with the webhook's denial message, or undefined when admitted. */
  const apply = async (doc: string): Promise<string | undefined> => {
    const r = await cp.kubectl(['apply', '-f', '-'], doc);
    if (r.code === 0) return undefined;
    const m = /denied the request: (.*)$/s.exec(r.stderr.trim());
    assert.ok(m, `kubectl failed without a webhook denial: ${r.stderr}`);
    return m[1]!.trim();
  };

  before(async () => {
    cp = await startControlPlane({});
    dir = tempDir('hadron-vaw-test-');
    const [port] = (await freePorts(1)) as [number];
    const chart = await installChart(cp, NS, { webhooks: true, sets: [`vaw.url=https://127.0.0.1:${port}`, 'vaw.selfSigned.ipAddresses={127.0.0.1}'] });
    ca = chart.tls.ca;
    servingCert = chart.tls.cert;
    const kubeconfig = await serviceAccountKubeconfig(cp, NS, 'hadron-operator', dir);
    op = await OperatorProcess.start({ name: 'hadron-operator-0', namespace: NS, kubeconfig, tls: chart.tls, webhooksPort: port });
  });

  after(async () => {
    await op?.kill('SIGKILL');
    await cp?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the chart generated a CA and a serving certificate for the webhook Service', () => {
    const cert = new X509Certificate(servingCert);
    const caCert = new X509Certificate(ca);
    assert.ok(caCert.ca);
    assert.ok(cert.verify(caCert.publicKey), 'serving certificate signed by the generated CA');
    const sans = cert.subjectAltName ?? '';
    for (const dns of ['hadron-operator-webhooks', `hadron-operator-webhooks.${NS}`, `hadron-operator-webhooks.${NS}.svc`, `hadron-operator-webhooks.${NS}.svc.cluster.local`]) {
      assert.ok(sans.includes(`DNS:${dns}`), `SAN ${dns} missing in ${sans}`);
    }
    assert.ok(sans.includes('IP Address:127.0.0.1'), sans);
  });

  it('admits the reference example', async () => {
    const r = await applyExample(cp, NS, exampleManifests(NS));
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await op.metricSum('hadron_operator_admission_reviews_total')) >= 5);
  });

  it('rejects a Pipeline with a cycle, with the exact messages', async () => {
    const msg = await apply(pipeline('p-cycle', [{ name: 'a' }, { name: 'b', dependencies: ['c'] }, { name: 'c', after: ['b'] }]));
    assert.equal(msg, "stage 'b' of pipeline p-cycle creates a cycle and pipelines must be acyclic; stage 'c' of pipeline p-cycle creates a cycle and pipelines must be acyclic");
    const self = await apply(pipeline('p-self', [{ name: 'a', dependencies: ['a'] }]));
    assert.equal(
      self,
      "stage 'a' of pipeline p-self creates a cycle and pipelines must be acyclic; pipeline p-self has no entrypoint stage with no `dependencies` and no `after` stages",
    );
  });

  it('rejects a missing dependency, a missing `after`, duplicate stages and maxParallel 0', async () => {
    assert.equal(
      await apply(pipeline('p-missing', [{ name: 'a' }, { name: 'b', dependencies: ['x'], after: ['y'] }])),
      "stage 'b' depends upon stage 'x' which does not exist in pipeline p-missing; stage 'b' must execute after stage 'y' which does not exist in pipeline p-missing",
    );
    assert.equal(await apply(pipeline('p-dup', [{ name: 'a' }, { name: 'a' }])), "stage 'a' of pipeline p-dup is defined more than once");
    assert.equal(await apply(pipeline('p-zero', [{ name: 'a' }], { maxParallel: 0 })), 'max_parallel of pipeline p-zero must be > 0');
    assert.equal(
      await apply(pipeline('p-trig', [{ name: 'a' }], { triggers: ['x', 'x'] })),
      "trigger 'x' of pipeline 'p-trig' is a duplicate and must be removed",
    );
  });

  it('rejects stage removal on UPDATE unless the destructive-update annotation is set', async () => {
    assert.equal(await apply(pipeline('p-upd', [{ name: 'a' }, { name: 'b', after: ['a'] }, { name: 'c', after: ['a'] }])), undefined);
    assert.equal(
      await apply(pipeline('p-upd', [{ name: 'a' }])),
      'pipeline p-upd would incur data loss if stages ["b", "c"] are removed, set annotation hadron.rs/allow-destructive-update to allow this change',
    );
    assert.equal(await apply(pipeline('p-upd', [{ name: 'a' }], { annotations: { 'hadron.rs/allow-destructive-update': '' } })), undefined);
    const stages = await kubectl(cp, ['get', '-n', NS, 'pipeline/p-upd', '-o', 'jsonpath={.spec.stages[*].name}']);
    assert.equal(stages, 'a');
  });

  it('validates Streams (name, immutable volume settings) and Tokens', async () => {
    const stream = (name: string, size: string): string =>
      JSON.stringify({ apiVersion: 'hadron.rs/v1beta1', kind: 'Stream', metadata: { name, namespace: NS }, spec: { partitions: 1, image: 'img', pvcVolumeSize: size } });
    assert.match((await apply(stream('1-events', '1Gi')))!, /^stream name '1-events' must be a DNS-1035 label/);
    assert.equal(await apply(stream('s1', '1Gi')), undefined);
    assert.equal(
      await apply(stream('s1', '2Gi')),
      "spec.pvcVolumeSize of stream s1 cannot be changed (the StatefulSet's volume claim template is immutable); delete and recreate the Stream to change it",
    );
    // A DNS subdomain passes the API server but is not a usable Token name (an RFC 1123 label).
    const token = JSON.stringify({ apiVersion: 'hadron.rs/v1beta1', kind: 'Token', metadata: { name: 'a.b', namespace: NS }, spec: { all: true } });
    assert.equal(await apply(token), "Token a.b: metadata.name 'a.b' must be a RFC 1123 label (lower case alphanumerics and '-', at most 63 characters)");
  });

  it('answers AdmissionReview directly: uid echoed, malformed requests refused', async () => {
    const post = (path: string, body: unknown): Promise<{ status: number; json: { apiVersion: string; response: { uid: string; allowed: boolean; status?: { message: string } } } }> =>
      new Promise((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port: op.ports.webhooks, path, method: 'POST', ca, servername: undefined, headers: { 'content-type': 'application/json' } }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as never }));
        });
        req.once('error', reject);
        req.end(JSON.stringify(body));
      });
    const ok = await post('/k8s/admissions/vaw/tokens', {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: 'u-1', operation: 'CREATE', object: { apiVersion: 'hadron.rs/v1beta1', kind: 'Token', metadata: { name: 't' }, spec: { all: true } } },
    });
    assert.deepEqual([ok.status, ok.json.apiVersion, ok.json.response.uid, ok.json.response.allowed], [200, 'admission.k8s.io/v1', 'u-1', true]);
    const bad = await post('/k8s/admissions/vaw/pipelines', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    assert.equal(bad.json.response.allowed, false);
    assert.equal(bad.json.response.status?.message, 'malformed webhook request received, no `request` field');
    const noObj = await post('/k8s/admissions/vaw/pipelines', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-2', operation: 'CREATE' } });
    assert.deepEqual([noObj.json.response.uid, noObj.json.response.allowed], ['u-2', false]);
    assert.equal(noObj.json.response.status?.message, 'no pipeline object found in the `object` field, can not validate');
    const del = await post('/k8s/admissions/vaw/pipelines', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-3', operation: 'DELETE' } });
    assert.deepEqual([del.json.response.uid, del.json.response.allowed], ['u-3', true]);
  });
});
