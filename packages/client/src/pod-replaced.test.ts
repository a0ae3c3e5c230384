/**
 * A partition replaced under a live client, as Kubernetes does it: the partition's address (a
 * Service) stays the same, the process behind it is new (new pod IP), and the connections the
 * client already had are black holes — conntrack keeps steering them to the deleted pod's IP,
 * where nothing answers and nothing closes them. Partitions are reached through a loopback TCP
 * proxy (`startTcpProxy`) that does exactly that; the partition processes are real.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePortRange, freePorts, startStream, startTcpProxy, until, type TcpProxy } from '@hadron/testing';
import { createClient } from './client.js';
import { partitionOf } from './hash.js';

function keyFor(p: number, n: number): string {
  for (let i = 0; ; i++) if (partitionOf({ id: '', source: '', optattrs: { partitionkey: `k${i}` } }, n) === p) return `k${i}`;
}

test('a partition replaced behind the same address while its old connections hang: publishing and subscribing resume', async (t) => {
  const n = 3;
  const proxyBase = await freePortRange(n);
  // Every partition announces its proxy's address (the "Service"), as pods announce theirs.
  const cluster = await startStream({ partitions: n, env: { HADRON_PARTITION_PORT_BASE: String(proxyBase) } });
  t.after(() => cluster[Symbol.asyncDispose]());
  const proxies: TcpProxy[] = [];
  for (let i = 0; i < n; i++) proxies.push(await startTcpProxy({ port: proxyBase + i, target: Number(new URL(cluster.url(i)).port) }));
  t.after(() => Promise.all(proxies.map((p) => p.close())));

  const url = `http://127.0.0.1:${proxyBase}`;
  const key = keyFor(1, n);
  // Short keepalive so the test does not wait for the defaults (10 s + 5 s); calls get a short
  // deadline and few attempts so that a client stuck on a dead connection fails the test
  // instead of hanging it.
  const client = createClient({
    url,
    token: cluster.tokens.full,
    keepaliveMs: 500,
    keepaliveTimeoutMs: 1000,
    publish: { strictPlacement: true, timeoutMs: 2000, retry: { attempts: 2, baseMs: 50, maxMs: 100 } },
  });
  t.after(() => client.close());
  await client.ready();
  assert.equal((await client.publish({ id: 'before', source: 'test', type: 't', partitionkey: key })).partition, 1);

  const seen = new Set<string>();
  const sub = client.subscribe({ group: 'replaced', durable: true, batchSize: 10, startPoint: 'beginning' }, (d) => {
    for (const e of d.events) seen.add(e.id);
  });
  t.after(() => sub.close());
  await until(() => seen.has('before'), 10_000, 'the subscriber receives the first event');

  // Replace partition 1: its connections become black holes, the process dies, a new one
  // starts on another port with the same data, and the "Service" now points there.
  const acceptedBefore = proxies[1]!.accepted;
  proxies[1]!.blackholeExisting();
  await cluster.kill(1, 'SIGKILL');
  const [newPort] = await freePorts(1);
  await cluster.startPartition(1, { CLIENT_PORT: String(newPort) });
  proxies[1]!.retarget(newPort!);

  // The client must notice that its connection is dead, reconnect through the same address to
  // the new process, and publish there (strict placement: no fail-over hides a stuck partition).
  let ack: { partition: number; offset: number } | undefined;
  let lastError = '';
  await until(
    async () => {
      try {
        ack = await client.publish({ id: 'after', source: 'test', type: 't', partitionkey: key });
        return true;
      } catch (e) {
        lastError = (e as Error).message;
        return false;
      }
    },
    20_000,
    'a publish to the replaced partition succeeds',
  ).catch((e: Error) => assert.fail(`${e.message}; last error: ${lastError}; partitions: ${JSON.stringify(client.partitions())}`));
  assert.equal(ack?.partition, 1);
  assert.ok(proxies[1]!.accepted > acceptedBefore, 'the client opened a new connection to the replaced partition');
  // The durable subscription resumes on the new process and receives the new event.
  await until(() => seen.has('after'), 20_000, 'the subscriber receives the event published after the replacement');
});
