/**
 * The contract between the orchestrator (`run.ts`), which forks one child process per workload,
 * and the child (`child.ts`), which runs it and reports one `WorkloadResult` over IPC.
 */
import type { LatencySummary } from './lib/stats.js';

export type System = 'hadron' | 'nats' | 'kafka';
/** `sweep`: one step of the rate sweep (sweep.ts), a latency run at that step's rate. */
export type Kind = 'publish' | 'latency' | 'drain' | 'client' | 'pipeline' | 'sweep';

/** Everything a workload needs; plain JSON so it crosses the process boundary. */
export interface WorkloadSpec {
  /** Stable id, e.g. `hadron.publish.1k.p3`. */
  id: string;
  system: System;
  kind: Kind;
  /** Which generator runs it (see child.ts). */
  runner: string;
  title: string;
  /** Total events (publish/drain); for latency the duration decides. */
  events: number;
  eventSize: number;
  partitions: number;
  /** Events per request (Hadron) — or the largest batch sent as events come due (latency). */
  batch: number;
  /** Requests in flight per partition (Hadron) or messages in flight per stream (NATS). */
  window: number;
  /** Latency workloads: offered events/s, measured seconds, discarded warm-up seconds. */
  rate: number;
  seconds: number;
  warmupSeconds: number;
  /** Drain: max batch size asked of the server / pull batch size; NATS ack mode. */
  maxBatch: number;
  ackMode?: 'batch' | 'each';
  /** Kill the child after this long. */
  timeoutMs: number;
  /** Hadron: extra server environment. */
  serverEnv?: Record<string, string>;
  /** Hadron: Stream spec.replicationFactor (default: the spec's default, min(2, partitions)). */
  replicationFactor?: number;
  /** Hadron: WriteAck of every publish (0 ALL, the default; 1 MAJORITY; 2 NONE). */
  ack?: number;
  /** NATS: run on the 3-node JetStream cluster (nats/cluster.ts) with streams of this many replicas. */
  natsReplicas?: number;
  /** Rate sweep step: the system's sweep (its summary id, e.g. `hadron.sweep.1k`) this step belongs to. */
  sweep?: string;
  /** Hadron: write a V8 CPU profile of every server process into this dir. */
  profileDir?: string;
}

export interface WorkloadResult {
  id: string;
  system: System;
  kind: Kind;
  title: string;
  /** `unsustained`: a latency run whose system could not keep up with the offered rate (a result, not a broken run). */
  status: 'ok' | 'failed' | 'skipped' | 'unsustained';
  /** Why it failed or was skipped. */
  reason?: string;
  events: number;
  seconds: number;
  eventsPerSec: number;
  /** Payload megabytes (10^6) per second. */
  mbPerSec: number;
  latency?: LatencySummary & { offeredRate: number; achievedRate: number; sendLagP99: number };
  /** What was checked before the number was accepted. */
  verified: string[];
  params: Record<string, unknown>;
  notes: string[];
  /** Hadron servers' CPU profiles, when profiling. */
  profiles?: string[];
  /** The load generator's own CPU profile, when profiling. */
  clientProfiles?: string[];
}

/** A result with no numbers: a workload that was skipped or failed, and why. */
export function noResult(spec: WorkloadSpec, status: 'skipped' | 'failed', reason: string): WorkloadResult {
  return { id: spec.id, system: spec.system, kind: spec.kind, title: spec.title, status, reason, events: 0, seconds: 0, eventsPerSec: 0, mbPerSec: 0, verified: [], params: {}, notes: [] };
}

export function throughput(spec: WorkloadSpec, events: number, seconds: number): Pick<WorkloadResult, 'events' | 'seconds' | 'eventsPerSec' | 'mbPerSec'> {
  return {
    events,
    seconds,
    eventsPerSec: events / seconds,
    mbPerSec: (events * spec.eventSize) / seconds / 1e6,
  };
}

/** A successful throughput result: what was measured, what was checked, and how. */
export function throughputResult(
  spec: WorkloadSpec,
  events: number,
  seconds: number,
  how: Pick<WorkloadResult, 'verified' | 'params' | 'notes'>,
): WorkloadResult {
  return { id: spec.id, system: spec.system, kind: spec.kind, title: spec.title, status: 'ok', ...throughput(spec, events, seconds), ...how };
}

/** Thrown by a workload whose correctness check failed: the run must not report a number. */
export class VerificationError extends Error {
  override readonly name = 'VerificationError';
}

export function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw new VerificationError(`verification failed: ${what}`);
}
