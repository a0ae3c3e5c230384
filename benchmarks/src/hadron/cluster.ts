/**
 * A Hadron stream for one workload: real `hadron-stream` processes on loopback (through the
 * testing package's `startStream`) plus one HTTP/2 channel per partition, torn down together.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GrpcChannel } from '@hadron/core';
import { startStream, type TestStream } from '@hadron/testing';
import type { WorkloadResult, WorkloadSpec } from '../types.js';
import { awaitReplicasInSync } from './replicas.js';
import { watchRss } from './rss.js';
import { METHOD } from '@hadron/proto';

const PRELOAD = fileURLToPath(new URL('../lib/cpu-profile-preload.js', import.meta.url));

export const PUBLISH = METHOD.publish;
export const SUBSCRIBE = METHOD.subscribe;

export interface HadronBench extends AsyncDisposable {
  stream: TestStream;
  channels: GrpcChannel[];
  metadata: Record<string, string>;
  /** CPU profiles written by the servers (after dispose). */
  profiles(): string[];
}

export async function startHadron(spec: WorkloadSpec): Promise<HadronBench> {
  const env: Record<string, string> = { ...spec.serverEnv };
  if (spec.profileDir) {
    fs.mkdirSync(spec.profileDir, { recursive: true });
    // Written when the server exits: startStream's stop() sends SIGTERM and the server leaves
    // through process.exit(0), which runs the preload's 'exit' handler.
    env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import ${pathToFileURL(PRELOAD).href}`.trim();
    env.BENCH_CPU_PROF_DIR = spec.profileDir;
  }
  const stream = await startStream({ partitions: spec.partitions, env, ...(spec.replicationFactor !== undefined ? { spec: { replicationFactor: spec.replicationFactor } } : {}) });
  const channels: GrpcChannel[] = [];
  try {
    for (let p = 0; p < spec.partitions; p++) {
      const ch = new GrpcChannel(stream.url(p));
      channels.push(ch);
      await ch.connect(AbortSignal.timeout(5000));
    }
  } catch (err) {
    await Promise.allSettled(channels.map((c) => c.close()));
    await stream.stop();
    throw err;
  }
  const h: HadronBench = {
    stream,
    channels,
    metadata: { authorization: `bearer ${stream.tokens.full}` },
    profiles: () =>
      spec.profileDir && fs.existsSync(spec.profileDir)
        ? fs
            .readdirSync(spec.profileDir)
            .filter((f) => f.endsWith('.cpuprofile'))
            .map((f) => path.join(spec.profileDir!, f))
            // In start order (a restarted server's profile comes after its predecessor's).
            .sort((a, b) => fs.statSync(a).mtimeMs - fs.statSync(b).mtimeMs)
        : [],
    async [Symbol.asyncDispose]() {
      await Promise.allSettled(channels.map((c) => c.close()));
      const exits = await stream.stop();
      const bad = exits.filter((e) => e.code !== 0);
      if (bad.length > 0) throw new Error(`hadron-stream exited badly: ${JSON.stringify(bad)}`);
    },
  };
  // Measure replicated streams from steady state, as the NATS peer's streams (hadron/replicas.ts).
  try {
    await awaitReplicasInSync(h, spec.partitions, spec.replicationFactor ?? Math.min(2, spec.partitions));
  } catch (err) {
    try {
      await h[Symbol.asyncDispose]();
    } catch {
      // the start-up failure is the error worth reporting
    }
    throw err;
  }
  return h;
}

/** Runs `body` against a fresh stream, always tears it down, and attaches any CPU profiles. */
export async function withHadron(spec: WorkloadSpec, body: (h: HadronBench) => Promise<WorkloadResult>): Promise<WorkloadResult> {
  const h = await startHadron(spec);
  let result: WorkloadResult | undefined;
  try {
    const rss = await watchRss(h);
    try {
      result = await body(h);
    } finally {
      // Report-only (issue 11): the servers' RSS idle, at peak under this load, and after it.
      const { cpu: serverCpu, ...serverRss } = await rss.stop();
      if (result) result = { ...result, params: { ...result.params, serverRss, serverCpu } };
    }
  } finally {
    await h[Symbol.asyncDispose]();
  }
  const profiles = h.profiles();
  return profiles.length > 0 ? { ...result!, profiles } : result!;
}

/** The replication factor and ack mode of a run, for its params (when the workload sets them). */
export function replicationParams(spec: WorkloadSpec): Record<string, unknown> {
  return spec.replicationFactor === undefined ? {} : { replicationFactor: spec.replicationFactor, ack: ['ALL', 'MAJORITY', 'NONE'][spec.ack ?? 0] };
}
