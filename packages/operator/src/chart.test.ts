/**
 * The Helm chart: `helm lint` clean in every mode, and what `helm template` renders (names,
 * labels, env, RBAC verbs, webhook TLS modes, monitors). The objects are installed into a real
 * API server by the other Kubernetes-tier tests (test-support `installChart`).
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CHART_DIR, K8S_TEST_TIMEOUT, REPO_ROOT, k8sBinDir, run } from './test-support.js';

type Obj = { kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('Helm chart charts/hadron-operator', { timeout: K8S_TEST_TIMEOUT }, () => {
  let helm: string;
  const template = async (...sets: string[]): Promise<Obj[]> => {
    const r = await run(helm, ['template', 'hadron', CHART_DIR, '--namespace', 'hadron', '--kube-version', '1.33.13', ...sets.flatMap((s) => ['--set', s])]);
    assert.equal(r.code, 0, r.stderr);
    return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).filter((o) => o !== null);
  };
  const find = (objs: Obj[], kind: string, name: string): Obj => {
    const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
    assert.ok(o, `${kind} ${name} not rendered`);
    return o;
  };

  before(async () => {
    helm = path.join(await k8sBinDir(), 'helm');
  });

  it('helm lint is clean with defaults, cert-manager and Prometheus monitors', async () => {
    for (const sets of [[], ['certManager.enabled=true', 'prometheusOperator.enabled=true', 'prometheusOperator.prometheusRule.enabled=true', 'grafanaDashboard.enabled=true'], ['vaw.caBundle=Zm9v']]) {
      const r = await run(helm, ['lint', '--strict', CHART_DIR, ...sets.flatMap((s) => ['--set', s])]);
      assert.equal(r.code, 0, `${sets.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /0 chart\(s\) failed/);
    }
  });

  it('renders the optional web console (hadron console of the CLI image) only when enabled', async () => {
    assert.equal((await template()).filter((o) => o.metadata.name === 'hadron-console').length, 0, 'off by default');
    const objs = await template('console.enabled=true');
    const d = find(objs, 'Deployment', 'hadron-console');
    const c = d.spec.template.spec.containers[0];
    assert.equal(c.image, 'localhost/hadron:0.1.0');
    assert.deepEqual(c.args, ['console', '--host', '0.0.0.0', '--port', '7900', '--url', 'http://events.hadron.svc.cluster.local:7000']);
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/', port: 'http' });
    assert.equal(d.spec.template.spec.automountServiceAccountToken, false, 'the console needs no Kubernetes credentials');
    assert.deepEqual(d.spec.selector.matchLabels, { app: 'hadron', 'hadron.rs/component': 'console' });
    const svc = find(objs, 'Service', 'hadron-console');
    assert.deepEqual([svc.spec.type, svc.spec.ports[0].port, svc.spec.ports[0].targetPort], ['ClusterIP', 7900, 'http']);
    assert.deepEqual(svc.spec.selector, { app: 'hadron', 'hadron.rs/component': 'console' });
    // The operator's Services must not select console pods.
    assert.equal(find(objs, 'Service', 'hadron-operator').spec.selector['hadron.rs/component'], 'operator');
    const tls = find(await template('console.enabled=true', 'console.stream=orders', 'console.caSecret=orders-tls', 'image.registry=ghcr.io/me'), 'Deployment', 'hadron-console');
    const tc = tls.spec.template.spec.containers[0];
    assert.equal(tc.image, 'ghcr.io/me/hadron:0.1.0');
    assert.deepEqual(tc.args.slice(5), ['--url', 'https://orders.hadron.svc.cluster.local:7000', '--ca', '/etc/hadron/console-ca/ca.crt']);
    assert.deepEqual(tls.spec.template.spec.volumes, [{ name: 'ca', secret: { secretName: 'orders-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }]);
    const r = await run(helm, ['lint', '--strict', CHART_DIR, '--set', 'console.enabled=true']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it('renders the operator Deployment with the reference env, probes and ports', async () => {
    const objs = await template();
    const d = find(objs, 'Deployment', 'hadron-operator');
    assert.equal(d.metadata.namespace, 'hadron');
    assert.equal(d.metadata.labels?.['hadron.rs/component'], 'operator');
    const pod = d.spec.template.spec;
    assert.equal(pod.serviceAccountName, 'hadron-operator');
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.priorityClassName, undefined);
    const prio = find(await template('pod.priorityClassName=system-cluster-critical'), 'Deployment', 'hadron-operator');
    assert.equal(prio.spec.template.spec.priorityClassName, 'system-cluster-critical');
    const c = pod.containers[0];
    // The image this project builds (npm run images), tag = appVersion; never the original's.
    assert.equal(c.image, 'localhost/hadron-operator:0.1.0');
    const env = Object.fromEntries(c.env.map((e: Obj) => [e.name, e.value ?? e.valueFrom]));
    assert.deepEqual(Object.keys(env).sort(), ['CLIENT_PORT', 'HADRON_LOG_LEVEL', 'LEASE_DURATION_SECONDS', 'LEASE_RENEW_SECONDS', 'METRICS_PORT', 'NAMESPACE', 'POD_NAME', 'WEBHOOKS_PORT', 'WEBHOOK_CERT', 'WEBHOOK_KEY']);
    assert.deepEqual([env.CLIENT_PORT, env.WEBHOOKS_PORT, env.METRICS_PORT, env.LEASE_DURATION_SECONDS, env.LEASE_RENEW_SECONDS], ['7000', '7001', '7002', '15', '5']);
    assert.deepEqual(env.WEBHOOK_CERT, { secretKeyRef: { name: 'hadron-webhooks', key: 'tls.crt' } });
    assert.deepEqual(c.livenessProbe.httpGet, { path: '/health', port: 'metrics' });
    assert.deepEqual(c.ports.map((p: Obj) => [p.name, p.containerPort]), [['client', 7000], ['webhooks', 7001], ['metrics', 7002]]);
    for (const [name, port] of [['hadron-operator', 7000], ['hadron-operator-webhooks', 7001], ['hadron-operator-metrics', 7002]] as const) {
      const s = find(objs, 'Service', name);
      assert.equal(s.spec.ports[0].port, port);
      assert.deepEqual(s.spec.selector, { app: 'hadron', 'hadron.rs/component': 'operator' });
    }
    find(objs, 'ServiceAccount', 'hadron-operator');
    find(objs, 'ServiceAccount', 'hadron-stream');
  });

  it('grants only the verbs the code uses', async () => {
    const objs = await template();
    const rules = (name: string): string[] => find(objs, 'Role', name).rules.flatMap((r: Obj) => r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${res}:${v}${r.resourceNames ? `(${r.resourceNames.join()})` : ''}`))).sort();
    const op = rules('hadron-operator');
    for (const denied of ['*', 'secrets:get', 'secrets:update', 'secrets:patch', 'statefulsets:update', 'pods:list', 'leases:delete']) assert.ok(!op.some((r) => r.startsWith(denied)), `hadron-operator has ${denied}`);
    assert.ok(op.includes('leases:update(hadron-operator)'));
    assert.deepEqual(rules('hadron-stream'), ['pipelines:list', 'pipelines:watch', 'secrets:list', 'secrets:watch', 'streams:list', 'streams:watch', 'tokens:list', 'tokens:watch', 'triggers:list', 'triggers:watch']);
    assert.equal(find(objs, 'RoleBinding', 'hadron-stream').subjects[0].name, 'hadron-stream');
  });

  it('webhook TLS: generated CA by default, cert-manager when enabled, your CA when given', async () => {
    const gen = await template();
    const vwc = find(gen, 'ValidatingWebhookConfiguration', 'validations-hadron-rs');
    assert.deepEqual(vwc.webhooks.map((w: Obj) => w.name), ['pipelines.validations.hadron.rs', 'streams.validations.hadron.rs', 'tokens.validations.hadron.rs', 'triggers.validations.hadron.rs']);
    for (const w of vwc.webhooks) {
      assert.deepEqual(w.admissionReviewVersions, ['v1']);
      assert.equal(w.sideEffects, 'None');
      assert.deepEqual(w.rules[0].operations, ['CREATE', 'UPDATE']);
      assert.equal(w.clientConfig.service.name, 'hadron-operator-webhooks');
      assert.match(w.clientConfig.service.path, /^\/k8s\/admissions\/vaw\/(pipelines|streams|tokens|triggers)$/);
      // kubectl scale and autoscalers change partitions through streams/scale: the partition-loss check sees those too.
      assert.deepEqual(w.rules[0].resources, w.name.startsWith('streams.') ? ['streams', 'streams/scale'] : [w.name.split('.')[0]]);
    }
    const secret = find(gen, 'Secret', 'hadron-webhooks');
    assert.equal(vwc.webhooks[0].clientConfig.caBundle, secret.data['ca.crt']);
    assert.equal(secret.metadata.labels?.['hadron.rs/controlled-by'], undefined, 'not mistaken for a token Secret');
    assert.equal(gen.filter((o) => o.kind === 'Certificate').length, 0);

    const cm = await template('certManager.enabled=true');
    assert.equal(cm.filter((o) => o.kind === 'Secret').length, 0);
    assert.equal(find(cm, 'Certificate', 'hadron-webhooks').spec.issuerRef.name, 'hadron-issuer');
    find(cm, 'Issuer', 'hadron-issuer');
    const cmVwc = find(cm, 'ValidatingWebhookConfiguration', 'validations-hadron-rs');
    assert.equal(cmVwc.metadata.annotations?.['cert-manager.io/inject-ca-from'], 'hadron/hadron-webhooks');
    assert.equal(cmVwc.webhooks[0].clientConfig.caBundle, undefined);

    const own = await template('vaw.caBundle=Zm9v');
    assert.equal(own.filter((o) => o.kind === 'Secret').length, 0);
    assert.equal(find(own, 'ValidatingWebhookConfiguration', 'validations-hadron-rs').webhooks[2].clientConfig.caBundle, 'Zm9v');
  });

  it('monitors only when prometheusOperator.enabled', async () => {
    assert.equal((await template()).filter((o) => /Monitor$/.test(o.kind)).length, 0);
    const objs = await template('prometheusOperator.enabled=true');
    assert.deepEqual(find(objs, 'ServiceMonitor', 'hadron-operator').spec.selector.matchLabels, { 'hadron.rs/component': 'hadron-operator-metrics-service' });
    assert.equal(find(objs, 'PodMonitor', 'hadron-stream').spec.podMetricsEndpoints[0].port, 'metrics-port');
    assert.equal(find(objs, 'Service', 'hadron-operator-metrics').metadata.labels?.['hadron.rs/component'], 'hadron-operator-metrics-service');
  });

  it('default images are the ones this project builds (npm run images), tag = appVersion = package version', async () => {
    const version = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    assert.match(fs.readFileSync(path.join(CHART_DIR, 'Chart.yaml'), 'utf8'), new RegExp(`^appVersion: "${version}"$`, 'm'));
    const image = async (...sets: string[]): Promise<string> => find(await template(...sets), 'Deployment', 'hadron-operator').spec.template.spec.containers[0].image;
    assert.equal(await image(), `localhost/hadron-operator:${version}`);
    assert.equal(await image('image.registry=ghcr.io/you/'), `ghcr.io/you/hadron-operator:${version}`);
    assert.equal(await image('image.registry=', 'container.image.repo=registry.example/x/op', 'container.image.tag=t1'), 'registry.example/x/op:t1');
    // The example Stream runs the stream image of the same build.
    assert.match(fs.readFileSync(path.join(REPO_ROOT, 'examples', 'full.yaml'), 'utf8'), new RegExp(`^  image: localhost/hadron-stream:${version}$`, 'm'));
    // Nothing in the chart or the examples points at the original project's registry.
    for (const dir of [CHART_DIR, path.join(REPO_ROOT, 'examples')]) {
      for (const f of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
        if (f.isFile()) assert.doesNotMatch(fs.readFileSync(path.join(f.parentPath, f.name), 'utf8'), /ghcr\.io\/hadron-project/, path.join(f.parentPath, f.name));
      }
    }
  });

  it('every value in values.yaml is documented in the chart README', () => {
    const values = fs.readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8');
    const readme = fs.readFileSync(path.join(CHART_DIR, 'README.md'), 'utf8');
    const leaves: string[] = [];
    const walk = (o: unknown, prefix: string): void => {
      if (o && typeof o === 'object' && !Array.isArray(o) && Object.keys(o).length > 0) for (const [k, v] of Object.entries(o)) walk(v, prefix ? `${prefix}.${k}` : k);
      else leaves.push(prefix);
    };
    walk(parseAllDocuments(values)[0]!.toJS(), '');
    const missing = leaves.filter((k) => !readme.includes(`\`${k}\``));
    assert.deepEqual(missing, [], 'undocumented values');
  });
});
