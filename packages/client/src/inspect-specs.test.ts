/**
 * ListPipelines / ListTokens (issue 10) against real partition processes: the Pipeline graph of
 * the stream, and Token names with permissions — never their keys or JWTs — only for `all: true`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HadronError } from '@hadron/core';
import { startStream, until } from '@hadron/testing';
import { createClient } from './client.js';

const PIPELINE = `apiVersion: hadron.rs/v1beta1
kind: Pipeline
metadata: {name: orders}
spec:
  sourceStream: events
  triggers: [order.created]
  maxParallel: 5
  startPoint: {location: beginning}
  stages:
    - {name: reserve}
    - {name: charge, dependencies: [reserve]}
    - {name: notify, after: [reserve]}
    - {name: ship, dependencies: [charge], after: [notify]}
---
apiVersion: hadron.rs/v1beta1
kind: Pipeline
metadata: {name: elsewhere}
spec: {sourceStream: other, triggers: [x], maxParallel: 1, stages: [{name: only}]}
`;

test('client.pipelines() and client.tokens()', async (t) => {
  const cluster = await startStream({ partitions: 2, manifests: { 'pipelines.yaml': PIPELINE } });
  t.after(() => cluster[Symbol.asyncDispose]());
  const full = createClient({ url: cluster.url(0), token: cluster.tokens.full });
  const reader = createClient({ url: cluster.url(0), token: cluster.tokens.reader });
  t.after(() => Promise.all([full.close(), reader.close()]));

  await t.test('pipelines of this stream with their stage graph; sub is enough', async () => {
    const expected = [
      {
        name: 'orders',
        triggers: ['order.created'],
        maxParallel: 5,
        startLocation: 'beginning',
        stages: [
          { name: 'reserve', dependencies: [], after: [] },
          { name: 'charge', dependencies: ['reserve'], after: [] },
          { name: 'notify', dependencies: [], after: ['reserve'] },
          { name: 'ship', dependencies: ['charge'], after: ['notify'] },
        ],
      },
    ];
    assert.deepEqual(await full.pipelines(), expected);
    assert.deepEqual(await reader.pipelines(), expected);
  });

  await t.test("pipelineStatus shows a done stage's stored output of an active instance", async () => {
    const stage = full.pipelineStage('orders', 'reserve', (d) => ({ id: `reserved-${d.offset}`, source: 'stock', type: 'stock.reserved', data: '{"sku":"a1"}', datacontenttype: 'application/json' }));
    t.after(() => stage.close());
    await full.publish([{ id: 'o-1', source: 'shop', type: 'order.created', data: '{}' }]);
    let done: { name: string; state: string; output?: { id: string; type: string; data?: Uint8Array | string }; outputBytes?: number } | undefined;
    await until(async () => {
      for (const p of await full.pipelineStatus('orders')) {
        if ('error' in p) continue;
        done = p.instances[0]?.stages.find((s) => s.name === 'reserve' && s.state === 'done');
        if (done) return true;
      }
      return false;
    }, 15_000, 'reserve done');
    assert.equal(done!.output?.type, 'stock.reserved');
    assert.match(done!.output!.id, /^reserved-\d+$/);
    assert.equal(Buffer.from(done!.output!.data as Uint8Array).toString(), '{"sku":"a1"}');
    assert.ok((done!.outputBytes ?? 0) > 0);
  });

  await t.test('tokens: names and permissions, nothing secret; refused without all: true', async () => {
    const tokens = await full.tokens();
    assert.deepEqual(
      tokens.map((x) => [x.name, x.all, x.streams]),
      [
        ['t-full', true, { pub: [], sub: [] }],
        ['t-none', false, { pub: [], sub: [] }],
        ['t-reader', false, { pub: [], sub: ['events'] }],
        ['t-writer', false, { pub: ['events'], sub: ['events'] }],
      ],
    );
    const text = JSON.stringify(tokens);
    for (const jwt of Object.values(cluster.tokens)) assert.ok(!text.includes(jwt.split('.')[2]!), 'no JWT signature in the answer');
    assert.doesNotMatch(text, /hmac|key|secret/i);
    await assert.rejects(reader.tokens(), (err: unknown) => {
      assert.ok(err instanceof HadronError);
      assert.equal(err.code, 'PERMISSION_DENIED');
      assert.match(err.message, /token 't-reader' may not list Tokens \(needs all: true\)/);
      return true;
    });
  });
});
