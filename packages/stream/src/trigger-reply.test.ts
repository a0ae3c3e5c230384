/**
 * Integration: a Trigger's sink answers with CloudEvents (docs/http.md, "Replies"): binary and
 * structured replies are published to `spec.reply`; a reply that is not a valid CloudEvent is
 * counted and dropped while the delivery counts as done; an answer without a CloudEvent is no
 * reply. Two real Streams, a sink server in the test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RawClient, readAll, startStream, testEvent, tokenManifest, tokenSecret, until } from '@hadron/testing';

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

/** Answers each event id as planned; records the ids in arrival order. */
function replyingSink(): { seen: string[]; server: http.Server } {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const id = String(req.headers['ce-id']);
      seen.push(id);
      switch (id) {
        case 'r1': // binary-mode reply
          res.writeHead(200, { 'ce-specversion': '1.0', 'ce-id': 'reply-1', 'ce-source': '/billing', 'ce-type': 'invoice.created', 'ce-note': 'for%20r1', 'content-type': 'text/plain' }).end('invoice for r1');
          return;
        case 'r2': // structured-mode reply
          res.writeHead(201, { 'content-type': 'application/cloudevents+json' }).end(JSON.stringify({ specversion: '1.0', id: 'reply-2', source: '/billing', type: 'invoice.created', data: { for: 'r2' } }));
          return;
        case 'r3': // not a valid CloudEvent: no type
          res.writeHead(200, { 'content-type': 'application/cloudevents+json' }).end(JSON.stringify({ specversion: '1.0', id: 'reply-3', source: '/billing' }));
          return;
        default: // a plain answer: no reply
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      }
    });
  });
  return { seen, server };
}

test("a sink's CloudEvent replies go to the reply Stream; an invalid reply is counted and the delivery still done", async () => {
  const sink = replyingSink();
  await new Promise<void>((r) => sink.server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(sink.server.address() as AddressInfo).port}/`;
  const rt = tokenSecret('t-reply');
  const shared = { 'token-reply.yaml': tokenManifest('t-reply', { streams: { pub: ['answers'], sub: [] } }), 'secret-reply.yaml': rt.yaml };
  const trigger = `apiVersion: hadron.rs/v1beta1
kind: Trigger
metadata: {name: billing}
spec:
  sourceStream: events
  sink: {uri: '${url}'}
  startPoint: {location: beginning}
  retry: {maxAttempts: 3, backoffMs: 10, maxBackoffMs: 50}
  reply: {stream: answers, token: t-reply}
`;
  try {
    await using answers = await startStream({ stream: 'answers', manifests: shared });
    await using c = await startStream({ stream: 'events', manifests: { ...shared, 'trigger.yaml': trigger }, env: { HADRON_STREAM_URLS: `answers=${answers.url(0)}` } });
    const cl = new RawClient(c.url(0), c.tokens.full);
    await cl.publish(['r1', 'r2', 'r3', 'r4'].map((id, i) => testEvent(i + 1, { id, type: 'order.created' })));
    await cl.close();
    await until(async () => (await metric(c.metricsUrl(0), 'hadron_stream_subscriber_last_offset_processed{group="trigger:billing"')) >= 4, 20_000, 'all four deliveries acked');
    assert.deepEqual(sink.seen, ['r1', 'r2', 'r3', 'r4'], 'each event POSTed once: an invalid reply is not a reason to POST again');

    const reader = new RawClient(answers.url(0), answers.tokens.full);
    const got = await readAll(reader, 2);
    await reader.close();
    assert.deepEqual(
      got.map((g) => g.event.id),
      ['reply-1', 'reply-2'],
    );
    const [b, s] = [got[0]!.event, got[1]!.event];
    assert.equal(b.type, 'invoice.created');
    assert.equal(b.optattrs.note, 'for r1', 'binary-mode header percent-decoded');
    assert.equal(b.optattrs.datacontenttype, 'text/plain');
    assert.equal(Buffer.from(b.data).toString(), 'invoice for r1');
    assert.deepEqual(JSON.parse(Buffer.from(s.data).toString()), { for: 'r2' });
    assert.equal(s.optattrs.datacontenttype, 'application/json');

    const m = (outcome: string): Promise<number> => metric(c.metricsUrl(0), `hadron_stream_trigger_deliveries_total{trigger="billing",outcome="${outcome}"`);
    assert.equal(await m('replied'), 2);
    assert.equal(await m('reply_invalid'), 1);
    assert.equal(await m('delivered'), 4);
    // Nothing more is on the reply Stream: r3's invalid and r4's plain answers are not replies.
    assert.equal(await metric(answers.metricsUrl(0), 'hadron_stream_current_offset'), 2);
  } finally {
    sink.server.closeAllConnections();
    await new Promise<void>((r) => sink.server.close(() => r()));
  }
});
