/**
 * Integration: every error of reference §1.6 (with our status-code fixes), the auth matrix with
 * live revocation, and start-up configuration errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { create, encodeEvent, encodePublishRequest, PipelineSubscribeRequestSchema, StreamSubscribeRequestSchema, toBinary } from '@hadron/proto';
import { GrpcStatusError, Status, signJwt } from '@hadron/core';
import { PIPELINE_SUBSCRIBE, PUBLISH, RawClient, STREAM_BIN, SUBSCRIBE, startStream, testEvent, tokenManifest, until } from '@hadron/testing';

async function status(p: Promise<unknown>): Promise<{ status: number; message: string; code: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GrpcStatusError) return { status: e.grpcStatus, message: e.message, code: e.code };
    throw e;
  }
  throw new Error('expected the call to fail');
}

/** Runs a subscribe/pipeline call with the given request messages and returns its final status. */
async function bidiStatus(cl: RawClient, method: string, msgs: Uint8Array[]): Promise<{ status: number; message: string; code: string }> {
  const call = cl.channel.bidi(method, { metadata: cl.metadata });
  for (const m of msgs) call.write(m);
  call.end();
  return status(
    (async () => {
      for await (const _ of call.incoming) {
        // drain
      }
    })(),
  );
}

const setup = (group: string, maxBatchSize: number) =>
  toBinary(StreamSubscribeRequestSchema, create(StreamSubscribeRequestSchema, { action: { case: 'setup', value: { groupName: group, maxBatchSize } } }));

test('the error catalogue of reference §1.6', async () => {
  await using c = await startStream({ partitions: 1 });
  c.writeManifest(
    'pipeline.yaml',
    `apiVersion: hadron.rs/v1beta1
kind: Pipeline
metadata: {name: known}
spec: {sourceStream: events, maxParallel: 1, startPoint: {location: beginning}, stages: [{name: only}]}
`,
  );
  const cl = new RawClient(c.url(0), c.tokens.full);
  assert.deepEqual(await status(cl.publish([])), { status: Status.INVALID_ARGUMENT, code: 'EMPTY_BATCH', message: 'validation error: entries batch was empty, no-op' });
  assert.deepEqual(await bidiStatus(cl, SUBSCRIBE, []), { status: Status.INVALID_ARGUMENT, code: 'INVALID_ARGUMENT', message: 'no subscription setup request received' });
  assert.deepEqual(await bidiStatus(cl, SUBSCRIBE, [new Uint8Array()]), { status: Status.INVALID_ARGUMENT, code: 'INVALID_ARGUMENT', message: 'no action variant received in request' });
  const ack = toBinary(StreamSubscribeRequestSchema, create(StreamSubscribeRequestSchema, { action: { case: 'ack', value: {} } }));
  assert.equal((await bidiStatus(cl, SUBSCRIBE, [ack])).message, 'invalid action variant received in request, expected `setup` variant');
  assert.equal((await bidiStatus(cl, SUBSCRIBE, [setup('', 1)])).message, 'subscriber group name may not be an empty string');
  assert.equal((await bidiStatus(cl, SUBSCRIBE, [setup('g', 0)])).message, 'subscriber batch size must be greater than 0');
  const pipe = (pipeline: string, stage: string) =>
    toBinary(PipelineSubscribeRequestSchema, create(PipelineSubscribeRequestSchema, { pipeline, action: { case: 'stageName', value: stage } }));
  const pipeNack = toBinary(PipelineSubscribeRequestSchema, create(PipelineSubscribeRequestSchema, { pipeline: 'known', action: { case: 'nack', value: 'x' } }));
  assert.equal((await bidiStatus(cl, PIPELINE_SUBSCRIBE, [pipeNack])).message, 'invalid action variant received in request, expected `StageName` variant');
  // The manifest reload is asynchronous: poll until the pipeline is known.
  let st = await bidiStatus(cl, PIPELINE_SUBSCRIBE, [pipe('known', 'ghost')]);
  for (let i = 0; i < 100 && st.status === Status.NOT_FOUND; i++) {
    await new Promise((r) => setTimeout(r, 50));
    st = await bidiStatus(cl, PIPELINE_SUBSCRIBE, [pipe('known', 'ghost')]);
  }
  assert.deepEqual(st, { status: Status.INVALID_ARGUMENT, code: 'INVALID_ARGUMENT', message: "pipeline subscriber stage name 'ghost' is unknown for pipeline known" });
  assert.deepEqual(await bidiStatus(cl, PIPELINE_SUBSCRIBE, [pipe('unknown', 'x')]), {
    status: Status.NOT_FOUND,
    code: 'NOT_FOUND',
    message: 'the target pipeline controller was not found',
  });
  await cl.close();
});

test('malformed requests, invalid events and oversized batches get clear errors and lose nothing', async () => {
  await using c = await startStream({ partitions: 1, env: { HADRON_MAX_MESSAGE_BYTES: String(1024 * 1024) } });
  const cl = new RawClient(c.url(0), c.tokens.full);
  await cl.publish([testEvent(1)]);
  const bad = await status(cl.publish([testEvent(2), testEvent(3, { type: '' })]));
  assert.deepEqual(bad, {
    status: Status.INVALID_ARGUMENT,
    code: 'INVALID_EVENT',
    message: 'invalid publish request: event 1 of the batch is invalid: required attribute type missing or empty',
  });
  const garbage = await status(cl.channel.unary(PUBLISH, Buffer.from([0x0a, 0x50, 0x01]), { metadata: cl.metadata }));
  assert.equal(garbage.code, 'MALFORMED_MESSAGE');
  assert.match(garbage.message, /length 80 runs past the end/);
  const big = Array.from({ length: 2000 }, (_, i) => testEvent(i, { data: Buffer.alloc(1024) }));
  const tooBig = await status(cl.publish(big));
  assert.equal(tooBig.status, Status.RESOURCE_EXHAUSTED);
  assert.equal(tooBig.code, 'MESSAGE_TOO_LARGE');
  assert.match(tooBig.message, /message of \d+ bytes exceeds the maximum message size of 1048576 bytes/);
  // nothing of the rejected requests was stored; the next offset is dense
  assert.deepEqual(await cl.publish([testEvent(4)]), { offset: 2, partition: 0 });
  // a batch just under the limit works
  const ok = await cl.publish(Array.from({ length: 900 }, (_, i) => testEvent(i, { data: Buffer.alloc(1024) })));
  assert.equal(ok.offset, 902);
  await cl.close();
});

test('auth matrix: UNAUTHENTICATED for bad credentials, PERMISSION_DENIED for missing permissions, live revocation', async () => {
  await using c = await startStream({ partitions: 1 });
  const url = c.url(0);
  const as = (token: string | undefined) => new RawClient(url, token);
  const ev = [testEvent(1)];

  const none = await status(as(undefined).publish(ev));
  assert.equal(none.status, Status.UNAUTHENTICATED);
  assert.match(none.message, /no `authorization` metadata/);

  const basic = new RawClient(url, undefined);
  const notBearer = await status(basic.channel.unary(PUBLISH, encodePublishRequest(ev.map(encodeEvent), true), { metadata: { authorization: 'basic dXNlcjpwYXNz' } }));
  assert.deepEqual(notBearer, {
    status: Status.UNAUTHENTICATED,
    code: 'UNAUTHENTICATED',
    message: "the given authorization credentials are malformed or invalid: authorization header value must begin with 'bearer '",
  });
  const empty = await status(basic.channel.unary(PUBLISH, encodePublishRequest(ev.map(encodeEvent), true), { metadata: { authorization: 'bearer' } }));
  assert.equal(empty.message, 'the given authorization credentials are malformed or invalid: no token detected in header');
  const junk = await status(as('not.a.jwt').publish(ev));
  assert.equal(junk.status, Status.UNAUTHENTICATED);
  assert.match(junk.message, /InvalidToken/);
  const forged = signJwt({ jti: 'x', sub: 't-full' }, Buffer.alloc(128, 1));
  assert.deepEqual(await status(as(forged).publish(ev)), {
    status: Status.UNAUTHENTICATED,
    code: 'UNAUTHENTICATED',
    message: 'the given authorization credentials are malformed or invalid: InvalidSignature',
  });
  const unknown = signJwt({ jti: 'x', sub: 'nobody' }, Buffer.alloc(128, 1));
  assert.equal((await status(as(unknown).publish(ev))).message, 'the given authorization token is unknown');

  // permissions
  assert.equal((await as(c.tokens.writer).publish(ev)).offset, 1);
  const capital = new RawClient(url, undefined);
  await capital.channel.unary(PUBLISH, encodePublishRequest(ev.map(encodeEvent), true), { metadata: { authorization: `Bearer ${c.tokens.writer}` } });
  const denied = await status(as(c.tokens.reader).publish(ev));
  assert.deepEqual(denied, {
    status: Status.PERMISSION_DENIED,
    code: 'PERMISSION_DENIED',
    message: "unauthorized to perform the requested action: token 't-reader' may not publish to stream 'events'",
  });
  const subDenied = await bidiStatus(as(c.tokens.none), SUBSCRIBE, [setup('g', 1)]);
  assert.equal(subDenied.status, Status.PERMISSION_DENIED);
  assert.match(subDenied.message, /may not subscribe to stream 'events'/);
  const readerSub = as(c.tokens.reader).subscribe({ group: 'r', start: { beginning: true } });
  assert.equal((await readerSub.next()).events[0]!.id, 'id-1');
  readerSub.close();
  const meta = as(c.tokens.none).metadataStream();
  assert.equal((await meta.next()).length, 1, 'metadata needs only a valid token');
  meta.call.cancel();

  // revocation: deleting the Token manifest revokes at once (after the reload)
  const writer = as(c.tokens.writer);
  c.removeManifest('token-writer.yaml');
  await until(async () => (await status(writer.publish(ev)).catch(() => ({ status: 0 }))).status === Status.UNAUTHENTICATED);
  assert.equal((await status(writer.publish(ev))).message, 'the given authorization token is unknown');
  // re-adding it restores access (same Secret, same key)
  c.writeManifest('token-writer.yaml', tokenManifest('t-writer', { streams: { pub: ['events'], sub: [] } }));
  await until(async () => writer.publish(ev).then(() => true, () => false));
  // deleting the Secret revokes too
  c.removeManifest('secret-writer.yaml');
  await until(async () => (await status(writer.publish(ev)).catch(() => ({ status: 0 }))).status === Status.UNAUTHENTICATED);
  // a permission change takes effect live
  const full = as(c.tokens.full);
  await full.publish(ev);
  c.writeManifest('token-full.yaml', tokenManifest('t-full', { streams: { pub: [], sub: ['events'] } }));
  await until(async () => (await status(full.publish(ev)).catch(() => ({ status: 0 }))).status === Status.PERMISSION_DENIED);
});

test('bad configuration stops start-up with a message naming the variable', () => {
  const base = {
    PATH: process.env.PATH,
    CLIENT_PORT: '0',
    SERVER_PORT: '0',
    METRICS_PORT: '0',
    NAMESPACE: 'default',
    STREAM: 'events',
    STATEFULSET: 'events',
    POD_NAME: 'events-0',
    HADRON_MANIFESTS: '/nonexistent',
  };
  const run = (env: Record<string, string | undefined>) => spawnSync(process.execPath, [STREAM_BIN], { env, encoding: 'utf8', timeout: 20_000 });
  const { CLIENT_PORT: _, ...noPort } = base;
  let r = run(noPort);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /CLIENT_PORT is required but not set/);
  r = run({ ...base, POD_NAME: 'events' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /POD_NAME "events" is an invalid pod name, expected offset suffix/);
  r = run({ ...base, RETENTION_POLICY_STRATEGY: 'forever' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /RETENTION_POLICY_STRATEGY must be one of time, retain, got "forever"/);
  r = run({ ...base, RETENTION_POLICY_RETENTION_SECONDS: 'ten' });
  assert.match(r.stderr, /RETENTION_POLICY_RETENTION_SECONDS must be an integer, got "ten"/);
  r = run({ ...base, METRICS_PORT: '99999' });
  assert.match(r.stderr, /METRICS_PORT must be ≤ 65535/);
});
