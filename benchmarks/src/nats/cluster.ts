/**
 * The replication peer: a 3-node `nats-server` (Debian 2.9.10) JetStream cluster on loopback,
 * started and stopped by the workload itself. Each node has its own client, route and monitoring
 * port on 127.0.0.1 and JetStream file storage in its own temp dir; the routes list every node
 * (a node ignores the route to itself). `startNatsCluster` resolves only once the JetStream meta
 * group has elected a leader and every node sees all 3 peers current (read from each node's
 * `/jsz` monitoring endpoint, polled with a deadline, not slept on); `stop()` ends every node
 * (SIGTERM, SIGKILL after 5 s) and removes the data, so nothing is left running.
 *
 * What an R3 stream's PubAck means on 2.9.10 (for the notes of every row measured here): the
 * stream leader proposes the message to the stream's Raft group and answers once the entry is
 * committed — stored in the Raft WAL of a quorum (2 of 3: the leader and one follower) — and
 * applied to the leader's message store. Those writes are buffered file-store writes; neither
 * the WAL nor the store is fsynced before the ack (2.9 has no `sync_always`; the file store
 * syncs on a timer). Hadron's ack ALL means fdatasync on all r copies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { freePorts, until } from '@hadron/testing';

export const NATS_R3_ACK_NOTE =
  'NATS R3 PubAck = the message is in the Raft WAL of a quorum (2 of 3) and in the leader\'s store, without fsync (2.9.10 fsyncs on a timer); Hadron ack ALL = fdatasync on all r copies';

/** The JetStream meta group as one node sees it (`/jsz` → `meta_cluster`). */
export interface MetaCluster {
  name?: string;
  leader?: string;
  cluster_size?: number;
  replicas?: Array<{ name: string; current: boolean; offline?: boolean }>;
}

export interface NatsNode {
  name: string;
  url: string;
  monitorUrl: string;
  proc: ChildProcess;
  exited: Promise<void>;
  output: string[];
  /** True when the process could not be started at all. */
  failed(): boolean;
}

export interface NatsCluster {
  nodes: NatsNode[];
  /** Holds every node's config and JetStream store; removed by stop(). */
  dir: string;
  /** Connection to node `i` (the client options of the single-node peer). */
  connect(i: number): Promise<NatsConnection>;
  /** Node `i`'s view of the JetStream meta group. */
  meta(i: number): Promise<MetaCluster>;
  stop(): Promise<void>;
}

export interface NatsClusterOptions {
  /** Nodes (default 3). */
  size?: number;
  /** Deadline for the nodes to start and the meta group to form (default 30 s). */
  formTimeoutMs?: number;
}

/**
 * True when the nodes' views (`views[i]` from node `names[i]`) show one JetStream meta group of
 * all of them: every node names the same leader and the full cluster size, and the leader (the
 * only node that reports the group's replicas) sees every other node as a current peer.
 */
export function metaFormed(views: MetaCluster[], names: string[]): boolean {
  const leader = views[0]?.leader;
  if (!leader || views.length !== names.length) return false;
  if (!views.every((v) => v.leader === leader && v.cluster_size === names.length)) return false;
  const mine = views[names.indexOf(leader)];
  const others = names.filter((n) => n !== leader);
  const peers = mine?.replicas ?? [];
  return others.every((n) => peers.some((p) => p.name === n && p.current && !p.offline));
}

export async function startNatsCluster(opts: NatsClusterOptions = {}): Promise<NatsCluster> {
  const size = opts.size ?? 3;
  const formTimeoutMs = opts.formTimeoutMs ?? 30_000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nats-cluster-'));
  const ports = await freePorts(3 * size);
  const client = ports.slice(0, size);
  const route = ports.slice(size, 2 * size);
  const monitor = ports.slice(2 * size);
  const routes = route.map((p) => `nats-route://127.0.0.1:${p}`);
  const nodes: NatsNode[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(
      nodes.map(async (n) => {
        if (!n.failed() && n.proc.exitCode === null && n.proc.signalCode === null) {
          n.proc.kill('SIGTERM');
          const t = setTimeout(() => n.proc.kill('SIGKILL'), 5000);
          await n.exited;
          clearTimeout(t);
        }
      }),
    );
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < size; i++) {
      const name = `n${i}`;
      const conf = path.join(dir, `${name}.conf`);
      fs.writeFileSync(
        conf,
        [
          `server_name: ${name}`,
          `host: 127.0.0.1`,
          `port: ${client[i]}`,
          `http: "127.0.0.1:${monitor[i]}"`,
          // Placement by tag pins an R1 stream to one node (like a Hadron partition to its pod).
          `server_tags: [${JSON.stringify(name)}]`,
          `jetstream {`,
          `  store_dir: ${JSON.stringify(path.join(dir, name))}`,
          `  max_memory_store: 1GB`,
          `  max_file_store: 64GB`,
          `}`,
          `cluster {`,
          `  name: bench`,
          `  listen: "127.0.0.1:${route[i]}"`,
          `  routes: [${routes.map((r) => JSON.stringify(r)).join(', ')}]`,
          `}`,
          '',
        ].join('\n'),
      );
      const proc = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
      const output: string[] = [];
      // Keep the tail only: enough to say why a node failed.
      const keep = (c: Buffer): void => {
        output.push(c.toString());
        if (output.length > 200) output.splice(0, output.length - 200);
      };
      proc.stdout!.on('data', keep);
      proc.stderr!.on('data', keep);
      // A process that could not be spawned emits 'error' and never 'exit': stop() must not wait for it.
      let spawnFailed = false;
      const exited = new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.once('error', (err) => {
          spawnFailed = true;
          output.push(`spawn error: ${err.message}`);
          resolve();
        });
      });
      nodes.push({ name, url: `nats://127.0.0.1:${client[i]}`, monitorUrl: `http://127.0.0.1:${monitor[i]}`, proc, exited, output, failed: () => spawnFailed });
    }
    const meta = async (i: number): Promise<MetaCluster> => {
      const res = await fetch(`${nodes[i]!.monitorUrl}/jsz`);
      if (!res.ok) throw new Error(`${nodes[i]!.name} /jsz: HTTP ${res.status}`);
      return ((await res.json()) as { meta_cluster?: MetaCluster }).meta_cluster ?? {};
    };
    const dead = (): NatsNode | undefined => nodes.find((n) => n.failed() || n.proc.exitCode !== null || n.proc.signalCode !== null);
    await until(
      async () => {
        const d = dead();
        if (d) throw new Error(`nats-server ${d.name} exited during start-up:\n${d.output.join('').slice(-2000)}`);
        const views: MetaCluster[] = [];
        for (let i = 0; i < size; i++) {
          // Not listening yet: keep waiting (the deadline bounds it).
          const m = await meta(i).catch(() => undefined);
          if (!m) return false;
          views.push(m);
        }
        return metaFormed(views, nodes.map((n) => n.name));
      },
      formTimeoutMs,
      `the ${size}-node JetStream meta group to elect a leader with all peers current`,
    );
    return {
      nodes,
      dir,
      connect: (i) => connect({ servers: nodes[i]!.url, noAsyncTraces: true, maxReconnectAttempts: 0 }),
      meta,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
