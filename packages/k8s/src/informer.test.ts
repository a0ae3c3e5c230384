/**
 * The informer against a real kube-apiserver: list + watch, resume from the last resourceVersion
 * when the server ends a watch, relist on 410 Gone, errors counted with capped backoff and
 * recovery once the resource appears.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { silentLogger } from '@hadron/core';
import { startControlPlane, type ControlPlane } from '@hadron/testing/k8s/control-plane';
import { KubeClient, resourcePath } from './client.js';
import { Informer } from './informer.js';
import { RT, type KubeObject, type ResourceType } from './types.js';

const NS = 'informer';
const CONFIGMAPS: ResourceType = { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true };

async function until<T>(what: string, ms: number, f: () => T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

describe('Informer on a real API server', { timeout: 60 * 60_000 }, () => {
  let cp: ControlPlane;
  let api: KubeClient;
  const cm = (name: string, v: string): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: NS, labels: { app: 'test' } }, data: { v } });

  before(async () => {
    cp = await startControlPlane({});
    api = new KubeClient({ server: cp.server, ca: cp.caPem, token: cp.adminToken });
    await api.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    await api.create(resourcePath(CONFIGMAPS, NS), cm('pre-1', '1'));
    await api.create(resourcePath(CONFIGMAPS, NS), cm('pre-2', '1'));
  });
  after(async () => {
    api?.close();
    await cp?.stop();
  });

  it('lists, then watches adds, updates and deletes; resumes after server-side watch timeouts', async () => {
    const inf = new Informer({ client: api, resource: CONFIGMAPS, namespace: NS, labelSelector: 'app=test', logger: silentLogger, watchTimeoutSeconds: 1 });
    const events: string[] = [];
    inf.on('add', (o) => events.push(`add ${o.metadata.name}`)).on('update', (_a, o) => events.push(`update ${o.metadata.name}`)).on('delete', (o) => events.push(`delete ${o.metadata.name}`));
    try {
      inf.start();
      await inf.synced();
      assert.deepEqual(inf.list().map((o) => o.metadata.name).sort(), ['pre-1', 'pre-2']);
      await api.create(resourcePath(CONFIGMAPS, NS), cm('new', '1'));
      await until('add new', 10_000, () => (events.includes('add new') ? true : undefined));
      // Let at least two server-side watch timeouts pass; the informer resumes each time.
      await until('watch resumed twice', 10_000, () => (inf.stats.watches >= 3 ? true : undefined));
      await api.mergePatch(resourcePath(CONFIGMAPS, NS, 'new'), { data: { v: '2' } });
      await until('update new', 10_000, () => (events.includes('update new') ? true : undefined));
      await api.delete(resourcePath(CONFIGMAPS, NS, 'pre-1'));
      await until('delete pre-1', 10_000, () => (events.includes('delete pre-1') ? true : undefined));
      assert.equal((inf.get('new') as KubeObject & { data: { v: string } }).data.v, '2');
      assert.deepEqual(inf.list().map((o) => o.metadata.name).sort(), ['new', 'pre-2']);
      assert.equal(inf.stats.lists, 1, 'resumed from resourceVersion, never relisted');
      assert.equal(events.filter((e) => e === 'add pre-2').length, 1, 'no duplicate events after resuming');
      assert.equal(inf.stats.errors, 0);
    } finally {
      await inf.close();
    }
    assert.equal(inf.state, 'closed');
  });

  it('relists on 410 Gone when the resume point is too old', async () => {
    let errors = 0;
    const inf = new Informer({ client: api, resource: CONFIGMAPS, namespace: NS, labelSelector: 'app=test', logger: silentLogger, resumeFrom: '1', onError: () => errors++ });
    try {
      inf.start();
      await until('relisted', 10_000, () => (inf.stats.lists === 1 && inf.state === 'watching' ? true : undefined));
      assert.ok(inf.stats.gone >= 1, 'a 410 was seen');
      assert.equal(errors, 0, '410 is not an error');
      assert.deepEqual(inf.list().map((o) => o.metadata.name).sort(), ['new', 'pre-2']);
      await api.create(resourcePath(CONFIGMAPS, NS), cm('after-relist', '1'));
      await until('watching after relist', 10_000, () => inf.get('after-relist'));
    } finally {
      await inf.close();
    }
  });

  it('counts errors with capped backoff and recovers when the resource appears', async () => {
    const widgets: ResourceType = { group: 'test.hadron.dev', version: 'v1', plural: 'widgets', kind: 'Widget', namespaced: true };
    const at: number[] = [];
    const inf = new Informer({ client: api, resource: widgets, namespace: NS, logger: silentLogger, onError: () => at.push(Date.now()), backoff: { baseMs: 50, maxMs: 400 } });
    try {
      inf.start();
      await until('5 errors', 20_000, () => (at.length >= 5 ? true : undefined));
      const gaps = at.slice(1).map((t, i) => t - at[i]!);
      // Full jitter over base·2^n, capped: every gap is at least base/2 and at most the cap (+ request time).
      assert.ok(gaps.every((g) => g >= 20 && g <= 400 + 1000), `gaps ${gaps.join(',')}`);
      assert.equal(inf.hasSynced, false);
      await api.create(resourcePath(RT.crds), {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: 'widgets.test.hadron.dev' },
        spec: {
          group: 'test.hadron.dev',
          scope: 'Namespaced',
          names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
          versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
        },
      });
      await inf.synced(AbortSignal.timeout(20_000));
      await until('watching', 10_000, () => (inf.state === 'watching' ? true : undefined));
      assert.equal(inf.stats.errors, at.length);
    } finally {
      await inf.close();
    }
  });
});
