/**
 * Scale-down safety (issue 10): before a Stream loses partitions, ask each partition that would
 * go away what it still holds for its consumers, so that acknowledged events are not silently
 * left behind. Shared by `hadron dev` (which refuses the manifest change) and the operator's
 * validating webhook (which refuses the UPDATE), so both say the same thing.
 *
 * What counts as left behind on a removed partition:
 * - every durable group (subscribers' groups, and `trigger:<name>` groups of Triggers) with
 *   events after its acked offset (`GroupInfo.lag` of `stream.Inspection/PartitionInfo`);
 * - every Pipeline of the stream with active instances or source events not yet scanned for
 *   its triggers (`stream.Inspection/PipelineStatus`).
 * Ephemeral groups are not: they never promised delivery of past events.
 *
 * The annotation {@link ALLOW_PARTITION_LOSS} on the Stream allows the change anyway; what was
 * left behind is then reported (dev output, Stream status).
 */
import { randomUUID } from 'node:crypto';
import {
  PartitionInfoRequestSchema,
  PartitionInfoResponseSchema,
  PipelineStatusRequestSchema,
  PipelineStatusResponseSchema,
  METHOD,
  create,
  fromBinary,
  toBinary,
} from '@hadron/proto';
import { signJwt } from './auth/jwt.js';
import { HadronError } from './errors.js';
import { GrpcChannel, type ChannelTls } from './grpc/client.js';
import type { Stream, Token } from './manifests/types.js';

/**
 * Stream annotation that allows removing partitions which still hold undelivered events (named
 * like `hadron.rs/allow-destructive-update` of Pipelines). Any value but `"false"` allows it.
 */
export const ALLOW_PARTITION_LOSS = 'hadron.rs/allow-partition-loss';

/** Whether the Stream carries {@link ALLOW_PARTITION_LOSS}. */
export function allowsPartitionLoss(s: Pick<Stream, 'metadata'>): boolean {
  const v = s.metadata.annotations?.[ALLOW_PARTITION_LOSS];
  return v !== undefined && v !== 'false';
}

/** One consumer that has not had every event of a removed partition. */
export interface LeftBehind {
  partition: number;
  kind: 'group' | 'pipeline';
  name: string;
  /** Group: events after its acked offset. Pipeline: source events not yet scanned. */
  unacked: number;
  /** Pipeline only: instances still running. */
  activeInstances?: number;
}

/** A removed partition that could not be asked. */
export interface UnreachablePartition {
  partition: number;
  error: string;
}

export interface PartitionLossReport {
  stream: string;
  from: number;
  to: number;
  leftBehind: LeftBehind[];
  unreachable: UnreachablePartition[];
}

export interface CheckPartitionLossOptions {
  stream: string;
  /** Partition count now and after the change (only `to` < `from` asks anything). */
  from: number;
  to: number;
  /** The client URL of partition N (`http://…` or `https://…`). */
  urlOf: (partition: number) => string;
  /** A JWT with `sub` permission on the stream; undefined: no partition can be asked. */
  token: string | undefined;
  /** Why there is no token (named in the report). */
  noTokenReason?: string;
  /** Pipelines whose sourceStream is this stream. */
  pipelines: string[];
  tls?: ChannelTls;
  /** Per partition, for all its calls (default 5000). */
  timeoutMs?: number;
}

/** Asks each partition `to … from-1` what it still holds. Never throws: failures are reported. */
export async function checkPartitionLoss(o: CheckPartitionLossOptions): Promise<PartitionLossReport> {
  const report: PartitionLossReport = { stream: o.stream, from: o.from, to: o.to, leftBehind: [], unreachable: [] };
  const removed: number[] = [];
  for (let n = o.to; n < o.from; n++) removed.push(n);
  await Promise.all(
    removed.map(async (n) => {
      if (o.token === undefined) {
        report.unreachable.push({ partition: n, error: o.noTokenReason ?? 'no token to ask it with' });
        return;
      }
      const timeoutMs = o.timeoutMs ?? 5000;
      let ch: GrpcChannel | undefined;
      try {
        ch = new GrpcChannel(o.urlOf(n), { connectTimeoutMs: timeoutMs, ...(o.tls ? { tls: o.tls } : {}) });
        const metadata = { authorization: `bearer ${o.token}` };
        const info = fromBinary(PartitionInfoResponseSchema, await ch.unary(METHOD.partitionInfo, toBinary(PartitionInfoRequestSchema, create(PartitionInfoRequestSchema, {})), { metadata, timeoutMs }));
        for (const g of info.groups) {
          if (g.durable && g.lag > 0n) report.leftBehind.push({ partition: n, kind: 'group', name: g.name, unacked: Number(g.lag) });
        }
        for (const p of o.pipelines) {
          let bytes: Buffer;
          try {
            bytes = await ch.unary(METHOD.pipelineStatus, toBinary(PipelineStatusRequestSchema, create(PipelineStatusRequestSchema, { pipeline: p })), { metadata, timeoutMs });
          } catch (err) {
            // A Pipeline this partition does not run (yet) has nothing on it.
            if (err instanceof HadronError && err.code === 'NOT_FOUND') continue;
            throw err;
          }
          const st = fromBinary(PipelineStatusResponseSchema, bytes);
          const unscanned = Math.max(0, Number(info.lastOffset - st.lastOffsetProcessed));
          if (st.instances.length > 0 || unscanned > 0) {
            report.leftBehind.push({ partition: n, kind: 'pipeline', name: p, unacked: unscanned, activeInstances: st.instances.length });
          }
        }
      } catch (err) {
        report.unreachable.push({ partition: n, error: (err as Error).message });
      } finally {
        await ch?.close();
      }
    }),
  );
  const byPartition = <T extends { partition: number }>(a: T, b: T): number => a.partition - b.partition;
  report.leftBehind.sort((a, b) => byPartition(a, b) || a.name.localeCompare(b.name));
  report.unreachable.sort(byPartition);
  return report;
}

/** `partition 2: group g (5 unacked events)`-style list of what is left behind. */
export function describeLeftBehind(items: LeftBehind[]): string {
  return items
    .map((l) =>
      l.kind === 'group'
        ? `partition ${l.partition}: group ${l.name} (${l.unacked} unacked event(s))`
        : `partition ${l.partition}: pipeline ${l.name} (${l.activeInstances ?? 0} active instance(s), ${l.unacked} event(s) not yet scanned)`,
    )
    .join('; ');
}

/** What a report lists, in words: what is left behind, then what could not be asked. */
export function describePartitionLoss(r: Pick<PartitionLossReport, 'leftBehind' | 'unreachable'>): string {
  return [
    ...(r.leftBehind.length ? [describeLeftBehind(r.leftBehind)] : []),
    ...r.unreachable.map((u) => `partition ${u.partition} could not be asked (${u.error})`),
  ].join('; ');
}

/**
 * Why the change must be refused, or undefined when it may go ahead: nothing left behind and
 * every removed partition answered, or the Stream carries {@link ALLOW_PARTITION_LOSS}.
 */
export function partitionLossRefusal(r: PartitionLossReport, allowed: boolean): string | undefined {
  if (allowed || (r.leftBehind.length === 0 && r.unreachable.length === 0)) return undefined;
  const parts: string[] = [];
  if (r.leftBehind.length) parts.push(`they hold events not yet delivered: ${describeLeftBehind(r.leftBehind)}`);
  if (r.unreachable.length) {
    parts.push(`it cannot be known what they hold: ${r.unreachable.map((u) => `partition ${u.partition} could not be asked (${u.error})`).join('; ')}`);
  }
  return `scaling stream ${r.stream} from ${r.from} to ${r.to} partitions would remove partitions ${r.to}..${r.from - 1}, but ${parts.join('; and ')}; consume them first, or set annotation ${ALLOW_PARTITION_LOSS}: "true" on the Stream to remove them anyway`;
}

/** Whether a Token may call `stream.Inspection` on the stream (`all`, or `sub` on it). */
export function tokenMayInspect(t: Token, stream: string): boolean {
  return t.spec.all || (t.spec.streams?.sub ?? []).includes(stream);
}

/**
 * A JWT for Token `name` signed with its key, valid for `ttlSeconds` (default 60): the operator
 * asks partitions with it, so no long-lived credential is made for that.
 */
export function mintShortLivedToken(name: string, key: Uint8Array, ttlSeconds = 60, nowMs = Date.now()): string {
  return signJwt({ jti: randomUUID(), sub: name, exp: Math.floor(nowMs / 1000) + ttlSeconds }, key);
}
