/**
 * Integration: the CloudEvents HTTP ingress of real `hadron-stream` processes (docs/http.md).
 * The `cloudevents` SDK produces the binary, structured and batched requests; raw requests test
 * every error; events are read back over gRPC.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CloudEvent, HTTP } from 'cloudevents';
import { createCertificate, createCertificateAuthority } from '@hadron/core';
import { partitionOf } from '@hadron/proto';
import { RawClient, readAll, startStream } from '@hadron/testing';

interface Answer {
  status: number;
  headers: Headers;
  body: { events?: Array<{ id: string; partition: number; offset: number }>; code?: string; message?: string };
}

async function post(url: string, opts: { headers?: Record<string, string>; body?: string | Buffer; token?: string; method?: string; path?: string }): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  const res = await fetch(`${url}${opts.path ?? '/'}`, { method: opts.method ?? 'POST', headers, ...(opts.body !== undefined ? { body: opts.body } : {}) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? {} : (JSON.parse(text) as Answer['body']) };
}

const batchOf = (events: CloudEvent<unknown>[]): string => `[${events.map((e) => HTTP.structured(e).body as string).join(',')}]`;

test('the cloudevents SDK publishes in binary, structured and batched mode; events read back intact', async () => {
  await using c = await startStream({ partitions: 1 });
  const url = c.httpUrl(0);
  const tok = c.tokens.writer;

  const bin = HTTP.binary(new CloudEvent({ id: 'b1', source: '/sdk', type: 'order.created', data: { n: 1 }, orderkind: 'web', time: '2026-11-29T20:00:00Z' }));
  const r1 = await post(url, { headers: bin.headers as Record<string, string>, body: bin.body as string, token: tok });
  assert.equal(r1.status, 200, JSON.stringify(r1.body));
  assert.deepEqual(r1.body.events, [{ id: 'b1', partition: 0, offset: 1 }]);

  const st = HTTP.structured(new CloudEvent({ id: 's1', source: '/sdk', type: 'blob', datacontenttype: 'application/octet-stream', data: Buffer.from([0, 1, 2, 255]) }));
  const r2 = await post(url, { headers: st.headers as Record<string, string>, body: st.body as string, token: tok });
  assert.equal(r2.status, 200, JSON.stringify(r2.body));
  assert.deepEqual(r2.body.events, [{ id: 's1', partition: 0, offset: 2 }]);

  const batch = [0, 1, 2].map((i) => new CloudEvent({ id: `k${i}`, source: '/sdk', type: 'text', datacontenttype: 'text/plain', data: `hello ${i}` }));
  const r3 = await post(url, { headers: { 'content-type': 'application/cloudevents-batch+json' }, body: batchOf(batch), token: tok });
  assert.equal(r3.status, 200, JSON.stringify(r3.body));
  assert.deepEqual(r3.body.events?.map((e) => e.offset), [3, 4, 5]);

  const cl = new RawClient(c.url(0), c.tokens.full);
  const all = await readAll(cl, 5);
  await cl.close();
  const [b, s, ...t] = all.map((e) => e.event);
  assert.equal(b!.type, 'order.created');
  assert.equal(b!.optattrs.orderkind, 'web');
  assert.equal(b!.optattrs.time, '2026-11-29T20:00:00.000Z');
  assert.match(b!.optattrs.datacontenttype ?? '', /^application\/json/);
  assert.deepEqual(JSON.parse(Buffer.from(b!.data).toString()), { n: 1 });
  assert.deepEqual(Buffer.from(s!.data), Buffer.from([0, 1, 2, 255]), 'data_base64 is stored as the decoded bytes');
  assert.equal(s!.optattrs.datacontenttype, 'application/octet-stream');
  assert.deepEqual(t.map((e) => Buffer.from(e.data).toString()), ['hello 0', 'hello 1', 'hello 2']);

  // The SDK reads a stored event back into the same CloudEvent it sent.
  const back = HTTP.toEvent({ headers: { 'content-type': 'application/json', 'ce-id': b!.id, 'ce-source': b!.source, 'ce-type': b!.type, 'ce-specversion': '1.0' }, body: Buffer.from(b!.data).toString() }) as CloudEvent<{ n: number }>;
  assert.deepEqual(back.data, { n: 1 });
});

test('every invalid request is refused with a status and a message naming the problem; nothing is stored', async () => {
  await using c = await startStream({ partitions: 3, env: { HADRON_MAX_MESSAGE_BYTES: '4096' } });
  const url = c.httpUrl(0);
  const tok = c.tokens.writer;
  const ce = { 'ce-specversion': '1.0', 'ce-id': 'x1', 'ce-source': '/raw', 'ce-type': 't' };
  const cases: Array<{ name: string; req: Parameters<typeof post>[1]; status: number; code: string; message: RegExp }> = [
    { name: 'no token', req: { headers: ce, body: 'x' }, status: 401, code: 'UNAUTHENTICATED', message: /no `authorization`/ },
    { name: 'bad token', req: { headers: ce, body: 'x', token: 'not.a.jwt' }, status: 401, code: 'UNAUTHENTICATED', message: /malformed or invalid/ },
    { name: 'read-only token', req: { headers: ce, body: 'x', token: c.tokens.reader }, status: 403, code: 'PERMISSION_DENIED', message: /pub/ },
    { name: 'no ce-specversion', req: { headers: { 'ce-id': 'a', 'ce-source': 's', 'ce-type': 't' }, body: 'x', token: tok }, status: 400, code: 'INVALID_EVENT', message: /ce-specversion/ },
    { name: 'no ce-id', req: { headers: { ...ce, 'ce-id': '' }, body: 'x', token: tok }, status: 400, code: 'INVALID_EVENT', message: /required attribute id missing/ },
    { name: 'wrong specversion', req: { headers: { ...ce, 'ce-specversion': '0.3' }, body: 'x', token: tok }, status: 400, code: 'INVALID_EVENT', message: /specversion must be "1.0"/ },
    { name: 'bad extension name', req: { headers: { ...ce, 'ce-my_ext': 'v' }, body: 'x', token: tok }, status: 400, code: 'INVALID_EVENT', message: /"my_ext" must consist of lower-case letters/ },
    { name: 'bad percent-encoding', req: { headers: { ...ce, 'ce-subject': 'a%zz' }, body: 'x', token: tok }, status: 400, code: 'INVALID_EVENT', message: /ce-subject: invalid percent-encoding/ },
    { name: 'structured not JSON', req: { headers: { 'content-type': 'application/cloudevents+json' }, body: '{"id":', token: tok }, status: 400, code: 'MALFORMED_MESSAGE', message: /not valid JSON/ },
    { name: 'structured missing type', req: { headers: { 'content-type': 'application/cloudevents+json' }, body: '{"specversion":"1.0","id":"a","source":"s"}', token: tok }, status: 400, code: 'INVALID_EVENT', message: /required attribute type missing/ },
    { name: 'data and data_base64', req: { headers: { 'content-type': 'application/cloudevents+json' }, body: '{"specversion":"1.0","id":"a","source":"s","type":"t","data":1,"data_base64":"AA=="}', token: tok }, status: 400, code: 'INVALID_EVENT', message: /both data and data_base64/ },
    { name: 'bad base64', req: { headers: { 'content-type': 'application/cloudevents+json' }, body: '{"specversion":"1.0","id":"a","source":"s","type":"t","data_base64":"AA*A"}', token: tok }, status: 400, code: 'INVALID_EVENT', message: /data_base64 must be a padded base64 string/ },
    { name: 'object attribute', req: { headers: { 'content-type': 'application/cloudevents+json' }, body: '{"specversion":"1.0","id":"a","source":"s","type":"t","ext":{}}', token: tok }, status: 400, code: 'INVALID_EVENT', message: /attribute "ext" must be a string/ },
    { name: 'batch not an array', req: { headers: { 'content-type': 'application/cloudevents-batch+json' }, body: '{}', token: tok }, status: 400, code: 'INVALID_EVENT', message: /JSON array/ },
    { name: 'empty batch', req: { headers: { 'content-type': 'application/cloudevents-batch+json' }, body: '[]', token: tok }, status: 400, code: 'EMPTY_BATCH', message: /empty/ },
    {
      name: 'one bad event spoils the batch',
      req: { headers: { 'content-type': 'application/cloudevents-batch+json' }, body: '[{"specversion":"1.0","id":"a","source":"s","type":"t"},{"specversion":"1.0","id":"b","source":"s"}]', token: tok },
      status: 400,
      code: 'INVALID_EVENT',
      message: /event 1 of the batch: required attribute type/,
    },
    { name: 'body too large', req: { headers: ce, body: Buffer.alloc(5000), token: tok }, status: 413, code: 'MESSAGE_TOO_LARGE', message: /exceeds the limit of 4096 bytes/ },
    { name: 'bad fsync', req: { headers: ce, body: 'x', token: tok, path: '/?fsync=maybe' }, status: 400, code: 'INVALID_ARGUMENT', message: /fsync must be true or false/ },
    { name: 'wrong path', req: { headers: ce, body: 'x', token: tok, path: '/events' }, status: 404, code: 'NOT_FOUND', message: /POST CloudEvents to \// },
    { name: 'GET', req: { token: tok, method: 'GET' }, status: 405, code: 'INVALID_ARGUMENT', message: /method GET not allowed/ },
  ];
  // Two keys that hash to different partitions of 3.
  const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'];
  const p0 = partitionOf({ id: '', source: '', optattrs: { partitionkey: keys[0]! } }, 3);
  const other = keys.find((k) => partitionOf({ id: '', source: '', optattrs: { partitionkey: k } }, 3) !== p0)!;
  cases.push({
    name: 'batch across partitions',
    req: {
      headers: { 'content-type': 'application/cloudevents-batch+json' },
      body: JSON.stringify([
        { specversion: '1.0', id: 'a', source: 's', type: 't', partitionkey: keys[0] },
        { specversion: '1.0', id: 'b', source: 's', type: 't', partitionkey: other },
      ]),
      token: tok,
    },
    status: 400,
    code: 'INVALID_ARGUMENT',
    message: /the batch spans partitions/,
  });
  for (const k of cases) {
    const r = await post(url, k.req);
    assert.equal(r.status, k.status, `${k.name}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.code, k.code, k.name);
    assert.match(r.body.message ?? '', k.message, k.name);
    if (k.status === 401) assert.equal(r.headers.get('www-authenticate'), 'Bearer', k.name);
  }
  // Nothing was stored anywhere: a valid event now gets offset 1 on its partition.
  const ok = await post(url, { headers: { ...ce, 'ce-partitionkey': 'k0' }, body: 'x', token: tok });
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.body.events, [{ id: 'x1', partition: p0, offset: 1 }]);
});

test('keyed events land on the partition the hash chooses, whichever pod received them (HTTP/1.1 and h2c)', async () => {
  await using c = await startStream({ partitions: 3 });
  const tok = c.tokens.writer;
  const sent: Array<{ key: string; id: string; via: number }> = [];
  for (let i = 0; i < 12; i++) {
    const key = `customer-${i % 4}`;
    const via = i % 3;
    const headers = { 'ce-specversion': '1.0', 'ce-id': `e${i}`, 'ce-source': '/placement', 'ce-type': 't', 'ce-partitionkey': key, 'content-type': 'text/plain' };
    const r = await post(c.httpUrl(via), { headers, body: `n${i}`, token: tok });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.events![0]!.partition, partitionOf({ id: '', source: '', optattrs: { partitionkey: key } }, 3), `e${i} placed by the hash`);
    sent.push({ key, id: `e${i}`, via });
  }
  // h2c with prior knowledge on the same port; `subject` keys too.
  const session = http2.connect(c.httpUrl(1));
  const h2post = (subject: string, id: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const s = session.request({ ':method': 'POST', ':path': '/?fsync=false', authorization: `bearer ${tok}`, 'ce-specversion': '1.0', 'ce-id': id, 'ce-source': '/h2', 'ce-type': 't', 'ce-subject': subject });
      let body = '';
      let status = 0;
      s.on('response', (h) => (status = Number(h[':status'])));
      s.on('data', (d: Buffer) => (body += d.toString()));
      s.on('end', () => resolve({ status, body }));
      s.on('error', reject);
      s.end('h2 body');
    });
  const h = await h2post('customer-0', 'h2-0');
  session.close();
  assert.equal(h.status, 200, h.body);
  const hp = (JSON.parse(h.body) as Answer['body']).events![0]!.partition;
  assert.equal(hp, partitionOf({ id: '', source: '', optattrs: { subject: 'customer-0' } }, 3));
  sent.push({ key: 'customer-0', id: 'h2-0', via: 1 });
  // Read every partition back: each key's events are on its partition, in the order sent.
  for (let p = 0; p < 3; p++) {
    const expected = sent.filter((s) => partitionOf({ id: '', source: '', optattrs: { partitionkey: s.key } }, 3) === p).map((s) => s.id);
    if (expected.length === 0) continue;
    const cl = new RawClient(c.url(p), c.tokens.full);
    const got = (await readAll(cl, expected.length)).map((e) => e.event.id);
    await cl.close();
    assert.deepEqual(got, expected, `partition ${p}`);
  }
});

test('too many requests in flight are refused with 429 and Retry-After; then accepted again', async () => {
  await using c = await startStream({ partitions: 1, env: { HADRON_HTTP_MAX_INFLIGHT: '1' } });
  const port = Number(new URL(c.httpUrl(0)).port);
  // Holds the one slot: headers sent, body still owed.
  const hold = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => hold.once('connect', () => r()));
  hold.write(`POST / HTTP/1.1\r\nhost: x\r\nauthorization: bearer ${c.tokens.writer}\r\nce-specversion: 1.0\r\nce-id: held\r\nce-source: /s\r\nce-type: t\r\ncontent-length: 4\r\n\r\n`);
  const ce = { 'ce-specversion': '1.0', 'ce-id': 'y', 'ce-source': '/s', 'ce-type': 't' };
  let r: Answer | undefined;
  // The held request becomes "in flight" once its headers are parsed: poll until it is refused.
  for (let i = 0; i < 200 && r?.status !== 429; i++) {
    r = await post(c.httpUrl(0), { headers: { ...ce, 'ce-id': `y${i}` }, body: 'x', token: c.tokens.writer });
    if (r.status !== 429) await new Promise((res) => setTimeout(res, 10));
  }
  assert.equal(r?.status, 429);
  assert.equal(r.headers.get('retry-after'), '1');
  assert.equal(r.body.code, 'SERVER_BUSY');
  const answered = new Promise<string>((resolve) => {
    let buf = '';
    hold.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('"events"')) resolve(buf);
    });
  });
  hold.write('body');
  assert.match(await answered, /^HTTP\/1.1 200/);
  hold.destroy();
  const after = await post(c.httpUrl(0), { headers: { ...ce, 'ce-id': 'after' }, body: 'x', token: c.tokens.writer });
  assert.equal(after.status, 200);
});

test('with TLS the ingress serves HTTPS with the client port certificate and forwards to the owner over TLS', async () => {
  const ca = createCertificateAuthority('ingress-ca');
  const leaf = createCertificate({ commonName: 'events', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], issuer: ca });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-ingress-tls-'));
  fs.writeFileSync(path.join(dir, 'tls.crt'), leaf.cert);
  fs.writeFileSync(path.join(dir, 'tls.key'), leaf.key);
  fs.writeFileSync(path.join(dir, 'ca.crt'), ca.cert);
  try {
    await using c = await startStream({ partitions: 2, env: { HADRON_TLS_CERT_FILE: path.join(dir, 'tls.crt'), HADRON_TLS_KEY_FILE: path.join(dir, 'tls.key') } });
    // A key owned by partition 1, sent to partition 0: forwarded over TLS.
    const key = ['a', 'b', 'c', 'd', 'e', 'f'].find((k) => partitionOf({ id: '', source: '', optattrs: { partitionkey: k } }, 2) === 1)!;
    const port = Number(new URL(c.httpUrl(0)).port);
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port, path: '/', method: 'POST', ca: ca.cert, headers: { authorization: `bearer ${c.tokens.writer}`, 'ce-specversion': '1.0', 'ce-id': 'tls-1', 'ce-source': '/tls', 'ce-type': 't', 'ce-partitionkey': key } },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end('over tls');
    });
    assert.equal(answer.status, 200, answer.body);
    assert.deepEqual((JSON.parse(answer.body) as Answer['body']).events, [{ id: 'tls-1', partition: 1, offset: 1 }]);
    // Cleartext is not served on a TLS port.
    await assert.rejects(fetch(`${c.httpUrl(0)}/`, { method: 'POST' }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
