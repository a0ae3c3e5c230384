/**
 * Integration (issue 14 item 11): long-lived calls — StreamSubscribe, PipelineSubscribe and the
 * Metadata stream — end with UNAUTHENTICATED when their Token or Secret is deleted, and when
 * their token's `exp` passes. Real partition processes with local manifests; every wait awaits
 * the call's end (no timed assertion).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GrpcStatusError, Status, newHmacKey, signJwt } from '@hadron/core';
import { RawClient, startStream, testEvent, tokenManifest, tokenSecret, until, type TestStream } from '@hadron/testing';

const PIPELINE = `apiVersion: hadron.rs/v1beta1
kind: Pipeline
metadata: {name: flow}
spec: {sourceStream: events, maxParallel: 4, startPoint: {location: beginning}, triggers: [], stages: [{name: only}]}
`;

/** Adds Token `name` (all permissions) with its Secret and waits until the server knows it. */
async function addToken(c: TestStream, name: string): Promise<{ key: Uint8Array; token: string }> {
  const key = newHmacKey();
  c.writeManifest(`token-${name}.yaml`, tokenManifest(name, { all: true }));
  const s = tokenSecret(name, key);
  c.writeManifest(`secret-${name}.yaml`, s.yaml);
  const probe = new RawClient(c.url(0), s.token);
  try {
    await until(() => probe.publish([testEvent(0)]).then(() => true, () => false), 15_000, `token ${name} to be loaded`);
  } finally {
    await probe.close();
  }
  return { key, token: s.token };
}

function assertUnauthenticated(err: unknown, re: RegExp): void {
  assert.ok(err instanceof GrpcStatusError, `expected a gRPC status error, got ${String(err)}`);
  assert.equal(err.grpcStatus, Status.UNAUTHENTICATED, err.message);
  assert.match(err.message, re);
}

/** Opens a subscription, a pipeline stage worker and a Metadata stream, each proven live. */
async function openLongLivedCalls(c: TestStream, cl: RawClient, publisher: RawClient) {
  const sub = cl.subscribe({ group: `g-${Math.random().toString(36).slice(2)}`, start: { beginning: true } });
  const stage = cl.pipelineStage('flow', 'only');
  const meta = cl.metadataStream();
  assert.equal((await meta.next()).length, 1);
  await publisher.publish([testEvent(1)]);
  assert.ok((await sub.next()).events.length >= 1);
  sub.ack();
  const d = await stage.next();
  assert.equal(d.stage, 'only');
  stage.ack(testEvent(100));
  const metaEnded = (async () => {
    try {
      for (;;) await meta.next();
    } catch (err) {
      return err;
    }
  })();
  const stageEnded = (async () => {
    try {
      for (;;) await stage.next();
    } catch (err) {
      return err;
    }
  })();
  return { sub, stage, meta, ended: () => Promise.all([sub.ended(), stageEnded, metaEnded]) };
}

test('deleting a Token ends its running subscriptions, pipeline subscriptions and Metadata streams with UNAUTHENTICATED; other tokens go on', { timeout: 60_000 }, async () => {
  await using c = await startStream({ partitions: 1 });
  c.writeManifest('pipeline.yaml', PIPELINE);
  const { token } = await addToken(c, 'doomed');
  const publisher = new RawClient(c.url(0), c.tokens.full);
  const cl = new RawClient(c.url(0), token);
  try {
    const calls = await openLongLivedCalls(c, cl, publisher);
    // A subscription under another token must survive the revocation.
    const other = publisher.subscribe({ group: 'survivor', start: { beginning: true } });
    assert.ok((await other.next()).events.length >= 1);
    other.ack();

    // Its publishes were verified once and are then served from the cache of verified headers.
    await cl.publish([testEvent(3)]);
    await cl.publish([testEvent(4)]);
    c.removeManifest('token-doomed.yaml');
    const [subErr, stageErr, metaErr] = await calls.ended();
    for (const err of [subErr, stageErr, metaErr]) assertUnauthenticated(err, /token 'doomed' was revoked: its Token was deleted/);
    // The server knows of the revocation (its calls ended): the very next publish is refused.
    await assert.rejects(cl.publish([testEvent(5)]), (err: unknown) => err instanceof GrpcStatusError && err.grpcStatus === Status.UNAUTHENTICATED && /token is unknown/.test(err.message));

    const metrics = await (await fetch(`${c.metricsUrl(0)}/metrics`)).text();
    for (const m of ['StreamSubscribe', 'PipelineSubscribe', 'Metadata']) assert.match(metrics, new RegExp(`hadron_auth_calls_ended_total\\{[^}]*method="/stream.StreamController/${m}"[^}]*\\} 1`));
    await publisher.publish([testEvent(2)]);
    for (;;) {
      const d = await other.next();
      other.ack();
      if (d.events.some((e) => e.id === 'id-2')) break;
    }
    other.close();
  } finally {
    await Promise.all([cl.close(), publisher.close()]);
  }
});

test('deleting a Token\'s Secret ends its running calls with UNAUTHENTICATED', { timeout: 60_000 }, async () => {
  await using c = await startStream({ partitions: 1 });
  c.writeManifest('pipeline.yaml', PIPELINE);
  const { token } = await addToken(c, 'doomed');
  const publisher = new RawClient(c.url(0), c.tokens.full);
  const cl = new RawClient(c.url(0), token);
  try {
    const calls = await openLongLivedCalls(c, cl, publisher);
    await cl.publish([testEvent(3)]);
    await cl.publish([testEvent(4)]); // served from the cache of verified headers
    c.removeManifest('secret-doomed.yaml');
    for (const err of await calls.ended()) assertUnauthenticated(err, /token 'doomed' was revoked: its Secret was deleted or replaced/);
    await assert.rejects(cl.publish([testEvent(5)]), (err: unknown) => err instanceof GrpcStatusError && err.grpcStatus === Status.UNAUTHENTICATED && /token is unknown/.test(err.message));
  } finally {
    await Promise.all([cl.close(), publisher.close()]);
  }
});

test('a running subscription, pipeline subscription and Metadata stream end with UNAUTHENTICATED when the token\'s exp passes', { timeout: 60_000 }, async () => {
  await using c = await startStream({ partitions: 1 });
  c.writeManifest('pipeline.yaml', PIPELINE);
  const { key } = await addToken(c, 'short');
  const publisher = new RawClient(c.url(0), c.tokens.full);
  // Valid now, expiring (with the 5 s leeway) a few seconds from now.
  const token = signJwt({ jti: 'short-lived', sub: 'short', exp: Math.floor(Date.now() / 1000) + 3 }, key);
  const cl = new RawClient(c.url(0), token);
  try {
    const calls = await openLongLivedCalls(c, cl, publisher);
    for (const err of await calls.ended()) assertUnauthenticated(err, /ExpiredSignature/);
    // And new calls with it are refused.
    await assert.rejects(cl.publish([testEvent(9)]), (err: unknown) => err instanceof GrpcStatusError && err.grpcStatus === Status.UNAUTHENTICATED);
  } finally {
    await Promise.all([cl.close(), publisher.close()]);
  }
});
