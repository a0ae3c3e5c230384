/**
 * Many publishes before the client knows its partitions share one wait (issue 10: more than 10
 * printed MaxListenersExceededWarning).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStream } from '@hadron/testing';
import { createClient } from './client.js';

test('50 publishes before the client is ready: no MaxListenersExceededWarning, all stored', async (t) => {
  const cluster = await startStream({ partitions: 1 });
  t.after(() => cluster[Symbol.asyncDispose]());
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const client = createClient({ url: cluster.url(0), token: cluster.tokens.full });
  t.after(() => client.close());
  assert.equal(client.state, 'connecting');
  const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => client.publish({ id: `e${i}`, source: 's', type: 't', data: String(i) })));
  assert.deepEqual(acks.map((a) => a.offset).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1));
  // Warnings are emitted on process.nextTick: let them through before looking.
  await new Promise<void>((r) => setImmediate(r));
  assert.deepEqual(warnings.filter((w) => /MaxListeners/.test(w)), []);
  // Waiting again after ready, and after a wait that timed out, still works.
  await client.ready();
  const late = createClient({ url: 'http://127.0.0.1:1', token: cluster.tokens.full, connectTimeoutMs: 200 });
  t.after(() => late.close());
  await assert.rejects(late.ready({ timeoutMs: 300 }), /no partition list from .* within 300 ms/);
  await assert.rejects(late.ready({ timeoutMs: 300 }), /no partition list from .* within 300 ms/);
});
