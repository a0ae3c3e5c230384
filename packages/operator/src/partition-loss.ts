/**
 * The operator's side of scale-down safety (issue 10; core `checkPartitionLoss`): asks the live
 * partitions a Stream change would remove what they still hold. Used by the validating webhook
 * (refuse an UPDATE that loses undelivered events unless the Stream carries
 * `hadron.rs/allow-partition-loss`) and by the controller (record in the Stream's status what an
 * allowed scale-down left behind, just before the StatefulSet shrinks).
 *
 * Credentials: the operator holds every Token's signing key (it made the Secrets), so it signs a
 * JWT valid for 60 s for a Token that may subscribe to the stream — no standing credential is
 * created for this. Without such a Token no partition can be asked, and the check says so.
 *
 * Addresses: `HADRON_PARTITION_URL_TEMPLATE` (default
 * `{scheme}://{stream}-{partition}.{namespace}.svc.cluster.local:{port}`, the per-pod Services);
 * `{port}` is 7000, or `HADRON_PARTITION_PORT_BASE + partition` when that is set (tests run the
 * partitions as loopback processes); `{scheme}` is https when the Stream has `spec.tls` (the CA
 * is read from its TLS Secret's `ca.crt`).
 */
import {
  checkPartitionLoss,
  describePartitionLoss,
  mintShortLivedToken,
  parseToken,
  tokenMayInspect,
  type LeftBehind,
  type Logger,
  type PartitionLossReport,
  type Stream,
} from '@hadron/core';
import { RT, resourcePath, type Condition, type Informer, type KubeClient, type KubeObject } from '@hadron/k8s';
import { PORTS, tlsSecretName } from './objects.js';

export const DEFAULT_PARTITION_URL_TEMPLATE = '{scheme}://{stream}-{partition}.{namespace}.svc.cluster.local:{port}';
/** Per partition; well inside the webhook's `timeoutSeconds` (chart default 15). */
export const PARTITION_LOSS_TIMEOUT_MS = 4000;

export interface PartitionLossProbeOptions {
  client: KubeClient;
  namespace: string;
  informers: { tokens: Informer; secrets: Informer; pipelines: Informer };
  urlTemplate?: string;
  portBase?: number;
  logger: Logger;
}

type Raw = Record<string, unknown>;

/** `status.partitionLoss` of a Stream: the last scale-down that left something behind. */
export interface PartitionLossStatus {
  time: string;
  fromPartitions: number;
  toPartitions: number;
  leftBehind: LeftBehind[];
  unreachable: Array<{ partition: number; error: string }>;
}

/** The `PartitionsRemoved` condition that says in words what `status.partitionLoss` lists. */
export function partitionLossCondition(l: PartitionLossStatus, generation: number): Omit<Condition, 'lastTransitionTime'> {
  const what = describePartitionLoss(l);
  return {
    type: 'PartitionsRemoved',
    status: 'True',
    reason: 'UndeliveredEventsLeftBehind',
    message: `scaled from ${l.fromPartitions} to ${l.toPartitions} partitions at ${l.time}; left behind (kept on their volumes): ${what}`,
    observedGeneration: generation,
  };
}

export class PartitionLossProbe {
  constructor(private readonly o: PartitionLossProbeOptions) {}

  /** What partitions `to … from-1` of `s` still hold (never throws). */
  async check(s: Stream, from: number, to: number): Promise<PartitionLossReport> {
    const name = s.metadata.name;
    const token = this.tokenFor(name);
    const tls = s.spec.tls ? await this.caOf(s) : undefined;
    const template = this.o.urlTemplate ?? DEFAULT_PARTITION_URL_TEMPLATE;
    const report = await checkPartitionLoss({
      stream: name,
      from,
      to,
      urlOf: (n) =>
        template
          .replaceAll('{scheme}', s.spec.tls ? 'https' : 'http')
          .replaceAll('{stream}', name)
          .replaceAll('{partition}', String(n))
          .replaceAll('{namespace}', this.o.namespace)
          .replaceAll('{port}', String(this.o.portBase === undefined ? PORTS.client : this.o.portBase + n)),
      token,
      noTokenReason: `no Token in namespace ${this.o.namespace} may subscribe to stream ${name}, so the operator cannot ask it`,
      pipelines: this.o.informers.pipelines
        .list()
        .filter((p) => ((p as Raw).spec as Raw | undefined)?.sourceStream === name)
        .map((p) => p.metadata.name),
      timeoutMs: PARTITION_LOSS_TIMEOUT_MS,
      ...(tls ? { tls } : {}),
    });
    this.o.logger.info({ stream: name, from, to, leftBehind: report.leftBehind, unreachable: report.unreachable }, 'asked the partitions a scale-down removes');
    return report;
  }

  /** A 60-second JWT of a Token that may inspect the stream, signed with its Secret's key. */
  private tokenFor(stream: string): string | undefined {
    for (const raw of this.o.informers.tokens.list().sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
      const t = parseToken(raw as unknown as Raw);
      if (!t.ok || !tokenMayInspect(t.value, stream)) continue;
      const key = ((this.o.informers.secrets.get(raw.metadata.name) as Raw | undefined)?.data as Raw | undefined)?.hmac_key;
      if (typeof key === 'string') return mintShortLivedToken(raw.metadata.name, Buffer.from(key, 'base64'));
    }
    return undefined;
  }

  private async caOf(s: Stream): Promise<{ ca: string } | undefined> {
    const secret = tlsSecretName(s);
    if (!secret) return undefined;
    try {
      const obj = await this.o.client.getOrUndefined<KubeObject & { data?: Record<string, string> }>(resourcePath(RT.secrets, this.o.namespace, secret));
      const ca = obj?.data?.['ca.crt'];
      return ca ? { ca: Buffer.from(ca, 'base64').toString('utf8') } : undefined;
    } catch {
      // The call then fails verification with the system CAs, and says so.
      return undefined;
    }
  }
}
