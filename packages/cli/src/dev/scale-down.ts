/**
 * Scale-down safety of `hadron dev` (docs/cli.md): for every running stream the new manifests
 * give fewer partitions, ask the partitions that would go away what they still hold (core
 * `checkPartitionLoss`, over loopback with a Token of the manifests that may subscribe to it).
 * The supervisor refuses the whole manifest change while any stream is refused.
 */
import fs from 'node:fs';
import { allowsPartitionLoss, checkPartitionLoss, partitionLossRefusal, tokenMayInspect, type ControlPlaneView, type PartitionLossReport } from '@hadron/core';

export interface RunningStream {
  name: string;
  /** Partitions running now. */
  partitions: number;
  /** Client URL of partition N. */
  urlOf: (partition: number) => string;
}

export interface DevScaleDownOptions {
  /** The manifests as they would be after the change. */
  view: ControlPlaneView;
  running: RunningStream[];
  /** Partition count the new manifests give a stream (capped as hadron dev runs it). */
  wanted: (partitions: number) => number;
  /** Token name → its JWT, as minted by hadron dev. */
  tokens: ReadonlyMap<string, string>;
  /** With --tls: the dev CA. */
  caFile?: string;
}

export interface DevScaleDownResult {
  /** One message per refused stream. */
  refusals: string[];
  /** Streams whose annotation allowed removing partitions that still held something. */
  allowedLoss: PartitionLossReport[];
}

export async function checkDevScaleDown(o: DevScaleDownOptions): Promise<DevScaleDownResult> {
  const out: DevScaleDownResult = { refusals: [], allowedLoss: [] };
  for (const r of o.running) {
    const s = o.view.streams.get(r.name);
    if (!s) continue; // a removed Stream is stopped with its data kept, not scaled down
    const to = o.wanted(s.spec.partitions);
    if (to >= r.partitions) continue;
    const inspector = [...o.tokens.keys()].find((t) => {
      const tok = o.view.tokens.get(t);
      return tok !== undefined && tokenMayInspect(tok, r.name);
    });
    const report = await checkPartitionLoss({
      stream: r.name,
      from: r.partitions,
      to,
      urlOf: r.urlOf,
      token: inspector ? o.tokens.get(inspector) : undefined,
      noTokenReason: `no Token of the manifests may subscribe to stream ${r.name}, so hadron dev cannot ask it`,
      pipelines: [...o.view.pipelines.values()].filter((p) => p.spec.sourceStream === r.name).map((p) => p.metadata.name),
      ...(o.caFile ? { tls: { ca: fs.readFileSync(o.caFile) } } : {}),
    });
    const refusal = partitionLossRefusal(report, allowsPartitionLoss(s));
    if (refusal !== undefined) out.refusals.push(refusal);
    else if (report.leftBehind.length || report.unreachable.length) out.allowedLoss.push(report);
  }
  return out;
}
