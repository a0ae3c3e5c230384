/**
 * The gRPC transport against itself and against @grpc/grpc-js (a standard gRPC client), so the
 * server stays interoperable with clients written for the original.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import grpc from '@grpc/grpc-js';
import { GrpcServer } from './server.js';
import { GrpcChannel } from './client.js';
import { GrpcStatusError, HadronError, Status } from '../errors.js';
import { silentLogger } from '../logger.js';

async function withServer(fn: (url: string, server: GrpcServer) => Promise<void>, maxMessageBytes = 1 << 20): Promise<void> {
  const server = new GrpcServer({
    logger: silentLogger,
    maxMessageBytes,
    methods: {
      '/t.S/Echo': { kind: 'unary', handler: async (req) => Buffer.concat([Buffer.from('echo:'), req]) },
      '/t.S/Fail': {
        kind: 'unary',
        handler: async () => {
          throw new HadronError('PERMISSION_DENIED', 'nope: ünïcode 100%');
        },
      },
      '/t.S/Slow': { kind: 'unary', handler: (req, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) },
      '/t.S/Count': {
        kind: 'serverStream',
        handler: async (req, call) => {
          for (let i = 0; i < Number(req.toString()); i++) await call.send(Buffer.from(String(i)));
        },
      },
      '/t.S/Chat': {
        kind: 'bidi',
        handler: async (call) => {
          for await (const m of call.incoming) await call.send(Buffer.from(m.toString().toUpperCase()));
        },
      },
    },
  });
  const port = await server.listen(0, '127.0.0.1');
  try {
    await fn(`http://127.0.0.1:${port}`, server);
  } finally {
    await server.close(100);
  }
}

test('unary, server-streaming and bidi calls work with our channel', async () => {
  await withServer(async (url) => {
    const ch = new GrpcChannel(url);
    assert.equal((await ch.unary('/t.S/Echo', Buffer.from('x'))).toString(), 'echo:x');
    const big = Buffer.alloc(500_000, 1);
    assert.equal((await ch.unary('/t.S/Echo', big)).length, big.length + 5);
    const got: string[] = [];
    for await (const m of ch.serverStream('/t.S/Count', Buffer.from('5')).incoming) got.push(m.toString());
    assert.deepEqual(got, ['0', '1', '2', '3', '4']);
    const chat = ch.bidi('/t.S/Chat');
    chat.write(Buffer.from('a'));
    chat.write(Buffer.from('b'));
    chat.end();
    const replies: string[] = [];
    for await (const m of chat.incoming) replies.push(m.toString());
    assert.deepEqual(replies, ['A', 'B']);
    await ch.close();
  });
});

test('errors carry status, message and the Hadron code; unknown methods are UNIMPLEMENTED', async () => {
  await withServer(async (url) => {
    const ch = new GrpcChannel(url);
    await assert.rejects(ch.unary('/t.S/Fail', Buffer.alloc(0)), (e: unknown) => {
      assert.ok(e instanceof GrpcStatusError);
      assert.equal(e.grpcStatus, Status.PERMISSION_DENIED);
      assert.equal(e.code, 'PERMISSION_DENIED');
      assert.equal(e.message, 'nope: ünïcode 100%');
      return true;
    });
    await assert.rejects(ch.unary('/t.S/Nope', Buffer.alloc(0)), { grpcStatus: Status.UNIMPLEMENTED });
    await ch.close();
  });
});

test('deadlines are enforced and oversized messages are refused without killing the server', async () => {
  await withServer(async (url) => {
    const ch = new GrpcChannel(url);
    await assert.rejects(ch.unary('/t.S/Slow', Buffer.alloc(0), { timeoutMs: 100 }), { code: 'DEADLINE_EXCEEDED' });
    await assert.rejects(ch.unary('/t.S/Echo', Buffer.alloc(2000)), (e: unknown) => {
      assert.ok(e instanceof GrpcStatusError);
      assert.equal(e.grpcStatus, Status.RESOURCE_EXHAUSTED);
      assert.match(e.message, /message of 2000 bytes exceeds the maximum message size of 1024 bytes/);
      return true;
    });
    assert.equal((await ch.unary('/t.S/Echo', Buffer.from('ok'))).toString(), 'echo:ok');
    await ch.close();
  }, 1024);
});

test('a connection failure is UNAVAILABLE and retriable', async () => {
  const ch = new GrpcChannel('http://127.0.0.1:1', { connectTimeoutMs: 1000 });
  await assert.rejects(ch.unary('/t.S/Echo', Buffer.alloc(0)), (e: unknown) => e instanceof HadronError && e.code === 'UNAVAILABLE' && e.retriable);
  await ch.close();
});

test('@grpc/grpc-js clients interoperate (unary, streaming, status details)', async () => {
  await withServer(async (url) => {
    const raw = { path: '', requestStream: false, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
    const Client = grpc.makeGenericClientConstructor(
      {
        Echo: { ...raw, path: '/t.S/Echo' },
        Fail: { ...raw, path: '/t.S/Fail' },
        Count: { ...raw, path: '/t.S/Count', responseStream: true },
      },
      't.S',
    );
    const client = new Client(url.replace('http://', ''), grpc.credentials.createInsecure()) as unknown as Record<string, (...a: unknown[]) => unknown> & grpc.Client;
    const echo = await new Promise<Buffer>((resolve, reject) => (client.Echo as Function)(Buffer.from('hi'), (err: Error | null, res: Buffer) => (err ? reject(err) : resolve(res))));
    assert.equal(echo.toString(), 'echo:hi');
    const err = await new Promise<grpc.ServiceError>((resolve) => (client.Fail as Function)(Buffer.alloc(0), (e: grpc.ServiceError) => resolve(e)));
    assert.equal(err.code, grpc.status.PERMISSION_DENIED);
    assert.equal(err.details, 'nope: ünïcode 100%');
    const items: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = (client.Count as Function)(Buffer.from('3')) as grpc.ClientReadableStream<Buffer>;
      s.on('data', (b: Buffer) => items.push(b.toString()));
      s.on('end', () => resolve());
      s.on('error', reject);
    });
    assert.deepEqual(items, ['0', '1', '2']);
    client.close();
  });
});
