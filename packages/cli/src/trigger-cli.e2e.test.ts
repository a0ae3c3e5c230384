/**
 * `hadron trigger list|describe` through the real bin against a real partition running a
 * Trigger whose sink (in this test) acknowledges the first event and holds the second: the
 * Trigger shows delivering, with lag and the event at the sink; `group list` shows its group.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { RawClient, startStream, testEvent, until } from '@hadron/testing';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'hadron.js');

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out, err })));
}

test('hadron trigger list and describe show a Trigger delivering, its lag and the event at its sink', async () => {
  const held: http.ServerResponse[] = [];
  const sink = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => (req.headers['ce-id'] === 'e1' ? res.writeHead(204).end() : held.push(res)));
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const trigger = `apiVersion: hadron.rs/v1beta1
kind: Trigger
metadata: {name: billing}
spec:
  sourceStream: events
  sink: {uri: 'http://127.0.0.1:${(sink.address() as AddressInfo).port}/'}
  startPoint: {location: beginning}
  timeoutMs: 600000
`;
  try {
    await using c = await startStream({ stream: 'events', partitions: 2, manifests: { 'trigger.yaml': trigger } });
    const cl = new RawClient(c.url(0), c.tokens.full);
    await cl.publish([testEvent(1, { id: 'e1' }), testEvent(2, { id: 'e2' }), testEvent(3, { id: 'e3' })]);
    await cl.close();
    await until(() => held.length === 1, 10_000, 'e2 at the sink');
    const env = { HADRON_URL: c.url(0), HADRON_TOKEN: c.tokens.full };

    const list = await run(['trigger', 'list', '--output', 'json'], env);
    assert.equal(list.code, 0, list.err);
    const [t] = JSON.parse(list.out) as Array<Record<string, unknown>>;
    assert.deepEqual(
      { name: t!.name, group: t!.group, partitions: t!.partitions, delivering: t!.delivering, lag: t!.lag, atSink: t!.atSink },
      { name: 'billing', group: 'trigger:billing', partitions: 2, delivering: 2, lag: 2, atSink: 1 },
      'both partitions run it; e2 and e3 of partition 0 are not acknowledged; e2 is at the sink',
    );
    const text = await run(['trigger', 'list'], env);
    assert.match(text.out, /^TRIGGER\s+DELIVERING\s+LAG\s+AT SINK/m);
    assert.match(text.out, /^billing\s+2\/2\s+2\s+1\s/m);

    const d = await run(['trigger', 'describe', 'billing'], env);
    assert.equal(d.code, 0, d.err);
    assert.match(d.out, /trigger billing \(group trigger:billing\): delivering on 2\/2 partitions, lag 2/);
    assert.match(d.out, /^0\s+1\s+3\s+2\s+yes\s+…2\s/m, 'partition 0: acked 1, last 3, lag 2, e2 (offset 2) at the sink');
    const missing = await run(['trigger', 'describe', 'nope'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no Trigger 'nope' delivers from stream events \(Triggers: billing\) \[NOT_FOUND\]/);

    const groups = await run(['group', 'list'], env);
    assert.match(groups.out, /^trigger:billing\s+yes\s+2\s+2\s/m, 'the group is visible to group list as a durable group');
  } finally {
    for (const res of held) res.destroy();
    sink.closeAllConnections();
    await new Promise<void>((r) => sink.close(() => r()));
  }
});
