/**
 * Integration: compatibility of the gRPC edge with clients written for the original (issue 14
 * items 6 and 13), seen through a raw node:http2 client so nothing is hidden by our channel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { METHOD, MetadataRequestSchema, PipelineSubscribeRequestSchema, StreamSubscribeRequestSchema, create, toBinary } from '@hadron/proto';
import { Status } from '@hadron/core';
import { frame } from '@hadron/core/grpc/framing';
import { startStream, until } from '@hadron/testing';

interface RawCall {
  req: http2.ClientHttp2Stream;
  /** The response HEADERS frame (or the trailers-only response). */
  headers: Promise<http2.IncomingHttpHeaders>;
}

/** Opens a gRPC call and nothing else: no message is sent before the caller decides to. */
function open(session: http2.ClientHttp2Session, path: string, token?: string): RawCall {
  const req = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...(token ? { authorization: `bearer ${token}` } : {}),
  });
  req.on('error', () => undefined);
  const headers = new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
    req.once('response', resolve);
    req.once('close', () => reject(new Error(`call ${path} closed without response headers`)));
  });
  headers.catch(() => undefined);
  return { req, headers };
}

function connect(url: string): http2.ClientHttp2Session {
  const session = http2.connect(url);
  // Errors surface through the calls' promises; the session's own error is only noise at teardown.
  session.on('error', () => undefined);
  return session;
}

test('method lookup does not walk the prototype: /__proto__, /constructor, /toString answer UNIMPLEMENTED', async () => {
  await using c = await startStream({ partitions: 1 });
  const session = connect(c.url(0));
  try {
    for (const path of ['/__proto__', '/constructor', '/toString', '/stream.StreamController/__proto__']) {
      const call = open(session, path, c.tokens.full);
      call.req.end(frame(new Uint8Array(0)));
      const h = await call.headers;
      assert.equal(h[':status'], 200, path);
      assert.equal(h['grpc-status'], String(Status.UNIMPLEMENTED), `${path}: ${String(h['grpc-message'])}`);
    }
    // The connection survived all of them.
    const ok = open(session, METHOD.metadata, c.tokens.full);
    ok.req.end(frame(toBinary(MetadataRequestSchema, create(MetadataRequestSchema))));
    assert.equal((await ok.headers)['grpc-status'], undefined);
    ok.req.close();
  } finally {
    session.close();
  }
});

test('streaming calls send response headers as soon as they are accepted, before any message', { timeout: 60_000 }, async () => {
  await using c = await startStream({ partitions: 1 });
  c.writeManifest(
    'pipeline.yaml',
    `apiVersion: hadron.rs/v1beta1
kind: Pipeline
metadata: {name: idle}
spec: {sourceStream: events, maxParallel: 1, startPoint: {location: latest}, triggers: [never.happens], stages: [{name: only}]}
`,
  );
  const session = connect(c.url(0));
  try {
    // StreamSubscribe, awaiting headers before anything else (as the original Rust client does),
    // then a setup for a new `latest` group: nothing to deliver, ever.
    const sub = open(session, METHOD.subscribe, c.tokens.full);
    const h1 = await sub.headers;
    assert.equal(h1[':status'], 200);
    assert.equal(h1['grpc-status'], undefined, 'not a trailers-only error');
    sub.req.write(
      frame(
        toBinary(
          StreamSubscribeRequestSchema,
          create(StreamSubscribeRequestSchema, { action: { case: 'setup', value: { groupName: 'new-latest', maxBatchSize: 1, startingPoint: { case: 'latest', value: {} } } } }),
        ),
      ),
    );

    // Metadata: headers first (the list follows separately).
    const md = open(session, METHOD.metadata, c.tokens.full);
    md.req.end(frame(toBinary(MetadataRequestSchema, create(MetadataRequestSchema))));
    const h2 = await md.headers;
    assert.equal(h2[':status'], 200);
    assert.equal(h2['grpc-status'], undefined);

    // PipelineSubscribe on a stage with no active instance. The pipeline manifest is loaded
    // asynchronously: until then the call is a trailers-only NOT_FOUND.
    let h3: http2.IncomingHttpHeaders = {};
    await until(
      async () => {
        const p = open(session, METHOD.pipelineSubscribe, c.tokens.full);
        p.req.write(frame(toBinary(PipelineSubscribeRequestSchema, create(PipelineSubscribeRequestSchema, { pipeline: 'idle', action: { case: 'stageName', value: 'only' } }))));
        h3 = await p.headers;
        if (h3['grpc-status'] !== undefined) return false;
        p.req.close();
        return true;
      },
      15_000,
      'the pipeline to be loaded',
    );
    assert.equal(h3[':status'], 200);

    // Bad credentials still get a trailers-only UNAUTHENTICATED, not early headers.
    const bad = open(session, METHOD.subscribe, 'not-a-token');
    const h4 = await bad.headers;
    assert.equal(h4['grpc-status'], String(Status.UNAUTHENTICATED));

    sub.req.close();
    md.req.close();
  } finally {
    session.close();
  }
});
