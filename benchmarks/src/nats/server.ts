/**
 * The peer: a Debian `nats-server` (2.9.10) with JetStream file storage in a temp dir, on
 * loopback, one per workload. Note for every number measured against it: 2.9.10 acknowledges a
 * publish once the message is in its write buffer and fsyncs on a 60 s timer (`sync_interval`
 * only exists from 2.10), so its acks are NOT durable the way Hadron's (after fdatasync) are.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StorageType, connect, type NatsConnection } from 'nats';
import { freePorts } from '@hadron/testing';
import { check, type WorkloadResult } from '../types.js';

export const NATS_ACK_NOTE = 'nats-server 2.9.10 acks before fsync (fsync every 60 s); Hadron acks after fdatasync';

export interface NatsBench {
  url: string;
  proc: ChildProcess;
  dir: string;
  /** Connection with the options the peer notes recommend for the Node client. */
  connect(): Promise<NatsConnection>;
  stop(): Promise<void>;
}

export async function startNats(): Promise<NatsBench> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nats-bench-'));
  const [port] = await freePorts(1);
  const conf = path.join(dir, 'nats.conf');
  fs.writeFileSync(
    conf,
    [
      `host: 127.0.0.1`,
      `port: ${port}`,
      `jetstream {`,
      `  store_dir: ${JSON.stringify(path.join(dir, 'js'))}`,
      `  max_memory_store: 1GB`,
      `  max_file_store: 64GB`,
      `}`,
      '',
    ].join('\n'),
  );
  const proc = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server not ready in 10 s:\n${output.join('')}`)), 10_000);
    const onData = (c: Buffer): void => {
      output.push(c.toString());
      if (output.join('').includes('Server is ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited during start-up:\n${output.join('')}`));
    });
  });
  const url = `nats://127.0.0.1:${port}`;
  return {
    url,
    proc,
    dir,
    connect: () => connect({ servers: url, noAsyncTraces: true, maxReconnectAttempts: 0 }),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `body` against a fresh nats-server and always stops it and removes its data. */
export async function withNats(body: (n: NatsBench) => Promise<WorkloadResult>): Promise<WorkloadResult> {
  const n = await startNats();
  try {
    const r = await body(n);
    return { ...r, notes: [...r.notes, NATS_ACK_NOTE] };
  } finally {
    await n.stop();
  }
}

export function streamName(i: number): string {
  return `bench${i}`;
}
export function subject(i: number): string {
  return `bench${i}.events`;
}

/**
 * Creates file-storage stream i (subjects `bench{i}.>`); on the cluster peer (nats/cluster.ts)
 * with `replicas` copies, optionally placed on the nodes carrying `tag` (cluster `bench`).
 */
export async function addStream(nc: NatsConnection, i: number, opts: { replicas?: number; tag?: string } = {}): Promise<void> {
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({
    name: streamName(i),
    subjects: [`bench${i}.>`],
    storage: StorageType.File,
    ...(opts.replicas !== undefined ? { num_replicas: opts.replicas } : {}),
    ...(opts.tag !== undefined ? { placement: { cluster: 'bench', tags: [opts.tag] } } : {}),
  });
}

export async function streamState(nc: NatsConnection, i: number): Promise<{ messages: number; lastSeq: number }> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(streamName(i));
  return { messages: info.state.messages, lastSeq: info.state.last_seq };
}

/**
 * A publish workload's check: stream i's last PubAck was `perStream`, and the stream holds exactly
 * that many messages, for every stream.
 */
export async function checkPublished(nc: NatsConnection, lastSeqs: readonly number[], perStream: number): Promise<void> {
  for (let i = 0; i < lastSeqs.length; i++) {
    check(lastSeqs[i] === perStream, `stream ${i}: last PubAck seq ${lastSeqs[i]} = ${perStream}`);
    const st = await streamState(nc, i);
    check(st.messages === perStream && st.lastSeq === perStream, `stream ${i} holds ${perStream} messages (has ${st.messages}, last seq ${st.lastSeq})`);
  }
}
