/**
 * Integration: resource bounds (issue 14 item 5) against real `hadron-stream` processes —
 * canonical tokens, group series cleanup, events per request, connection limits and timeouts,
 * in-flight request bytes and subscriber buffers. Every loop is bounded in count and time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { GrpcStatusError, Status } from '@hadron/core';
import { StreamSubscribeRequestSchema, create, toBinary } from '@hadron/proto';
import { PUBLISH, RawClient, SUBSCRIBE, startStream, testEvent, until, type TestStream } from '@hadron/testing';

async function metricsText(c: TestStream): Promise<string> {
  return (await fetch(`${c.metricsUrl(0)}/metrics`)).text();
}

/** Sum of all series of `name` (optionally only those whose labels contain `match`). */
async function metricSum(c: TestStream, name: string, match = ''): Promise<number> {
  const text = await metricsText(c);
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) if (m[1]!.includes(match)) sum += Number(m[2]);
  return sum;
}

async function failure(p: Promise<unknown>): Promise<GrpcStatusError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GrpcStatusError) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}

test('tokens: non-canonical spellings are refused with UNAUTHENTICATED and never cached', async () => {
  await using c = await startStream({ partitions: 1 });
  const token = c.tokens.full;
  const ok = new RawClient(c.url(0), token);
  assert.equal((await ok.publish([testEvent(1)])).offset, 1);
  const [h, p, s] = token.split('.') as [string, string, string];
  // Before the fix every one of these verified (Node's base64url decoder skips what it does not
  // know) and each took its own cache entry.
  const variants = [`${h}.${p}.${s.slice(0, 20)}*${s.slice(20)}`, `${h}.${p}.${s}==`, `${h}.${p}.${s}%%%%`, ` ${token}`, `${h}.${p}.${s.slice(0, 5)}\t${s.slice(5)}`];
  for (const v of variants) {
    const bad = new RawClient(c.url(0), v);
    try {
      const err = await failure(bad.publish([testEvent(2)]));
      assert.equal(err.grpcStatus, Status.UNAUTHENTICATED, `${v}: ${err.message}`);
    } finally {
      await bad.close();
    }
  }
  const big = new RawClient(c.url(0), `${token}${'A'.repeat(10_000)}`);
  const err = await failure(big.publish([testEvent(3)]));
  assert.equal(err.grpcStatus, Status.UNAUTHENTICATED);
  await big.close();
  // The canonical token still works, and nothing was appended by the refused calls.
  assert.equal((await ok.publish([testEvent(4)])).offset, 2);
  await ok.close();
});

test('metrics: 1,000 short-lived groups leave no per-group series behind', async () => {
  await using c = await startStream({ partitions: 1 });
  const cl = new RawClient(c.url(0), c.tokens.full);
  await cl.publish([testEvent(1), testEvent(2)]);
  const N = 1000;
  for (let i = 0; i < N; i++) {
    const sub = cl.subscribe({ group: `short-${i}`, maxBatchSize: 1, start: { beginning: true } });
    await sub.next();
    if (i % 2 === 0) sub.ack();
    else sub.nack('not now');
    sub.close();
  }
  const live = await cl.subscribe({ group: 'still-here', maxBatchSize: 1, start: { beginning: true } });
  await live.next();
  // Leaving is processed asynchronously by the server; wait until every short group is gone.
  const groups = async (): Promise<number> => metricSum(c, 'hadron_stream_subscriber_num_groups');
  await until(async () => (await groups()) === 1, 30_000, 'every short-lived group to end');
  const text = await metricsText(c);
  const leftovers = text.split('\n').filter((l) => l.includes('group="short-'));
  assert.deepEqual(leftovers.slice(0, 5), [], `${leftovers.length} series of ended groups remain`);
  assert.ok(text.includes('group="still-here"'), 'a live group keeps its series');
  live.close();
  await cl.close();
});

test('events per request: over the cap is TOO_MANY_EVENTS, nothing is stored, the server serves others', async () => {
  await using c = await startStream({ partitions: 1, env: { HADRON_MAX_EVENTS_PER_REQUEST: '1000' } });
  const cl = new RawClient(c.url(0), c.tokens.full);
  const err = await failure(cl.publish(Array.from({ length: 1001 }, (_, i) => testEvent(i))));
  assert.equal(err.grpcStatus, Status.RESOURCE_EXHAUSTED);
  assert.equal(err.code, 'TOO_MANY_EVENTS');
  assert.match(err.message, /more than 1000 events/);
  // Exactly at the cap is fine, and the refused batch left no trace.
  assert.equal((await cl.publish(Array.from({ length: 1000 }, (_, i) => testEvent(i)))).offset, 1000);
  assert.equal(await metricSum(c, 'hadron_stream_limit_rejections_total', 'limit="events_per_request"'), 1);
  await cl.close();
});

/**
 * Opens a raw TCP connection (optionally sending `send` once connected); `closed` resolves when
 * the connection ends either way (FIN or RST, also a reset that beats the connect callback).
 */
async function rawSocket(port: number, send?: Buffer): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await Promise.race([new Promise<void>((r) => socket.once('connect', () => r())), closed]);
  if (send && !socket.destroyed) socket.write(send);
  return { socket, closed };
}

/** Resolves when `p` settles, rejects if that takes longer than `ms` (a bound, not a measurement). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what} did not happen within ${ms} ms`)), ms).unref())]);
}

const portOf = (c: TestStream): number => Number(new URL(c.url(0)).port);

test('connections: silent and half-preface connections are closed, the limit refuses more, others are served', async () => {
  await using c = await startStream({
    partitions: 1,
    env: { HADRON_MAX_CONNECTIONS: '4', HADRON_HANDSHAKE_TIMEOUT_MS: '300', HADRON_IDLE_TIMEOUT_MS: '0' },
  });
  const port = portOf(c);
  // Slowloris: a silent TCP connection and one that sends half the HTTP/2 preface.
  const silent = await rawSocket(port);
  const half = await rawSocket(port, Buffer.from('PRI * HTTP/2.0\r\n'));
  await within(Promise.all([silent.closed, half.closed]), 10_000, 'the server closing connections without a handshake');
  assert.ok((await metricSum(c, 'hadron_stream_limit_rejections_total', 'limit="handshake_timeout"')) >= 2);
  // The connection limit: four open HTTP/2 connections (handshake done, so they stay), the
  // fifth is refused at accept.
  const held = await Promise.all(
    [0, 1, 2, 3].map(
      () =>
        new Promise<http2.ClientHttp2Session>((resolve, reject) => {
          const s = http2.connect(c.url(0));
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
  await until(async () => (await metricSum(c, 'hadron_stream_connections')) === 4, 5_000, 'four connections counted');
  const fifth = await rawSocket(port);
  await within(fifth.closed, 5_000, 'the fifth connection being refused');
  assert.equal(await metricSum(c, 'hadron_stream_limit_rejections_total', 'limit="connections"'), 1);
  assert.equal(await metricSum(c, 'hadron_stream_connections'), 4, 'the held connections are untouched');
  for (const h of held) h.destroy();
  await until(async () => (await metricSum(c, 'hadron_stream_connections')) === 0, 5_000, 'connections released');
  const cl = new RawClient(c.url(0), c.tokens.full);
  assert.equal((await cl.publish([testEvent(1)])).offset, 1, 'a well-behaved client is served');
  await cl.close();
});

test('timeouts: an idle connection gets GOAWAY; a request whose body never completes is cancelled', async () => {
  await using c = await startStream({
    partitions: 1,
    env: { HADRON_IDLE_TIMEOUT_MS: '500', HADRON_REQUEST_BODY_TIMEOUT_MS: '500' },
  });
  const session = http2.connect(c.url(0));
  session.on('error', () => undefined);
  const gone = new Promise<void>((r) => session.once('close', () => r()));
  // Headers and a partial message, never the rest: the call ends with DEADLINE_EXCEEDED.
  const req = session.request({ ':method': 'POST', ':path': PUBLISH, 'content-type': 'application/grpc', te: 'trailers', authorization: `bearer ${c.tokens.full}` });
  req.on('error', () => undefined);
  const status = new Promise<{ status: string; message: string }>((resolve) => {
    const pick = (h: http2.IncomingHttpHeaders): void => {
      if (h['grpc-status'] !== undefined) resolve({ status: String(h['grpc-status']), message: String(h['grpc-message'] ?? '') });
    };
    req.on('response', pick);
    req.on('trailers', pick);
  });
  req.write(Buffer.from([0, 0, 0, 1, 0, 1, 2, 3]));
  const st = await within(status, 10_000, 'the request-body timeout');
  assert.equal(st.status, String(Status.DEADLINE_EXCEEDED));
  assert.match(decodeURIComponent(st.message), /HADRON_REQUEST_BODY_TIMEOUT_MS/);
  // With its only stream gone the connection is idle, and the server closes it.
  await within(gone, 10_000, 'the idle connection being closed');
  assert.ok((await metricSum(c, 'hadron_stream_limit_rejections_total', 'limit="request_body_timeout"')) >= 1);
  assert.ok((await metricSum(c, 'hadron_stream_limit_rejections_total', 'limit="idle_timeout"')) >= 1);
  // Our client reconnects after a GOAWAY by itself.
  const cl = new RawClient(c.url(0), c.tokens.full);
  assert.equal((await cl.publish([testEvent(1)])).offset, 1);
  await until(async () => (await metricSum(c, 'hadron_stream_limit_rejections_total', 'limit="idle_timeout"')) >= 2, 10_000, 'the client connection idling out');
  assert.equal((await cl.publish([testEvent(2)])).offset, 2, 'the client reconnects after GOAWAY');
  await cl.close();
});

test('in-flight request bytes: unfinished large messages cannot together exceed the budget', async () => {
  const MiB = 1024 * 1024;
  await using c = await startStream({
    partitions: 1,
    env: { HADRON_MAX_MESSAGE_BYTES: String(MiB), HADRON_MAX_INFLIGHT_REQUEST_BYTES: String(2.5 * MiB), HADRON_REQUEST_BODY_TIMEOUT_MS: '60000' },
  });
  const session = http2.connect(c.url(0));
  session.on('error', () => undefined);
  const open = (): { req: http2.ClientHttp2Stream; status: Promise<string> } => {
    const req = session.request({ ':method': 'POST', ':path': PUBLISH, 'content-type': 'application/grpc', te: 'trailers', authorization: `bearer ${c.tokens.full}` });
    req.on('error', () => undefined);
    const status = new Promise<string>((resolve) => {
      const pick = (h: http2.IncomingHttpHeaders): void => {
        if (h['grpc-status'] !== undefined) resolve(`${String(h['grpc-status'])} ${String(h['hadron-error-code'] ?? '')}`);
      };
      req.on('response', pick);
      req.on('trailers', pick);
      req.on('close', () => resolve('closed'));
    });
    // A message header declaring 1 MiB, then half of it.
    const head = Buffer.alloc(5);
    head.writeUInt32BE(MiB, 1);
    req.write(Buffer.concat([head, Buffer.alloc(MiB / 2)]));
    return { req, status };
  };
  const a = open();
  const b = open();
  await until(async () => (await metricSum(c, 'hadron_stream_inflight_request_bytes')) === 2 * MiB, 10_000, 'two reservations');
  const third = open();
  assert.equal(await within(third.status, 10_000, 'the third request being refused'), `${Status.RESOURCE_EXHAUSTED} SERVER_BUSY`);
  assert.equal(await metricSum(c, 'hadron_stream_inflight_request_bytes'), 2 * MiB, 'the refused request holds nothing');
  assert.equal(await metricSum(c, 'hadron_stream_limit_rejections_total', 'limit="inflight_request_bytes"'), 1);
  a.req.close();
  b.req.close();
  await until(async () => (await metricSum(c, 'hadron_stream_inflight_request_bytes')) === 0, 10_000, 'reservations released');
  session.close();
  const cl = new RawClient(c.url(0), c.tokens.full);
  assert.equal((await cl.publish([testEvent(1, { data: Buffer.alloc(512 * 1024) })])).offset, 1, 'a publish fits again');
  await cl.close();
});

test('stalled subscribers: what the server buffers for them stays within the budget, and every group is served', async () => {
  const KiB = 1024;
  await using c = await startStream({
    partitions: 1,
    env: { HADRON_MAX_DELIVERY_BYTES: String(64 * KiB), HADRON_MAX_SUBSCRIBER_BUFFER_BYTES: String(512 * KiB), HADRON_ACK_DEADLINE_MS: '1000' },
  });
  const cl = new RawClient(c.url(0), c.tokens.full);
  for (let b = 0; b < 8; b++) await cl.publish(Array.from({ length: 64 }, (_, i) => testEvent(b * 64 + i, { data: Buffer.alloc(4 * KiB, i) })));
  // 20 groups whose only member takes one delivery and never acks. Before the fix each group
  // held its batch and a read-ahead (20 × 2 × 64 KiB = 2.5 MiB), with no bound across groups.
  const subs = Array.from({ length: 20 }, (_, i) => cl.subscribe({ group: `stalled-${i}`, maxBatchSize: 1000, start: { beginning: true } }));
  let served = 0;
  const all = Promise.all(subs.map((s) => s.next().then(() => served++)));
  let peak = 0;
  // Sample while groups wait for budget; the ack deadline gives stalled members' buffers back.
  await until(
    async () => {
      peak = Math.max(peak, await metricSum(c, 'hadron_stream_subscriber_buffered_bytes'));
      return served === subs.length;
    },
    30_000,
    'every stalled group to get its first delivery',
  );
  await all;
  assert.ok(peak > 0, 'the gauge reports what is held');
  assert.ok(peak <= 512 * KiB, `buffered ${peak} bytes > 512 KiB`);
  assert.ok((await metricSum(c, 'hadron_stream_subscriber_ack_timeouts_total')) >= 12, 'groups beyond the budget were served after ack deadlines freed it');
  for (const s of subs) s.close();
  await until(async () => (await metricSum(c, 'hadron_stream_subscriber_buffered_bytes')) === 0, 10_000, 'buffers released when the groups end');
  await cl.close();
});

test('a subscriber that stops reading at the HTTP/2 level is ended after the ack deadline; nothing stays buffered', async () => {
  await using c = await startStream({ partitions: 1, env: { HADRON_ACK_DEADLINE_MS: '500' } });
  const cl = new RawClient(c.url(0), c.tokens.full);
  await cl.publish(Array.from({ length: 128 }, (_, i) => testEvent(i, { data: Buffer.alloc(16 * 1024, i) })));
  // A client that never reads: its 64 KiB stream window fills and the server's write stays queued.
  const session = http2.connect(c.url(0));
  session.on('error', () => undefined);
  const req = session.request({ ':method': 'POST', ':path': SUBSCRIBE, 'content-type': 'application/grpc', te: 'trailers', authorization: `bearer ${c.tokens.full}` });
  req.on('error', () => undefined);
  const closed = new Promise<void>((r) => req.once('close', () => r()));
  req.pause();
  const setupMsg = toBinary(
    StreamSubscribeRequestSchema,
    create(StreamSubscribeRequestSchema, { action: { case: 'setup', value: { groupName: 'not-reading', maxBatchSize: 1000, startingPoint: { case: 'beginning', value: {} } } } }),
  );
  const head = Buffer.alloc(5);
  head.writeUInt32BE(setupMsg.length, 1);
  req.write(Buffer.concat([head, setupMsg]));
  await until(async () => (await metricSum(c, 'hadron_stream_subscriber_deliveries_total', 'group="not-reading"')) >= 1, 10_000, 'the delivery');
  // Before the fix the member went "stale" and its call — with its queued delivery — lived on.
  await within(closed, 20_000, 'the server ending the non-reading call');
  assert.equal(await metricSum(c, 'hadron_stream_subscriber_num_groups'), 0, 'its ephemeral group ended');
  assert.equal(await metricSum(c, 'hadron_stream_subscriber_buffered_bytes'), 0);
  session.destroy();
  await cl.close();
});
