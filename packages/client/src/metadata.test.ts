import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncQueue, HadronError, silentLogger } from '@hadron/core';
import { MetadataFollower, type MetadataState } from './metadata.js';
import type { PartitionInfo } from './topology.js';

/** Each open() call takes the next scripted stream: a queue the test feeds or fails. */
class Script {
  opened: string[] = [];
  streams: Array<AsyncQueue<PartitionInfo[]>> = [];
  private waiters: Array<() => void> = [];
  open = (address: string, signal: AbortSignal): AsyncIterable<PartitionInfo[]> => {
    const q = new AsyncQueue<PartitionInfo[]>();
    signal.addEventListener('abort', () => q.fail(signal.reason), { once: true });
    this.opened.push(address);
    this.streams.push(q);
    this.waiters.splice(0).forEach((w) => w());
    return q;
  };
  async openedAtLeast(n: number): Promise<AsyncQueue<PartitionInfo[]>> {
    while (this.streams.length < n) await new Promise<void>((r) => this.waiters.push(r));
    return this.streams[n - 1]!;
  }
}

const list = (n: number): PartitionInfo[] => Array.from({ length: n }, (_, i) => ({ partition: i, address: `127.0.0.1:${7000 + i}` }));

test('metadata follower: reconnect state machine with backoff and address rotation', async () => {
  const script = new Script();
  const lists: PartitionInfo[][] = [];
  const delays: number[] = [];
  let known: string[] = [];
  const f = new MetadataFollower({
    bootstrap: 'http://boot:7000',
    open: script.open,
    knownAddresses: () => known,
    onList: (l) => {
      lists.push(l);
      known = l.map((p) => `http://${p.address}`);
    },
    backoff: { baseMs: 100, maxMs: 1000 },
    logger: silentLogger,
    sleep: async (ms) => {
      delays.push(ms);
    },
  });
  const states: MetadataState['kind'][] = [];
  f.on('state', (s) => states.push(s.kind));
  f.start();

  // 1. the bootstrap is down: backoff grows, the bootstrap is retried (nothing else known)
  (await script.openedAtLeast(1)).fail(new HadronError('UNAVAILABLE', 'ECONNREFUSED'));
  (await script.openedAtLeast(2)).fail(new HadronError('UNAVAILABLE', 'ECONNREFUSED'));
  const s3 = await script.openedAtLeast(3);
  assert.deepEqual(script.opened, ['http://boot:7000', 'http://boot:7000', 'http://boot:7000']);
  assert.equal(delays.length, 2);
  assert.ok(delays[0]! >= 50 && delays[0]! <= 100, `first backoff ${delays[0]}`);
  assert.ok(delays[1]! >= 100 && delays[1]! <= 200, `second backoff ${delays[1]}`);
  assert.ok(f.lastError instanceof HadronError);

  // 2. a list arrives: streaming, error cleared, every list forwarded
  s3.push(list(3));
  s3.push(list(5));
  await new Promise((r) => setImmediate(r));
  assert.equal(f.state.kind, 'streaming');
  assert.equal(f.lastError, undefined);
  assert.deepEqual(lists.map((l) => l.length), [3, 5]);

  // 3. the stream ends: reconnect at once (attempt counter was reset), on the next address
  s3.end();
  const s4 = await script.openedAtLeast(4);
  assert.equal(delays[2], 0, 'a stream that delivered reconnects without delay');
  assert.equal(script.opened[3], 'http://127.0.0.1:7000', 'rotates to a known partition');
  s4.fail(new HadronError('UNAVAILABLE', 'gone'));
  await script.openedAtLeast(5);
  assert.equal(script.opened[4], 'http://127.0.0.1:7001');

  // 4. a refused token backs off at the maximum and is kept as lastError
  script.streams[4]!.fail(new HadronError('UNAUTHENTICATED', 'the given authorization token is unknown'));
  await script.openedAtLeast(6);
  assert.ok(delays[4]! >= 500, `non-retriable errors back off long (${delays[4]})`);
  assert.equal((f.lastError as HadronError).code, 'UNAUTHENTICATED');

  // 5. close: the open stream is aborted, the state is closed
  await f.close();
  assert.equal(f.state.kind, 'closed');
  assert.deepEqual(states.slice(0, 7), ['connecting', 'backoff', 'connecting', 'backoff', 'connecting', 'streaming', 'backoff']);
  assert.equal(states.at(-1), 'closed');
});
