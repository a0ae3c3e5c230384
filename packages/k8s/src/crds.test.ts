/**
 * The CRDs generated from the shared types, against a real kube-apiserver: the chart's files are
 * exactly the generated ones; the API server's defaults equal those of the parsers in
 * @hadron/core; what the schema rejects the parsers reject too; printer columns show values.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parsePipeline, parseStream, parseToken } from '@hadron/core';
import { startControlPlane, type ControlPlane } from '@hadron/testing/k8s/control-plane';
import { KubeClient, resourcePath } from './client.js';
import { hadronCrds } from './crds.js';
import { CHART_CRDS_DIR, renderCrdFiles } from './gen-crds.js';
import { RT } from './types.js';

const NS = 'crds';
type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('CRDs on a real API server', { timeout: 60 * 60_000 }, () => {
  let cp: ControlPlane;
  let api: KubeClient;

  before(async () => {
    cp = await startControlPlane({});
    api = new KubeClient({ server: cp.server, ca: cp.caPem, token: cp.adminToken });
    for (const { object } of hadronCrds()) await api.create(resourcePath(RT.crds), object);
    const r = await cp.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/streams.hadron.rs', 'crd/pipelines.hadron.rs', 'crd/tokens.hadron.rs']);
    assert.equal(r.code, 0, r.stderr);
    await api.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  });
  after(async () => {
    api?.close();
    await cp?.stop();
  });

  it('the chart ships exactly the generated CRDs', () => {
    for (const { file, text } of renderCrdFiles()) {
      assert.equal(fs.readFileSync(path.join(CHART_CRDS_DIR, file), 'utf8'), text, `${file} is stale: run npm run gen-crds -w @hadron/k8s`);
    }
    assert.deepEqual(fs.readdirSync(CHART_CRDS_DIR).sort(), renderCrdFiles().map((f) => f.file).sort());
  });

  const create = async (plural: 'streams' | 'pipelines' | 'tokens', doc: Doc): Promise<Doc> => api.create(resourcePath(RT[plural], NS), doc) as Promise<Doc>;
  const kind = { streams: 'Stream', pipelines: 'Pipeline', tokens: 'Token' } as const;
  const doc = (plural: 'streams' | 'pipelines' | 'tokens', name: string, spec: Doc): Doc => ({ apiVersion: 'hadron.rs/v1beta1', kind: kind[plural], metadata: { name, namespace: NS }, spec });

  it('API-server defaults equal the parsers’ defaults', async () => {
    const s = doc('streams', 'min-stream', { partitions: 2, image: 'img' });
    const sv = await create('streams', s);
    assert.deepEqual(sv.spec, { partitions: 2, image: 'img', debug: false, retentionPolicy: { strategy: 'time', retentionSeconds: 604800 }, pvcVolumeSize: '1Gi' });
    const a = parseStream(s);
    const b = parseStream(sv);
    assert.ok(a.ok && b.ok);
    assert.deepEqual(b.value.spec, a.value.spec);

    const retain = await create('streams', doc('streams', 'retain', { partitions: 1, image: 'img', retentionPolicy: { strategy: 'retain' } }));
    assert.deepEqual(retain.spec.retentionPolicy, { strategy: 'retain', retentionSeconds: 604800 });

    const p = doc('pipelines', 'min-pipeline', { sourceStream: 'events', maxParallel: 1, stages: [{ name: 'a' }, { name: 'b', after: ['a'] }] });
    const pv = await create('pipelines', p);
    assert.deepEqual(pv.spec, { sourceStream: 'events', maxParallel: 1, triggers: [], startPoint: { location: 'beginning' }, stages: [{ name: 'a', after: [], dependencies: [] }, { name: 'b', after: ['a'], dependencies: [] }] });
    const pa = parsePipeline(p);
    const pb = parsePipeline(pv);
    assert.ok(pa.ok && pb.ok);
    assert.deepEqual(pb.value.spec, pa.value.spec);

    const t = doc('tokens', 'min-token', { streams: { pub: [], sub: ['events'] } });
    const tv = await create('tokens', t);
    assert.deepEqual(tv.spec, { all: false, streams: { pub: [], sub: ['events'] } });
    const ta = parseToken(t);
    const tb = parseToken(tv);
    assert.ok(ta.ok && tb.ok);
    assert.deepEqual(tb.value.spec, ta.value.spec);
  });

  it('what the schema rejects, the parsers reject too', async () => {
    const cases: Array<['streams' | 'pipelines' | 'tokens', Doc]> = [
      ['streams', { partitions: 0, image: 'img' }],
      ['streams', { partitions: 1025, image: 'img' }],
      ['streams', { partitions: 'three', image: 'img' }],
      ['streams', { partitions: 1, image: 'img', pvcVolumeSize: 'big' }],
      ['streams', { partitions: 1, image: 'img', retentionPolicy: { strategy: 'forever' } }],
      ['streams', { partitions: 1, image: 'img', retentionPolicy: { strategy: 'time', retentionSeconds: -1 } }],
      ['streams', { partitions: 1, image: 'img', pvcAccessModes: ['ReadWriteSometimes'] }],
      ['streams', { partitions: 1, image: 'img', debug: 'yes' }],
      ['pipelines', { sourceStream: 'events', maxParallel: 1, stages: [] }],
      ['pipelines', { sourceStream: 'events', maxParallel: 1, stages: [{ name: 'a' }], startPoint: { location: 'middle' } }],
      ['pipelines', { sourceStream: 'events', maxParallel: -1, stages: [{ name: 'a' }] }],
      ['tokens', { all: 'yes' }],
      ['tokens', { streams: { pub: 'events', sub: [] } }],
    ];
    const parse = { streams: parseStream, pipelines: parsePipeline, tokens: parseToken };
    let i = 0;
    for (const [plural, spec] of cases) {
      const d = doc(plural, `bad-${i++}`, spec);
      await assert.rejects(create(plural, d), (err: unknown) => (err as { statusCode?: number }).statusCode === 422, `API server accepted ${JSON.stringify(spec)}`);
      assert.equal(parse[plural](d).ok, false, `parser accepted ${JSON.stringify(spec)}`);
    }
  });

  it('status is a subresource and printer columns show values', async () => {
    const st = await api.mergePatch<Doc & { metadata: { name: string } }>(resourcePath(RT.streams, NS, 'min-stream', 'status'), {
      status: { observedGeneration: 1, partitions: 2, readyPartitions: 1, conditions: [{ type: 'Ready', status: 'False', reason: 'PartitionsNotReady', message: '1/2', lastTransitionTime: '2024-01-01T00:00:00Z' }] },
    });
    assert.equal(st.status.readyPartitions, 1);
    // Writing status through the main resource is ignored (status subresource).
    const main = await api.mergePatch<Doc & { metadata: { name: string } }>(resourcePath(RT.streams, NS, 'min-stream'), { status: { readyPartitions: 2 } });
    assert.equal(main.status.readyPartitions, 1);
    const streams = (await cp.kubectl(['get', 'streams', '-n', NS, 'min-stream'])).stdout;
    assert.match(streams, /min-stream\s+2\s+1\s+False\s+false\s+time\s+604800\s+1Gi/);
    const pipelines = (await cp.kubectl(['get', 'pipelines', '-n', NS])).stdout;
    assert.match(pipelines, /NAME\s+SOURCE STREAM\s+TRIGGERS\s+MAX PARALLEL/);
    assert.match(pipelines, /min-pipeline\s+events\s+\[\]\s+1/);
    const tokens = (await cp.kubectl(['get', 'tokens', '-n', NS])).stdout;
    assert.match(tokens, /min-token\s+false/);
  });

  it('kubectl scale changes spec.partitions through the scale subresource; the selector comes from status', async () => {
    await create('streams', doc('streams', 'scaled', { partitions: 3, image: 'img' }));
    const selector = 'app=hadron,hadron.rs/stream=scaled';
    await api.mergePatch(resourcePath(RT.streams, NS, 'scaled', 'status'), { status: { partitions: 3, selector } });
    const r = await cp.kubectl(['scale', '-n', NS, 'stream/scaled', '--replicas=5']);
    assert.equal(r.code, 0, r.stderr);
    const after = await api.get<Doc & { metadata: { name: string } }>(resourcePath(RT.streams, NS, 'scaled'));
    assert.equal(after.spec.partitions, 5);
    const scale = JSON.parse((await cp.kubectl(['get', '-n', NS, 'stream/scaled', '--subresource=scale', '-o', 'json'])).stdout) as Doc;
    assert.equal(scale.kind, 'Scale');
    assert.equal(scale.spec.replicas, 5);
    assert.equal(scale.status.replicas, 3, 'status.replicas is status.partitions until the operator catches up');
    assert.equal(scale.status.selector, selector);
    // The CRD's own bound still applies to a scale request.
    const tooMany = await cp.kubectl(['scale', '-n', NS, 'stream/scaled', '--replicas=5000']);
    assert.notEqual(tooMany.code, 0, 'scaled beyond the maximum');
  });

  it('replicationFactor: 1 ≤ r ≤ partitions is enforced by the API server', async () => {
    const ok = await create('streams', doc('streams', 'replicated', { partitions: 3, image: 'img', replicationFactor: 3 }));
    assert.equal(ok.spec.replicationFactor, 3);
    for (const [name, spec, why] of [
      ['r-too-big', { partitions: 2, image: 'img', replicationFactor: 3 }, /replicationFactor must not exceed partitions/],
      ['r-zero', { partitions: 2, image: 'img', replicationFactor: 0 }, /replicationFactor/],
    ] as const) {
      await assert.rejects(create('streams', doc('streams', name, spec)), (err: unknown) => {
        assert.equal((err as { statusCode?: number }).statusCode, 422);
        assert.match((err as Error).message, why);
        return true;
      });
    }
    // Scaling below the replication factor is refused too (the rule covers every update).
    const r = await cp.kubectl(['scale', '-n', NS, 'stream/replicated', '--replicas=2']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /replicationFactor must not exceed partitions/);
  });
});
