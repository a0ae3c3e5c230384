/**
 * A channel whose peer goes silent: the process frozen (SIGSTOP — the kernel still holds its
 * sockets, so nothing is closed), or its listen queue full so a connection never completes (a
 * SYN into a black hole, as to a deleted pod's IP behind a Service). Calls must fail UNAVAILABLE
 * (retriable, "reconnect") well before their deadline, and the channel must reconnect for the
 * next call — not hold calls on a dead connection until each one's deadline expires.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { GrpcChannel } from './client.js';
import { HadronError } from '../errors.js';

/** A child process running the real GrpcServer (one unary method answering empty); prints its port. */
const SERVER_MODULE = new URL('./server.js', import.meta.url).href;
const LOGGER_MODULE = new URL('../logger.js', import.meta.url).href;
const SERVER = `
const { GrpcServer } = await import(${JSON.stringify(SERVER_MODULE)});
const { silentLogger } = await import(${JSON.stringify(LOGGER_MODULE)});
const s = new GrpcServer({ logger: silentLogger, methods: { '/t.S/Echo': { kind: 'unary', handler: async () => Buffer.alloc(0) } } });
console.log(await s.listen(0, '127.0.0.1'));
`;

/** A bare TCP listener (frozen before anything is accepted); argv[1] is its listen backlog. */
const LISTENER = `
const s = require('node:net').createServer();
s.listen({ port: 0, host: '127.0.0.1', backlog: Number(process.argv[1] ?? 511) }, () => console.log(s.address().port));
`;

async function startChild(script = SERVER, args: string[] = ['--input-type=module'], argv: string[] = []): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [...args, '-e', script, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, port: Number(line.toString().trim()) };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

test('an established connection to a frozen peer fails the call UNAVAILABLE (PING unanswered), not at its deadline; the next call reconnects', async (t) => {
  const { child, port } = await startChild();
  t.after(() => stopChild(child));
  const ch = new GrpcChannel(`http://127.0.0.1:${port}`, { keepaliveMs: 200, keepaliveTimeoutMs: 500 });
  t.after(() => ch.close());
  assert.equal((await ch.unary('/t.S/Echo', Buffer.alloc(0), { timeoutMs: 5000 })).length, 0, 'served while alive');
  child.kill('SIGSTOP');
  t.after(() => child.kill('SIGCONT'));
  await assert.rejects(ch.unary('/t.S/Echo', Buffer.alloc(0), { timeoutMs: 30_000 }), (e: HadronError) => {
    assert.equal(e.code, 'UNAVAILABLE', `${e.code}: ${e.message}`);
    assert.match(e.message, /no answer to an HTTP\/2 PING within 500 ms/);
    return true;
  });
  // The peer wakes up (a new process would do the same): the next call opens a new connection.
  child.kill('SIGCONT');
  assert.equal((await ch.unary('/t.S/Echo', Buffer.alloc(0), { timeoutMs: 5000 })).length, 0, 'served after reconnecting');
});

test('a call that opens a connection which never completes fails UNAVAILABLE after connectTimeoutMs, not at its deadline', async (t) => {
  // A frozen listener: the kernel completes the TCP handshake, but no HTTP/2 SETTINGS ever come.
  const { child, port } = await startChild(LISTENER, []);
  t.after(() => stopChild(child));
  child.kill('SIGSTOP');
  t.after(() => child.kill('SIGCONT'));
  const ch = new GrpcChannel(`http://127.0.0.1:${port}`, { connectTimeoutMs: 500 });
  t.after(() => ch.close());
  // No connect() first: the call itself opens the connection (as a retried publish or a
  // subscription does after the previous connection went away).
  await assert.rejects(ch.unary('/t.S/Echo', Buffer.alloc(0), { timeoutMs: 30_000 }), (e: HadronError) => {
    assert.equal(e.code, 'UNAVAILABLE', `${e.code}: ${e.message}`);
    assert.match(e.message, /could not connect to http:\/\/127\.0\.0\.1:\d+ within 500 ms/);
    return true;
  });
  // The dead session is dropped (its 'close' may follow the call's failure by a tick).
  if (ch.state !== 'idle') await once(ch, 'state');
  assert.equal(ch.state, 'idle', 'the dead session was dropped; the next call reconnects');
});

test('connect() to an address whose SYNs go unanswered fails UNAVAILABLE after connectTimeoutMs (the reconnect loop must not wait for TCP to give up)', async (t) => {
  // A frozen listener with a full accept queue drops further SYNs: on loopback this is the black
  // hole a client sees when it connects to a Service address still pointing at a deleted pod.
  const { child, port } = await startChild(LISTENER, [], ['1']);
  t.after(() => stopChild(child));
  child.kill('SIGSTOP');
  t.after(() => child.kill('SIGCONT'));
  const fillers: net.Socket[] = [];
  t.after(() => fillers.forEach((s) => s.destroy()));
  // Fill the queue: connect one socket at a time until one stays in SYN-SENT.
  for (let i = 0; i < 64; i++) {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('error', () => undefined);
    fillers.push(s);
    const connected = await Promise.race([once(s, 'connect').then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 300))]);
    if (!connected) break;
    assert.ok(i < 63, 'the accept queue never filled');
  }
  const ch = new GrpcChannel(`http://127.0.0.1:${port}`, { connectTimeoutMs: 500 });
  t.after(() => ch.close());
  // Bounded so that, without the fix, the test fails instead of waiting for TCP's SYN retries (minutes).
  await assert.rejects(ch.connect(AbortSignal.timeout(15_000)), (e: HadronError) => {
    assert.equal(e.code, 'UNAVAILABLE', `${String(e.code)}: ${e.message}`);
    assert.match(e.message, /could not connect to http:\/\/127\.0\.0\.1:\d+ within 500 ms/);
    return true;
  });
  assert.equal(ch.state, 'idle', 'the channel dropped the dead session at once');
});
