/**
 * The reconciler: informers on Streams, Pipelines, Tokens (all in the namespace) and on the
 * operator's StatefulSets, Services and Secrets (label selector
 * `app=hadron,hadron.rs/controlled-by=hadron-operator`) feed a work queue of `Kind/name` keys.
 * Each key is reconciled level-based and idempotently: desired objects are computed from the
 * resource and compared with the cache; only what differs is written (server-side apply, field
 * manager `hadron-operator`, force), so a steady state writes nothing and drift is repaired.
 *
 * | key            | triggered by                          | does                                                  |
 * |----------------|---------------------------------------|-------------------------------------------------------|
 * | Stream/{s}     | Stream, StatefulSet, Services, PDB, Secrets of {s} | replication Secret, StatefulSet, headless + per-pod Services, PodDisruptionBudget, prunes per-pod Services ≥ partitions, status |
 * | Token/{t}      | Token, Secret {t}                     | mints the Secret when missing (new key), deletes it when the Token is gone, status |
 * | Pipeline/{p}   | Pipeline                              | status Accepted with the validation result            |
 *
 * Every write passes `fence()` first (leader check + fresh Lease GET). Queue processing runs
 * only while leading; informers run on every instance so a new leader starts with warm caches
 * and a full resync. PVCs are never deleted (scale-down keeps the data of removed partitions).
 */
import {
  decodeJwtUnverified,
  mintToken,
  parsePipeline,
  parseTrigger,
  parseStream,
  parseToken,
  parseTokenSecret,
  type Logger,
  type PartitionLossReport,
  type Stream,
} from '@hadron/core';
import {
  Informer,
  KubeApiError,
  RT,
  labelSelector,
  mergeConditions,
  resourcePath,
  satisfies,
  type Condition,
  type KubeClient,
  type KubeObject,
  type ResourceType,
} from '@hadron/k8s';
import { FIELD_MANAGER, LABEL_STATEFULSET, LABEL_STREAM, headlessService, podIndexOf, podService, statefulSet, streamLabels, tokenSecret } from './objects.js';
import type { OperatorMetrics } from './metrics.js';
import { WorkQueue } from './workqueue.js';
import { partitionLossCondition, type PartitionLossStatus } from './partition-loss.js';
import { caSecretName, newCaSecret, newServerSecret, serverSecretProblem, usableCa } from './tls-secrets.js';
import { newReplicationSecret, replicaPlacement, replicationFactor, replicationSecretName } from './replication.js';
import { podDisruptionBudget, podSchedulingFields, schedulingStatus, streamScheduling } from './scheduling.js';
import { LABEL_EXTERNAL, externalEnv, externalService, externalServiceName, externalSpec } from './external.js';

export const OWNED_SELECTOR = labelSelector({ app: 'hadron', 'hadron.rs/controlled-by': 'hadron-operator' });

export interface Fence {
  fence(signal?: AbortSignal): Promise<void>;
}

export interface ControllerOptions {
  client: KubeClient;
  namespace: string;
  fence: Fence;
  logger: Logger;
  metrics: OperatorMetrics;
  workers?: number;
  backoff?: { baseMs?: number; maxMs?: number };
  /** Scale-down safety: what partitions `to … from-1` still hold (partition-loss.ts). */
  partitionLoss?: (s: Stream, from: number, to: number) => Promise<PartitionLossReport>;
}

type Kind = 'Stream' | 'Token' | 'Pipeline' | 'Trigger';
type Raw = Record<string, unknown>;
type Status = Record<string, unknown> & { conditions?: Condition[] };

export class Controller {
  readonly informers: Record<'streams' | 'pipelines' | 'tokens' | 'triggers' | 'statefulsets' | 'services' | 'secrets' | 'pdbs', Informer>;
  readonly queue: WorkQueue;
  private readonly log: Logger;

  constructor(private readonly o: ControllerOptions) {
    this.log = o.logger;
    const mk = (rt: ResourceType, owned: boolean): Informer =>
      new Informer({
        client: o.client,
        resource: rt,
        namespace: o.namespace,
        logger: o.logger,
        onError: () => o.metrics.watcherErrors.inc({ resource: rt.plural }),
        ...(owned ? { labelSelector: OWNED_SELECTOR } : {}),
        ...(o.backoff ? { backoff: o.backoff } : {}),
      });
    this.informers = {
      streams: mk(RT.streams, false),
      pipelines: mk(RT.pipelines, false),
      tokens: mk(RT.tokens, false),
      triggers: mk(RT.triggers, false),
      statefulsets: mk(RT.statefulsets, true),
      services: mk(RT.services, true),
      secrets: mk(RT.secrets, true),
      pdbs: mk(RT.poddisruptionbudgets, true),
    };
    this.queue = new WorkQueue({
      workers: o.workers ?? 4,
      handler: (key) => this.reconcile(key),
      logger: o.logger,
      onError: (key) => o.metrics.reconcileErrors.inc({ kind: key.split('/')[0] ?? '' }),
      ...(o.backoff ? { backoff: o.backoff } : {}),
    });
    const on = (inf: Informer, keyOf: (obj: KubeObject) => string | undefined): void => {
      const add = (obj: KubeObject): void => {
        const k = keyOf(obj);
        if (k) this.queue.add(k);
      };
      inf.on('add', add).on('update', (_old, obj) => add(obj)).on('delete', add);
    };
    on(this.informers.streams, (s) => `Stream/${s.metadata.name}`);
    on(this.informers.statefulsets, (s) => `Stream/${s.metadata.labels?.[LABEL_STREAM] ?? s.metadata.name}`);
    on(this.informers.services, (s) => {
      const stream = s.metadata.labels?.[LABEL_STREAM] ?? s.metadata.labels?.[LABEL_STATEFULSET];
      return stream ? `Stream/${stream}` : undefined;
    });
    on(this.informers.pdbs, (p) => (p.metadata.labels?.[LABEL_STREAM] ? `Stream/${p.metadata.labels[LABEL_STREAM]}` : undefined));
    on(this.informers.tokens, (t) => `Token/${t.metadata.name}`);
    on(this.informers.secrets, (s) => {
      if (isTokenSecret(s)) return `Token/${s.metadata.name}`;
      const stream = s.metadata.labels?.[LABEL_STREAM];
      return stream ? `Stream/${stream}` : undefined;
    });
    on(this.informers.pipelines, (p) => `Pipeline/${p.metadata.name}`);
    on(this.informers.triggers, (t) => `Trigger/${t.metadata.name}`);
  }

  start(): void {
    for (const i of Object.values(this.informers)) i.start();
  }

  async synced(signal?: AbortSignal): Promise<void> {
    await Promise.all(Object.values(this.informers).map((i) => i.synced(signal)));
  }

  /** Became leader: full resync of everything known, then process the queue. */
  async lead(signal?: AbortSignal): Promise<void> {
    await this.synced(signal);
    for (const s of this.informers.streams.list()) this.queue.add(`Stream/${s.metadata.name}`);
    for (const s of this.informers.statefulsets.list()) this.queue.add(`Stream/${s.metadata.labels?.[LABEL_STREAM] ?? s.metadata.name}`);
    for (const t of this.informers.tokens.list()) this.queue.add(`Token/${t.metadata.name}`);
    for (const s of this.informers.secrets.list()) if (isTokenSecret(s)) this.queue.add(`Token/${s.metadata.name}`);
    for (const p of this.informers.pipelines.list()) this.queue.add(`Pipeline/${p.metadata.name}`);
    for (const t of this.informers.triggers.list()) this.queue.add(`Trigger/${t.metadata.name}`);
    this.queue.resume();
  }

  /** Lost (or never had) leadership: stop handing out work. */
  follow(): void {
    this.queue.pause();
  }

  async close(): Promise<void> {
    await this.queue.close();
    await Promise.all(Object.values(this.informers).map((i) => i.close()));
  }

  // -------------------------------------------------------------------------------------------

  private async reconcile(key: string): Promise<void> {
    const slash = key.indexOf('/');
    const kind = key.slice(0, slash) as Kind;
    const name = key.slice(slash + 1);
    this.o.metrics.reconciles.inc({ kind });
    if (kind === 'Stream') await this.reconcileStream(name);
    else if (kind === 'Token') await this.reconcileToken(name);
    else if (kind === 'Trigger') await this.reconcileTrigger(name);
    else await this.reconcilePipeline(name);
  }

  /** Every mutating call goes through here: fence first, count, then write. */
  private async write<T>(verb: string, rt: ResourceType, fn: () => Promise<T>): Promise<T> {
    try {
      await this.o.fence.fence();
    } catch (err) {
      this.o.metrics.fencedMutations.inc();
      throw err;
    }
    this.o.metrics.mutations.inc({ verb, resource: rt.plural });
    return fn();
  }

  private apply(rt: ResourceType, obj: KubeObject): Promise<KubeObject> {
    this.log.info({ kind: rt.kind, name: obj.metadata.name }, 'applying');
    return this.write('apply', rt, () => this.o.client.apply(resourcePath(rt, this.o.namespace, obj.metadata.name), obj, { fieldManager: FIELD_MANAGER, force: true }));
  }

  private async remove(rt: ResourceType, obj: KubeObject): Promise<void> {
    this.log.info({ kind: rt.kind, name: obj.metadata.name }, 'deleting');
    await this.write('delete', rt, () => this.o.client.delete(resourcePath(rt, this.o.namespace, obj.metadata.name), { uid: obj.metadata.uid, propagationPolicy: 'Background' })).catch((err: unknown) => {
      // 409: the uid precondition failed, i.e. it was already replaced; the next event re-runs us.
      if (!(err instanceof KubeApiError && err.conflict)) throw err;
    });
  }

  /** Writes `status` (merge patch on the status subresource) unless it already says that. */
  private async writeStatus(rt: ResourceType, raw: KubeObject, status: Status, conditions: Array<Omit<Condition, 'lastTransitionTime'>>): Promise<void> {
    const live = ((raw as Raw).status ?? {}) as Status;
    const merged = mergeConditions(live.conditions, conditions);
    const next: Status = { ...status, conditions: merged.conditions };
    const { conditions: _c, ...rest } = next;
    if (!merged.changed && satisfies(rest, live)) return;
    await this.write('status', rt, () => this.o.client.mergePatch(resourcePath(rt, this.o.namespace, raw.metadata.name, 'status'), { status: next }));
  }

  // --- Stream --------------------------------------------------------------------------------

  private async reconcileStream(name: string): Promise<void> {
    const raw = this.informers.streams.get(name);
    const owned = this.informers.services.list().filter((s) => s.metadata.labels?.[LABEL_STREAM] === name);
    if (!raw || raw.metadata.deletionTimestamp) {
      // Owner references let the garbage collector do this too; doing it here keeps it prompt
      // and works where no GC runs. PVCs are deliberately kept.
      const sts = this.informers.statefulsets.get(name);
      if (sts && sts.metadata.labels?.[LABEL_STREAM] === name) await this.remove(RT.statefulsets, sts);
      for (const svc of owned) await this.remove(RT.services, svc);
      const pdb = this.informers.pdbs.get(name);
      if (pdb && pdb.metadata.labels?.[LABEL_STREAM] === name) await this.remove(RT.poddisruptionbudgets, pdb);
      for (const sec of this.informers.secrets.list()) if (sec.metadata.labels?.[LABEL_STREAM] === name && !isTokenSecret(sec)) await this.remove(RT.secrets, sec);
      return;
    }
    const gen = raw.metadata.generation ?? 0;
    const parsed = parseStream(raw as unknown as Raw);
    if (!parsed.ok) {
      await this.writeStatus(RT.streams, raw, { observedGeneration: gen }, [
        { type: 'Ready', status: 'False', reason: 'InvalidSpec', message: parsed.errors.join('; '), observedGeneration: gen },
      ]);
      return;
    }
    const s = parsed.value;
    s.metadata.uid = raw.metadata.uid;
    const tlsNote = s.spec.tls && !s.spec.tls.secretName ? await this.ensureTlsSecrets(s) : '';
    // Before the StatefulSet: its pods read the key from this Secret. Created once, never rewritten.
    if (!this.informers.secrets.get(replicationSecretName(name))) {
      this.log.info({ stream: name }, 'making the replication key Secret');
      await this.createIgnoringConflict(newReplicationSecret(s, this.o.namespace));
    }
    const sch = streamScheduling((raw as Raw).spec as Raw | undefined);
    const ext = externalSpec((raw as Raw).spec as Raw | undefined);
    const desired = statefulSet(s, this.o.namespace, { pod: podSchedulingFields(name, sch), ...(sch.resources ? { resources: sch.resources } : {}), env: externalEnv(ext) });
    let live = this.informers.statefulsets.get(name);
    let note = '';
    // Parallel: a starting partition waits for its replicas (docs/replication.md, "Recovery"); with
    // OrderedReady pod 0 would wait its recovery timeout for pod 1, created only once pod 0 is
    // Ready. The field is immutable, so a live StatefulSet keeps the value it has (and we always
    // send it: server-side apply would reset a field we own and leave out): Streams made by an
    // older operator keep OrderedReady (docs/operator.md says how to switch).
    (desired.spec as Raw).podManagementPolicy = ((live?.spec as Raw | undefined)?.podManagementPolicy as string | undefined) ?? 'Parallel';
    if (live) {
      // volumeClaimTemplates are immutable: keep the live ones and say so in the status.
      const dSpec = desired.spec as Raw;
      const lVct = ((live.spec as Raw | undefined)?.volumeClaimTemplates ?? []) as KubeObject[];
      if (!satisfies(dSpec.volumeClaimTemplates, lVct)) {
        dSpec.volumeClaimTemplates = lVct.map((v) => ({ metadata: { name: v.metadata.name }, spec: projectPvcSpec(v.spec as Raw) }));
        note = '; PVC settings differ from the existing StatefulSet and apply only to a recreated Stream';
      }
    }
    const loss = (await this.recordPartitionLoss(raw, s, live)) ?? ((raw as Raw).status as Raw | undefined)?.partitionLoss;
    if (!live || !satisfies(desired, live)) live = await this.apply(RT.statefulsets, desired);

    const wanted = [
      headlessService(s, this.o.namespace),
      ...Array.from({ length: s.spec.partitions }, (_, i) => podService(s, this.o.namespace, i)),
      ...(ext ? Array.from({ length: s.spec.partitions }, (_, i) => externalService(s, this.o.namespace, i, ext)) : []),
    ];
    for (const svc of wanted) {
      const cur = this.informers.services.get(svc.metadata.name);
      if (!cur || !satisfies(svc, cur)) await this.apply(RT.services, svc);
    }
    const pdb = podDisruptionBudget(s, this.o.namespace);
    const livePdb = this.informers.pdbs.get(name);
    if (!livePdb || !satisfies(pdb, livePdb)) await this.apply(RT.poddisruptionbudgets, pdb);
    for (const svc of owned) {
      const idx = podIndexOf(svc);
      const staleExternal = svc.metadata.labels?.[LABEL_EXTERNAL] === 'true' && (!ext || (svc.spec as Raw | undefined)?.['type'] !== ext.type);
      if ((idx !== undefined && idx >= s.spec.partitions) || staleExternal) await this.remove(RT.services, svc);
    }

    const st = (live.status ?? {}) as { readyReplicas?: number; replicas?: number; observedGeneration?: number };
    const partitions = s.spec.partitions;
    const ready = Math.min(st.readyReplicas ?? 0, partitions);
    const current = (st.observedGeneration ?? 0) >= (live.metadata.generation ?? 0) && (st.replicas ?? 0) === partitions;
    const allReady = ready === partitions && current;
    const r = replicationFactor(s, (raw as Raw).spec as Raw | undefined);
    const selector = Object.entries(streamLabels(name)).map(([k, v]) => `${k}=${v}`).join(',');
    const status = { observedGeneration: gen, partitions, readyPartitions: ready, statefulSet: name, selector, replicationFactor: r, replicas: replicaPlacement(name, partitions, r), scheduling: schedulingStatus(name, sch),
      // null removes a previous value (merge patch); undefined leaves an absent one alone.
      external: ext ? { type: ext.type, services: Array.from({ length: partitions }, (_, i) => externalServiceName(name, i)) } : ((raw as Raw).status as Raw | undefined)?.['external'] != null ? null : undefined };
    await this.writeStatus(RT.streams, raw, status, [
      {
        type: 'Ready',
        status: allReady ? 'True' : 'False',
        reason: allReady ? 'AllPartitionsReady' : 'PartitionsNotReady',
        message: `${ready}/${partitions} partitions ready${note}${tlsNote}`,
        observedGeneration: gen,
      },
      // Derived from status.partitionLoss on every write: a cached `raw` that predates it must
      // not drop the condition.
      ...(loss ? [partitionLossCondition(loss as PartitionLossStatus, gen)] : []),
    ]);
  }

  /**
   * Just before the StatefulSet shrinks (the webhook admitted it, with the annotation or because
   * nothing was pending), asks the partitions that go away what they still hold and writes it to
   * `status.partitionLoss` with a `PartitionsRemoved` condition, so what was left behind stays
   * visible on the Stream. Written first: if that fails, the reconcile is retried before scaling.
   * Returns what it wrote, for the status written later in the same reconcile.
   */
  private async recordPartitionLoss(raw: KubeObject, s: Stream, live: KubeObject | undefined): Promise<PartitionLossStatus | undefined> {
    const from = ((live?.spec as Raw | undefined)?.replicas as number | undefined) ?? 0;
    const to = s.spec.partitions;
    if (!this.o.partitionLoss || from <= to) return undefined;
    const r = await this.o.partitionLoss(s, from, to);
    if (r.leftBehind.length === 0 && r.unreachable.length === 0) return undefined;
    const loss: PartitionLossStatus = { time: new Date().toISOString(), fromPartitions: from, toPartitions: to, leftBehind: r.leftBehind, unreachable: r.unreachable };
    await this.writeStatus(RT.streams, raw, { partitionLoss: loss }, [partitionLossCondition(loss, raw.metadata.generation ?? 0)]);
    return loss;
  }

  /**
   * Operator-made TLS (tls-secrets.ts): the CA first; the server certificate once the CA is in the
   * cache (its add event re-queues this Stream), so a lagging cache never mints two CAs.
   */
  private async ensureTlsSecrets(s: Stream): Promise<string> {
    const name = s.metadata.name;
    const ns = this.o.namespace;
    const caRaw = this.informers.secrets.get(caSecretName(name));
    const ca = usableCa(caRaw);
    if (!ca) {
      if (caRaw) await this.remove(RT.secrets, caRaw);
      this.log.info({ stream: name }, 'making a TLS CA for the Stream');
      await this.createIgnoringConflict(newCaSecret(s, ns));
      return '; TLS certificates are being made';
    }
    const server = this.informers.secrets.get(`${name}-tls`);
    const problem = serverSecretProblem(server, s, ns, ca);
    if (problem) {
      this.log.info({ stream: name, reason: problem }, 'issuing the TLS server certificate');
      if (server) await this.remove(RT.secrets, server);
      await this.createIgnoringConflict(newServerSecret(s, ns, ca));
    }
    return '';
  }

  private async createIgnoringConflict(obj: KubeObject): Promise<void> {
    await this.write('create', RT.secrets, () => this.o.client.create(resourcePath(RT.secrets, this.o.namespace), obj)).catch((err: unknown) => {
      if (!(err instanceof KubeApiError && err.statusCode === 409)) throw err;
    });
  }

  // --- Token ---------------------------------------------------------------------------------

  private async reconcileToken(name: string): Promise<void> {
    const raw = this.informers.tokens.get(name);
    let secret = this.informers.secrets.get(name);
    if (secret && !isTokenSecret(secret)) secret = undefined;
    if (!raw || raw.metadata.deletionTimestamp) {
      if (secret) await this.remove(RT.secrets, secret);
      return;
    }
    const gen = raw.metadata.generation ?? 0;
    const parsed = parseToken(raw as unknown as Raw);
    if (!parsed.ok) {
      await this.writeStatus(RT.tokens, raw, { observedGeneration: gen }, [
        { type: 'Ready', status: 'False', reason: 'InvalidSpec', message: parsed.errors.join('; '), observedGeneration: gen },
      ]);
      return;
    }
    let jwt: string | undefined;
    if (secret) {
      const s = parseTokenSecret(secret as unknown as Raw);
      const ownerUid = secret.metadata.ownerReferences?.find((r) => r.kind === 'Token')?.uid;
      if (!s?.ok || !s.value.token || (ownerUid !== undefined && ownerUid !== raw.metadata.uid)) {
        // Unusable, or left over from an earlier Token of the same name: replace it (new key).
        await this.remove(RT.secrets, secret);
        return;
      }
      jwt = s.value.token;
    } else {
      const t = parsed.value;
      t.metadata.uid = raw.metadata.uid;
      const minted = mintToken(name);
      this.log.info({ token: name }, 'minting a new key and JWT');
      await this.write('create', RT.secrets, () => this.o.client.create(resourcePath(RT.secrets, this.o.namespace), tokenSecret(t, this.o.namespace, minted))).catch((err: unknown) => {
        if (!(err instanceof KubeApiError && err.statusCode === 409)) throw err;
      });
      jwt = minted.token;
    }
    let tokenId = '';
    try {
      tokenId = decodeJwtUnverified(jwt).claims.jti;
    } catch {
      /* reported through Ready below */
    }
    await this.writeStatus(RT.tokens, raw, { observedGeneration: gen, secretName: name, tokenId }, [
      { type: 'Ready', status: 'True', reason: 'SecretReady', message: `Secret ${name} holds the token`, observedGeneration: gen },
    ]);
  }

  // --- Pipeline ------------------------------------------------------------------------------

  private async reconcilePipeline(name: string): Promise<void> {
    const raw = this.informers.pipelines.get(name);
    if (!raw || raw.metadata.deletionTimestamp) return; // partitions stop it on their own
    const gen = raw.metadata.generation ?? 0;
    const parsed = parsePipeline(raw as unknown as Raw);
    const stages = Array.isArray((raw.spec as Raw | undefined)?.stages) ? ((raw.spec as Raw).stages as unknown[]).length : 0;
    await this.writeStatus(RT.pipelines, raw, { observedGeneration: gen, stages }, [
      parsed.ok
        ? { type: 'Accepted', status: 'True', reason: 'Valid', message: 'pipeline is valid', observedGeneration: gen }
        : { type: 'Accepted', status: 'False', reason: 'Invalid', message: parsed.errors.join('; '), observedGeneration: gen },
    ]);
  }

  // --- Trigger -------------------------------------------------------------------------------

  /** Status only: the partition servers of the source Stream deliver (docs/http.md). */
  private async reconcileTrigger(name: string): Promise<void> {
    const raw = this.informers.triggers.get(name);
    if (!raw || raw.metadata.deletionTimestamp) return;
    const gen = raw.metadata.generation ?? 0;
    const parsed = parseTrigger(raw as unknown as Raw);
    const sink = parsed.ok ? (parsed.value.spec.sink.uri ?? `http://${parsed.value.spec.sink.ref!.name}.${this.o.namespace}.svc.cluster.local:${parsed.value.spec.sink.ref!.port}${parsed.value.spec.sink.ref!.path}`) : '';
    await this.writeStatus(RT.triggers, raw, { observedGeneration: gen, sinkUri: sink }, [
      parsed.ok
        ? { type: 'Accepted', status: 'True', reason: 'Valid', message: `delivered by the partitions of Stream ${parsed.value.spec.sourceStream} to ${sink}`, observedGeneration: gen }
        : { type: 'Accepted', status: 'False', reason: 'Invalid', message: parsed.errors.join('; '), observedGeneration: gen },
    ]);
  }
}

/** Operator-made token Secrets have `hmac_key`; other labelled Secrets are not ours to manage. */
export function isTokenSecret(s: KubeObject): boolean {
  const data = (s as Raw).data as Raw | undefined;
  return typeof data?.hmac_key === 'string' || s.metadata.ownerReferences?.some((r) => r.kind === 'Token') === true;
}

function projectPvcSpec(spec: Raw | undefined): Raw {
  const out: Raw = {};
  if (!spec) return out;
  if (spec.accessModes) out.accessModes = spec.accessModes;
  if (spec.resources) out.resources = { requests: (spec.resources as Raw).requests };
  if (spec.storageClassName) out.storageClassName = spec.storageClassName;
  return out;
}
