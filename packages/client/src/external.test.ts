/**
 * `mode: 'external'`: the client follows the addresses partitions announce as `external` in
 * Metadata (HADRON_EXTERNAL_ADVERTISE_TEMPLATE), not the in-cluster ones. The partitions here
 * announce internal addresses nobody listens on (as in-cluster names are unreachable from
 * outside a cluster) and external ones that are loopback proxies in front of them (the "node
 * ports").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HadronError } from '@hadron/core';
import { freePortRange, startStream, startTcpProxy, until, type TcpProxy } from '@hadron/testing';
import { createClient } from './client.js';

test("mode 'external' reaches every partition through its external address; 'internal' does not; a Stream without external addresses is a clear error", async (t) => {
  const n = 3;
  const proxyBase = await freePortRange(n);
  const unreachable = await freePortRange(n);
  const cluster = await startStream({
    partitions: n,
    env: {
      HADRON_PARTITION_PORT_BASE: String(unreachable),
      HADRON_EXTERNAL_ADVERTISE_TEMPLATE: '127.0.0.1:{port}',
      HADRON_EXTERNAL_PORT_BASE: String(proxyBase),
    },
  });
  t.after(() => cluster[Symbol.asyncDispose]());
  const proxies: TcpProxy[] = [];
  for (let i = 0; i < n; i++) proxies.push(await startTcpProxy({ port: proxyBase + i, target: Number(new URL(cluster.url(i)).port) }));
  t.after(() => Promise.all(proxies.map((p) => p.close())));

  const url = `http://127.0.0.1:${proxyBase + 1}`;
  const ext = createClient({ url, token: cluster.tokens.full, mode: 'external' });
  t.after(() => ext.close());
  await ext.ready();
  assert.deepEqual(
    ext.partitions().map((p) => p.address),
    [0, 1, 2].map((i) => `127.0.0.1:${proxyBase + i}`),
  );
  const events = Array.from({ length: 60 }, (_, i) => ({ id: `x${i}`, source: 'test', type: 't', partitionkey: `k${i}` }));
  const acks = await ext.publish(events);
  assert.deepEqual(new Set(acks.map((a) => a.partition)), new Set([0, 1, 2]), 'every partition acknowledged');
  const seen = new Set<string>();
  const sub = ext.subscribe({ group: 'ext', durable: false, startPoint: 'beginning', batchSize: 100 }, (d) => {
    for (const e of d.events) seen.add(e.id);
  });
  t.after(() => sub.close());
  await until(() => seen.size === events.length, 10_000, 'every event received through the external addresses');
  for (const p of proxies) assert.ok(p.accepted > 0, `proxy ${p.port} carried connections`);

  // The default mode follows the internal addresses, which nothing serves from here.
  const int = createClient({ url, token: cluster.tokens.full, connectTimeoutMs: 500 });
  t.after(() => int.close());
  await int.ready();
  assert.deepEqual(
    int.partitions().map((p) => p.address),
    [0, 1, 2].map((i) => `127.0.0.1:${unreachable + i}`),
  );
  await until(() => int.partitions().every((p) => p.health === 'down'), 10_000, 'internal addresses unreachable');

  // A Stream that announces no external address: ready() fails and says what to do.
  const plain = await startStream({ partitions: 1 });
  t.after(() => plain[Symbol.asyncDispose]());
  const noExt = createClient({ url: plain.url(0), token: plain.tokens.full, mode: 'external' });
  t.after(() => noExt.close());
  await assert.rejects(noExt.ready({ timeoutMs: 3000 }), (e: HadronError) => {
    assert.equal(e.code, 'CONFIG_INVALID');
    assert.match(e.message, /announces no external address for partition\(s\) 0.*spec\.external/);
    return true;
  });
});
