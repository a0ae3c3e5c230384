/**
 * The client against real partition processes (packages/testing `startStream`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CloudEvent } from 'cloudevents';
import { HadronError } from '@hadron/core';
import { startStream, type TestStream, until } from '@hadron/testing';
import { createClient, type HadronClient } from './client.js';
import { toCloudEvent, type ReceivedEvent } from './event.js';
import { partitionOf } from './hash.js';
import type { PartitionHealth } from './topology.js';

/** A key whose partition is `p` of `n`. */
function keyFor(p: number, n: number, prefix = 'k'): string {
  for (let i = 0; ; i++) if (partitionOf({ id: '', source: '', optattrs: { partitionkey: `${prefix}${i}` } }, n) === p) return `${prefix}${i}`;
}

const health = (c: HadronClient, p: number): PartitionHealth | undefined => c.partitions().find((x) => x.partition === p)?.health;

test('client against a 3-partition stream', async (t) => {
  const cluster: TestStream = await startStream({ partitions: 3, env: { HADRON_ACK_DEADLINE_MS: '5000' } });
  t.after(() => cluster[Symbol.asyncDispose]());
  const client = createClient({ url: cluster.url(1), token: cluster.tokens.full });
  t.after(() => client.close());

  await t.test('discovers the topology from any partition and connects to each', async () => {
    const states: string[] = [];
    client.on('state', (s) => states.push(s));
    await client.ready();
    assert.equal(client.partitionCount, 3);
    await until(() => client.partitions().every((p) => p.health === 'ready'), 5000, 'all partitions ready');
    assert.deepEqual(
      client.partitions().map((p) => p.address),
      [0, 1, 2].map((p) => cluster.url(p).replace('http://', '')),
    );
  });

  await t.test('publish → subscribe round trip across partitions, CloudEvents SDK compatible', async () => {
    const events = Array.from({ length: 30 }, (_, i) => ({ id: `e${i}`, source: 'test', type: 't', partitionkey: `key-${i % 7}`, data: `payload ${i}` }));
    const acks = await client.publish(events);
    acks.forEach((a, i) => assert.equal(a.partition, partitionOf({ id: '', source: '', optattrs: { partitionkey: `key-${i % 7}` } }, 3), `event ${i}`));
    const single = await client.publish(
      new CloudEvent({ id: 'ce-1', source: '/sdk', type: 'sdk.event', subject: 'sub-1', datacontenttype: 'application/json', data: { ok: true, list: [1, 2] }, tenant: 'acme' }),
    );
    assert.equal(single.partition, partitionOf({ id: '', source: '', optattrs: { subject: 'sub-1' } }, 3));

    const got = new Map<string, ReceivedEvent>();
    const sub = client.subscribe({ group: 'round-trip', durable: false, batchSize: 8, startPoint: 'beginning' }, (d) => {
      for (const e of d.events) {
        assert.equal(e.partition, d.partition);
        got.set(e.id, e);
      }
    });
    await until(() => got.size === 31, 10_000, '31 events');
    await sub.close();
    acks.forEach((a, i) => {
      const e = got.get(`e${i}`)!;
      assert.deepEqual({ partition: e.partition, offset: e.offset }, a);
      assert.equal(Buffer.from(e.data).toString(), `payload ${i}`);
      assert.equal(e.optattrs.partitionkey, `key-${i % 7}`);
    });
    const ce = got.get('ce-1')!;
    assert.deepEqual({ partition: ce.partition, offset: ce.offset }, single);
    const back = new CloudEvent(toCloudEvent(ce) as never);
    assert.deepEqual(back.data, { ok: true, list: [1, 2] });
    assert.equal(back.subject, 'sub-1');
    assert.equal(back['tenant'], 'acme');
  });

  await t.test('a throwing handler nacks; the batch comes back as a redelivery', async () => {
    const key = keyFor(0, 3);
    const attempts: number[] = [];
    const sub = client.subscribe({ group: 'nacker', durable: false, batchSize: 1, startPoint: 'latest' }, (d) => {
      if (d.events[0]?.id !== 'nack-me') return;
      attempts.push(d.attempt);
      if (attempts.length === 1) throw new Error('not yet');
    });
    await until(() => sub.partitions().length === 3 && sub.partitions().every((p) => p.state === 'connecting' || p.state === 'active'));
    // the group must exist before the event for 'latest' to include it
    await new Promise((r) => setTimeout(r, 200));
    await client.publish({ id: 'nack-me', source: 'test', type: 't', partitionkey: key });
    await until(() => attempts.length === 2, 10_000, 'redelivery after nack');
    assert.deepEqual(attempts, [1, 2]);
    await sub.close();
  });

  await t.test('close() waits for the handler in flight and acks its delivery', async () => {
    const key = keyFor(2, 3);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = false;
    let finished = false;
    const sub = client.subscribe({ group: 'slow', durable: true, batchSize: 1, startPoint: 'latest' }, async (d) => {
      if (d.events[0]?.id !== 'slow-1') return;
      started = true;
      await gate;
      finished = true;
    });
    await until(() => sub.partitions().length === 3);
    await new Promise((r) => setTimeout(r, 200));
    await client.publish({ id: 'slow-1', source: 'test', type: 't', partitionkey: key });
    await until(() => started, 10_000, 'handler start');
    let closed = false;
    const closing = sub.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(closed, false, 'close waits for the running handler');
    release();
    await closing;
    assert.ok(finished);
    // The delivery was acked: the durable group does not get it again.
    await client.publish({ id: 'slow-2', source: 'test', type: 't', partitionkey: key });
    const seen: string[] = [];
    const again = client.subscribe({ group: 'slow', batchSize: 10 }, (d) => void seen.push(...d.events.map((e) => e.id)));
    await until(() => seen.includes('slow-2'), 10_000, 'slow-2');
    await again.close();
    assert.deepEqual(seen, ['slow-2']);
  });

  await t.test('follows a partition restart; fail-over by default, a clear error with strictPlacement', async () => {
    const key = keyFor(1, 3, 'r');
    const strict = createClient({ url: cluster.url(0), token: cluster.tokens.full, publish: { strictPlacement: true, retry: { attempts: 1, baseMs: 10, maxMs: 10 } } });
    try {
      await strict.ready();
      await cluster.kill(1);
      await until(() => health(client, 1) === 'down' && health(strict, 1) === 'down', 5000, 'partition 1 down');
      const moved = await client.publish({ source: 'test', type: 't', partitionkey: key });
      assert.equal(moved.partition, 2, 'fails over to the next partition');
      await assert.rejects(strict.publish({ source: 'test', type: 't', partitionkey: key }), (e: HadronError) => {
        assert.equal(e.code, 'UNAVAILABLE');
        assert.match(e.message, /partition 1 \(127\.0\.0\.1:\d+\) is unavailable and strictPlacement is on/);
        return true;
      });
      await cluster.startPartition(1);
      await until(() => health(client, 1) === 'ready' && health(strict, 1) === 'ready', 10_000, 'partition 1 back');
      assert.equal((await strict.publish({ source: 'test', type: 't', partitionkey: key })).partition, 1);
      assert.equal((await client.publish({ source: 'test', type: 't', partitionkey: key })).partition, 1);
    } finally {
      await strict.close();
    }
  });

  await t.test('pipeline stages: handlers get the root event and their dependencies\' outputs', async () => {
    cluster.writeManifest(
      'pipeline.yaml',
      `apiVersion: hadron.rs/v1beta1
kind: Pipeline
metadata: {name: demo}
spec:
  sourceStream: events
  triggers: [order.placed]
  maxParallel: 5
  startPoint: {location: beginning}
  stages:
    - {name: first}
    - {name: second, dependencies: [first]}
`,
    );
    const unknown = client.pipelineStage('no-such-pipeline', 'first', (d) => d.rootEvent);
    await assert.rejects(unknown.done, (e: HadronError) => e.code === 'NOT_FOUND' && /pipeline controller was not found/.test(e.message));
    // Every partition picks the manifest up within a moment; until then the stage is NOT_FOUND.
    const seen: Array<{ stage: string; root: string; inputs: Record<string, string>; partition: number }> = [];
    for (const deadline = Date.now() + 10_000; ; ) {
      const first = client.pipelineStage('demo', 'first', (d) => {
        seen.push({ stage: d.stage, root: d.rootEvent.id, inputs: {}, partition: d.partition });
        return { id: d.rootEvent.id, source: 'first', type: 'first.done', data: `checked ${d.rootEvent.id}` };
      });
      const second = client.pipelineStage('demo', 'second', (d) => {
        seen.push({ stage: d.stage, root: d.rootEvent.id, inputs: Object.fromEntries(Object.entries(d.inputs).map(([k, v]) => [k, Buffer.from(v.data).toString()])), partition: d.partition });
        return { id: d.rootEvent.id, source: 'second', type: 'second.done' };
      });
      await new Promise((r) => setTimeout(r, 300));
      if (!first.error && !second.error) break;
      await Promise.all([first.close(), second.close()]);
      if (Date.now() > deadline) throw new Error(`pipeline never became available: ${String(first.error ?? second.error)}`);
    }
    const ack = await client.publish({ id: 'order-9', source: 'shop', type: 'order.placed', partitionkey: keyFor(2, 3, 'o') });
    await client.publish({ id: 'noise', source: 'shop', type: 'order.cancelled', partitionkey: keyFor(2, 3, 'o') });
    await until(() => seen.length >= 2, 10_000, 'both stages');
    assert.deepEqual(seen, [
      { stage: 'first', root: 'order-9', inputs: {}, partition: ack.partition },
      { stage: 'second', root: 'order-9', inputs: { first: 'checked order-9' }, partition: ack.partition },
    ]);
    const badStage = client.pipelineStage('demo', 'nope', (d) => d.rootEvent);
    await assert.rejects(badStage.done, (e: HadronError) => e.code === 'INVALID_ARGUMENT' && /stage name 'nope' is unknown/.test(e.message));
  });

  await t.test('credentials: unknown token fails ready(), a token without permission fails publish', async () => {
    const bad = createClient({ url: cluster.url(0), token: `${cluster.tokens.full.slice(0, -4)}AAAA`, readyTimeoutMs: 5000 });
    await assert.rejects(bad.ready(), (e: HadronError) => e.code === 'UNAUTHENTICATED');
    await bad.close();
    const reader = createClient({ url: cluster.url(0), token: cluster.tokens.reader });
    await assert.rejects(reader.publish({ source: 's', type: 't' }), (e: HadronError) => e.code === 'PERMISSION_DENIED' && /may not publish/.test(e.message));
    await reader.close();
  });

  await t.test('close() is idempotent and refuses new work', async () => {
    const c2 = createClient({ url: cluster.url(0), token: cluster.tokens.full });
    await c2.ready();
    const states: string[] = [];
    const watched = (async () => {
      for await (const e of c2.watch()) if (e.type === 'state') states.push(e.state);
    })();
    await Promise.all([c2.close(), c2.close()]);
    await watched;
    assert.deepEqual(states, ['closed']);
    await assert.rejects(c2.publish({ source: 's', type: 't' }), /client closed/);
  });
});
