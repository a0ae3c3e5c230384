/**
 * Integration: a Trigger delivers a real Stream's events to an HTTP sink server in this test
 * (docs/http.md, "Triggers"): filter, binary mode, order, retries after failures and timeouts,
 * the dead-letter Stream's content, and at-least-once across a kill -9 of the stream server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import { HTTP } from 'cloudevents';
import { RawClient, readAll, startStream, testEvent, tokenManifest, tokenSecret, until } from '@hadron/testing';

interface Received {
  id: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  answered: number;
}

/** The sink: `plan(id, n)` says what the n-th request for event `id` gets (a status, or 'hang'). */
function sinkServer(plan: (id: string, n: number) => number | 'hang') {
  const received: Received[] = [];
  const seen = new Map<string, number>();
  const hung = new Set<http.ServerResponse>();
  const events = new EventEmitter<{ request: [Received] }>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = String(req.headers['ce-id']);
      const n = (seen.get(id) ?? 0) + 1;
      seen.set(id, n);
      const what = plan(id, n);
      const r: Received = { id, headers: req.headers, body: Buffer.concat(chunks).toString(), answered: what === 'hang' ? 0 : what };
      received.push(r);
      events.emit('request', r);
      if (what === 'hang') hung.add(res);
      else res.writeHead(what).end();
    });
  });
  return {
    received,
    events,
    delivered: () => received.filter((r) => r.answered >= 200 && r.answered < 300).map((r) => r.id),
    async listen(): Promise<string> {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}/in`;
    },
    async close(): Promise<void> {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const trigger = (sink: string): string => `apiVersion: hadron.rs/v1beta1
kind: Trigger
metadata: {name: orders}
spec:
  sourceStream: events
  filter: {types: ['order.>']}
  sink: {uri: '${sink}'}
  startPoint: {location: beginning}
  timeoutMs: 300
  retry: {maxAttempts: 3, backoffMs: 10, maxBackoffMs: 50}
  deadLetter: {stream: dlq, token: t-dl}
`;

test('a Trigger POSTs matching events in order in binary mode; failures and timeouts are retried, then dead-lettered; at-least-once across kill -9', async () => {
  let holdO6 = true;
  const sink = sinkServer((id, n) => {
    if (id === 'o2') return 500; // always fails → dead-lettered after 3 attempts
    if (id === 'o3' && n === 1) return 'hang'; // times out once
    if (id === 'o4' && n === 1) return 503;
    if (id === 'o6' && holdO6) return 'hang'; // held while the server is killed
    return 204;
  });
  const url = await sink.listen();
  const dl = tokenSecret('t-dl');
  const shared = { 'token-dl.yaml': tokenManifest('t-dl', { streams: { pub: ['dlq'], sub: [] } }), 'secret-dl.yaml': dl.yaml };
  await using dlq = await startStream({ stream: 'dlq', manifests: shared });
  await using c = await startStream({ stream: 'events', manifests: { ...shared, 'trigger.yaml': trigger(url) }, env: { HADRON_STREAM_URLS: `dlq=${dlq.url(0)}` } });
  try {
    const cl = new RawClient(c.url(0), c.tokens.full);
    await cl.publish([
      testEvent(1, { id: 'o1', type: 'order.created', optattrs: { note: 'a b%"é', datacontenttype: 'text/plain' }, data: Buffer.from('first') }),
      testEvent(2, { id: 'x1', type: 'invoice.created' }),
      testEvent(3, { id: 'o2', type: 'order.created' }),
      testEvent(4, { id: 'o3', type: 'order.paid' }),
      testEvent(5, { id: 'o4', type: 'order.shipped.eu' }),
      testEvent(6, { id: 'o5', type: 'order.created' }),
    ]);
    await until(() => sink.delivered().includes('o5'), 20_000, 'o5 delivered');
    assert.deepEqual(sink.delivered(), ['o1', 'o3', 'o4', 'o5'], 'in offset order, filtered, o2 dead-lettered');
    assert.deepEqual(
      sink.received.map((r) => [r.id, r.answered]),
      [
        ['o1', 204],
        ['o2', 500],
        ['o2', 500],
        ['o2', 500],
        ['o3', 0],
        ['o3', 204],
        ['o4', 503],
        ['o4', 204],
        ['o5', 204],
      ],
      'one event in flight at a time; 3 attempts for o2; o3 retried after its timeout',
    );
    // Binary mode, readable by the cloudevents SDK, with the original attributes.
    const first = sink.received[0]!;
    assert.equal(first.headers['ce-note'], 'a%20b%25%22%C3%A9');
    assert.equal(first.headers['content-type'], 'text/plain');
    const ce = HTTP.toEvent({ headers: first.headers, body: first.body }) as unknown as { id: string; type: string; data: unknown; note: string };
    assert.equal(ce.id, 'o1');
    assert.equal(ce.type, 'order.created');
    assert.equal(ce.data, 'first');

    // The dead-letter Stream holds o2 with where it came from.
    const reader = new RawClient(dlq.url(0), dlq.tokens.full);
    const dead = await readAll(reader, 1);
    await reader.close();
    assert.equal(dead[0]!.event.id, 'o2');
    assert.equal(dead[0]!.event.optattrs.deadlettergroup, 'trigger:orders');
    assert.equal(dead[0]!.event.optattrs.deadletteroffset, '3');
    assert.equal(dead[0]!.event.optattrs.deadletterattempts, '3');
    assert.equal(dead[0]!.event.optattrs.deadlettererror, 'sink answered HTTP 500');

    // kill -9 while o6 is at the sink: after the restart it is delivered again, then o7.
    const atSink = new Promise<void>((resolve) => sink.events.on('request', (r) => r.id === 'o6' && resolve()));
    await cl.publish([testEvent(7, { id: 'o6', type: 'order.created' }), testEvent(8, { id: 'o7', type: 'order.created' })]);
    await atSink;
    await cl.close();
    await c.kill(0, 'SIGKILL');
    holdO6 = false;
    await c.startPartition(0);
    await until(() => sink.delivered().includes('o7'), 20_000, 'o7 delivered after the restart');
    const after = sink.delivered();
    assert.deepEqual(after.slice(after.indexOf('o6')), ['o6', 'o7'], 'o6 redelivered before o7, nothing lost');
    assert.equal(after.filter((id) => id === 'o5').length >= 1, true);
    assert.ok(!after.includes('x1'), 'the filter holds');
  } finally {
    await sink.close();
  }
});
