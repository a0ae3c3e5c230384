/**
 * The second peer's broker: one Kafka 3.9 KRaft node (broker and controller in one JVM) on
 * loopback, storage in a temp dir, one per workload, started with `java -cp` from the jars
 * `install.ts` fetched. Two configurations, as the issue asks:
 *  - `default`: as Kafka is deployed by default — the producer's acks=all, and the broker leaves
 *    flushing to the OS (no fsync before the ack);
 *  - `fsync`: `log.flush.interval.messages=1` (the broker-wide `flush.messages=1`): every append
 *    is fsynced before it is acknowledged, like Hadron's `fsync: true` (per produce batch, since
 *    the broker appends a batch at once).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from '@hadron/testing';
import type { WorkloadResult } from '../types.js';
import { KAFKA_VERSION, kafkaClasspath } from './install.js';

export type KafkaMode = 'default' | 'fsync';

export const KAFKA_NOTE: Record<KafkaMode, string> = {
  default: `Kafka ${KAFKA_VERSION} as deployed by default: acks=all, no fsync before the ack (the OS flushes)`,
  fsync: `Kafka ${KAFKA_VERSION} with flush.messages=1: each appended batch fsynced before the ack, like Hadron`,
};

export interface KafkaBench {
  bootstrap: string;
  classpath: string;
  dir: string;
  stop(): Promise<void>;
}

/** Runs a Java main class from the Kafka jars; resolves with its exit code and output. */
export function runJava(classpath: string, main: string, args: string[], opts: { heap?: string; timeoutMs: number }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn('java', [`-Xmx${opts.heap ?? '512M'}`, '-cp', classpath, main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${main} did not finish within ${opts.timeoutMs} ms:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`));
    }, opts.timeoutMs);
    proc.once('error', reject);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export async function startKafka(mode: KafkaMode): Promise<KafkaBench> {
  const classpath = kafkaClasspath();
  if (!classpath) throw new Error('the Kafka jars are not installed (run.js installs them before the workloads)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kafka-bench-'));
  const [port, controllerPort] = await freePorts(2);
  const conf = path.join(dir, 'server.properties');
  fs.writeFileSync(
    conf,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      `log.dirs=${path.join(dir, 'data')}`,
      'num.partitions=1',
      'offsets.topic.replication.factor=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'auto.create.topics.enable=false',
      ...(mode === 'fsync' ? ['log.flush.interval.messages=1'] : []),
      '',
    ].join('\n'),
  );
  const log4j = path.join(dir, 'log4j.properties');
  fs.writeFileSync(log4j, ['log4j.rootLogger=INFO, stdout', 'log4j.appender.stdout=org.apache.log4j.ConsoleAppender', 'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout', 'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n', 'log4j.logger.kafka=INFO', 'log4j.logger.org.apache.kafka=WARN', ''].join('\n'));
  // A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (what random-uuid prints).
  const clusterId = randomBytes(16).toString('base64url');
  const format = await runJava(classpath, 'kafka.tools.StorageTool', ['format', '-t', clusterId, '-c', conf], { timeoutMs: 60_000 });
  if (format.code !== 0) throw new Error(`kafka storage format failed (exit ${format.code}):\n${format.stdout}\n${format.stderr}`);

  const proc: ChildProcess = spawn('java', ['-Xms1G', '-Xmx1G', `-Dlog4j.configuration=file:${log4j}`, '-cp', classpath, 'kafka.Kafka', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kafka not ready in 60 s:\n${output.join('').slice(-4000)}`)), 60_000);
    const onData = (c: Buffer): void => {
      output.push(c.toString());
      if (output.length > 200) output.splice(0, output.length - 200);
      if (/Kafka Server started|\[KafkaRaftServer nodeId=1\] Kafka Server started/.test(output.join(''))) {
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
      reject(new Error(`kafka exited during start-up:\n${output.join('').slice(-4000)}`));
    });
  }).catch(async (err: unknown) => {
    proc.kill('SIGKILL');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  // Keep reading its output so a full pipe never blocks the broker.
  proc.stdout!.resume();
  proc.stderr!.resume();
  return {
    bootstrap: `127.0.0.1:${port}`,
    classpath,
    dir,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `body` against a fresh broker and always stops it and removes its data. */
export async function withKafka(mode: KafkaMode, body: (k: KafkaBench) => Promise<WorkloadResult>): Promise<WorkloadResult> {
  const k = await startKafka(mode);
  try {
    const r = await body(k);
    return { ...r, notes: [...r.notes, KAFKA_NOTE[mode]] };
  } finally {
    await k.stop();
  }
}

/** Creates `topic` with `partitions` partitions (replication 1) with the Java admin tool. */
export async function createTopic(k: KafkaBench, topic: string, partitions: number): Promise<void> {
  const r = await runJava(k.classpath, 'org.apache.kafka.tools.TopicCommand', ['--bootstrap-server', k.bootstrap, '--create', '--topic', topic, '--partitions', String(partitions), '--replication-factor', '1'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`creating topic ${topic} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
}

/** Sum of the topic's end offsets (= messages stored, on a fresh topic), with GetOffsetShell. */
export async function topicMessages(k: KafkaBench, topic: string): Promise<number> {
  const r = await runJava(k.classpath, 'org.apache.kafka.tools.GetOffsetShell', ['--bootstrap-server', k.bootstrap, '--topic', topic, '--time', '-1'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`GetOffsetShell failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith(`${topic}:`))
    .reduce((n, l) => n + Number(l.split(':').pop()), 0);
}
