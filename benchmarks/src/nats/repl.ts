/**
 * The replication rows' peer (issue 9): JetStream R1 and R3 file streams on the 3-node cluster of
 * nats/cluster.ts, side by side with `hadron.repl-*` (3 partitions, each led by its own pod).
 *
 * Like for like with Hadron, where a client talks to its partition's leader pod and the 3
 * partitions are led by 3 different pods: stream i's leader is put on node i (R1: placement by
 * the node's server tag; R3: the stream leader is stepped down until node i leads it, bounded),
 * and stream i's connection goes to its leader's node. Every stream is awaited until its leader
 * is elected and all its replicas are current before anything is timed.
 *
 *  - `natsReplPublish(spec, 'js')`: `js.publish()` with `window` PubAcks outstanding per stream —
 *    the nats.js 2.x client's async form (each call returns a promise; the client pipelines);
 *  - `natsReplPublish(spec, 'core')`: core publish with a reply inbox, `window` PubAcks
 *    outstanding — the cluster's own limit without the client's per-message promise cost;
 *  - `natsReplLatency(spec, mode)`: the open-loop latency run of nats/latency.ts on stream 0.
 */
import type { NatsConnection } from 'nats';
import { until } from '@hadron/testing';
import { payload } from '../lib/events.js';
import { now } from '../lib/stats.js';
import { check, throughput, type WorkloadResult, type WorkloadSpec } from '../types.js';
import { NATS_R3_ACK_NOTE, startNatsCluster, type NatsCluster } from './cluster.js';
import { measureLatency } from './latency.js';
import { corePublish, jsPublish } from './publish.js';
import { NATS_ACK_NOTE, addStream, checkPublished, streamName, subject } from './server.js';

/** Stream-leader step-downs tried per stream to move its leader onto the wanted node. */
const MAX_STEPDOWNS = 12;

/** Runs `body` on a fresh 3-node cluster and always stops it and removes its data. */
export async function withNatsCluster(body: (c: NatsCluster) => Promise<WorkloadResult>): Promise<WorkloadResult> {
  const c = await startNatsCluster();
  try {
    const r = await body(c);
    return { ...r, notes: [...r.notes, NATS_R3_ACK_NOTE, NATS_ACK_NOTE] };
  } finally {
    await c.stop();
  }
}

/** The stream's Raft group, as its leader reports it. */
async function streamCluster(nc: NatsConnection, i: number): Promise<{ leader?: string; replicas: Array<{ name: string; current: boolean; offline: boolean }> }> {
  const info = await (await nc.jetstreamManager()).streams.info(streamName(i));
  return { leader: info.cluster?.leader, replicas: info.cluster?.replicas ?? [] };
}

/** True when the stream has a leader and all `replicas - 1` followers are current. */
async function streamCurrent(nc: NatsConnection, i: number, replicas: number): Promise<string | undefined> {
  const c = await streamCluster(nc, i).catch(() => undefined);
  if (!c?.leader) return undefined;
  return c.replicas.length === replicas - 1 && c.replicas.every((r) => r.current && !r.offline) ? c.leader : undefined;
}

/**
 * Creates stream i with `replicas` copies, led by node `want` if it can be arranged, and resolves
 * with the node that leads it once its leader is elected and every replica is current.
 */
export async function addReplicatedStream(c: NatsCluster, nc: NatsConnection, i: number, replicas: number, want: number): Promise<number> {
  const wantName = c.nodes[want]!.name;
  // R1: the stream lives on exactly the tagged node. R3: every node holds it; move the leader.
  await addStream(nc, i, replicas === 1 ? { replicas, tag: wantName } : { replicas });
  let leader: string | undefined;
  const current = async (): Promise<boolean> => (leader = await streamCurrent(nc, i, replicas)) !== undefined;
  await until(current, 30_000, `stream ${streamName(i)} (R${replicas}) to elect a leader with all replicas current`);
  for (let n = 0; n < MAX_STEPDOWNS && leader !== wantName; n++) {
    const was = leader;
    await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${streamName(i)}`, undefined, { timeout: 10_000 });
    await until(async () => (await current()) && leader !== was, 30_000, `stream ${streamName(i)} to elect a new leader after a step-down`);
  }
  const at = c.nodes.findIndex((node) => node.name === leader);
  check(at >= 0, `stream ${streamName(i)} is led by a cluster node (${leader})`);
  return at;
}

export function natsReplPublish(spec: WorkloadSpec, mode: 'js' | 'core'): Promise<WorkloadResult> {
  const replicas = spec.natsReplicas ?? 3;
  return withNatsCluster(async (c) => {
    const admin = await c.connect(0);
    const conns: NatsConnection[] = [];
    try {
      const leaders: number[] = [];
      for (let i = 0; i < spec.partitions; i++) leaders.push(await addReplicatedStream(c, admin, i, replicas, i % c.nodes.length));
      for (const l of leaders) conns.push(await c.connect(l));
      const perStream = Math.ceil(spec.events / spec.partitions);
      const data = payload(spec.eventSize);
      const one = mode === 'js' ? jsPublish : corePublish;
      const t0 = now();
      const lastSeqs = await Promise.all(conns.map((nc, i) => one(nc, subject(i), perStream, spec.window, data)));
      const seconds = (now() - t0) / 1000;
      await checkPublished(admin, lastSeqs, perStream);
      // Every replica reports current again: the copies the acks did not wait for caught up.
      for (let i = 0; i < spec.partitions; i++) await until(async () => (await streamCurrent(admin, i, replicas)) !== undefined, 60_000, `stream ${i}'s replicas to be current after the run`);
      const how = mode === 'js' ? 'js.publish() (promise per message, pipelined)' : 'core publish + reply inbox';
      const placement = leaders.map((l, i) => `${streamName(i)}@${c.nodes[l]!.name}`).join(' ');
      return {
        id: spec.id,
        system: 'nats',
        kind: 'publish',
        title: spec.title,
        status: 'ok',
        ...throughput(spec, perStream * spec.partitions, seconds),
        verified: [`each of ${spec.partitions} R${replicas} stream(s): last PubAck seq = stream message count = ${perStream}; all replicas current afterwards`],
        params: { cluster: `${c.nodes.length} nodes`, replicas, streams: spec.partitions, eventSize: spec.eventSize, how, windowPerStream: spec.window, storage: 'file', leaders: placement },
        notes: [`${how}, ${spec.window} in flight per stream, one connection per stream to its leader's node (leaders ${placement})`],
      };
    } finally {
      await Promise.allSettled([admin, ...conns].map((nc) => nc.close()));
    }
  });
}

export function natsReplLatency(spec: WorkloadSpec, mode: 'js' | 'core'): Promise<WorkloadResult> {
  const replicas = spec.natsReplicas ?? 3;
  return withNatsCluster(async (c) => {
    const admin = await c.connect(0);
    let nc: NatsConnection | undefined;
    try {
      const leader = await addReplicatedStream(c, admin, 0, replicas, 0);
      nc = await c.connect(leader);
      return await measureLatency(spec, mode, nc, { cluster: `${c.nodes.length} nodes`, replicas, streams: 1, leader: c.nodes[leader]!.name });
    } finally {
      await Promise.allSettled([admin, ...(nc ? [nc] : [])].map((x) => x.close()));
    }
  });
}
