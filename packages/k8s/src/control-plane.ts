/**
 * The Kubernetes implementation of the control-plane seam (`ControlPlaneSource`, DESIGN.md;
 * reference §2.10): what a partition server in a pod watches in its namespace.
 *
 * | resource            | filter                                                        |
 * |---------------------|---------------------------------------------------------------|
 * | streams.hadron.rs   | fieldSelector `metadata.name=$STREAM`                          |
 * | pipelines.hadron.rs | all in the namespace                                           |
 * | tokens.hadron.rs    | all in the namespace                                           |
 * | triggers.hadron.rs  | all in the namespace (push delivery, docs/http.md)              |
 * | v1 Secrets          | labelSelector `app=hadron,hadron.rs/controlled-by=hadron-operator` |
 *
 * Objects go through the same `parseStream`/`parsePipeline`/`parseToken`/`parseTokenSecret` as
 * the local manifests, with the same rules: an invalid object is logged and ignored, and the last
 * valid version of it stays in force (also for a Pipeline update that drops stages without the
 * destructive-update annotation). `change` is emitted only when the resulting view differs.
 * RBAC needed: get/list/watch on those four resources (the chart's `hadron-stream` Role).
 */
import { EventEmitter } from 'node:events';
import {
  EMPTY_VIEW,
  parsePipeline,
  parseStream,
  parseToken,
  parseTokenSecret,
  parseTrigger,
  validatePipelineUpdate,
  viewDigest,
  type ControlPlaneSource,
  type ControlPlaneView,
  type Logger,
  type Pipeline,
  type Stream,
  type Token,
  type TokenSecret,
  type Trigger,
} from '@hadron/core';
import { KubeClient } from './client.js';
import { Informer } from './informer.js';
import { loadConnection, type KubeConnection } from './kubeconfig.js';
import { RT, labelSelector, type KubeObject } from './types.js';

export type WatchedKind = 'streams' | 'pipelines' | 'tokens' | 'secrets' | 'triggers';

export const OPERATOR_SECRET_SELECTOR = labelSelector({ app: 'hadron', 'hadron.rs/controlled-by': 'hadron-operator' });

export interface KubernetesControlPlaneOptions {
  namespace: string;
  stream: string;
  logger: Logger;
  /** Default: `loadConnection()` (KUBECONFIG, else in-cluster). */
  connection?: KubeConnection;
  /** Each list/watch failure (for the `hadron_{kind}_watcher_errors` counters). */
  onWatchError?: (kind: WatchedKind, err: unknown) => void;
  backoff?: { baseMs?: number; maxMs?: number };
}

export class KubernetesControlPlane extends EventEmitter<{ change: [ControlPlaneView] }> implements ControlPlaneSource {
  private current: ControlPlaneView = EMPTY_VIEW;
  private digest = viewDigest(EMPTY_VIEW);
  private readonly client: KubeClient;
  private readonly informers: Record<WatchedKind, Informer>;
  private starting: Promise<void> | undefined;
  private pending: NodeJS.Immediate | undefined;
  /** Last valid version of each object, by kind and name. */
  private readonly lastValid = { streams: new Map<string, Stream>(), pipelines: new Map<string, Pipeline>(), tokens: new Map<string, Token>(), secrets: new Map<string, TokenSecret>(), triggers: new Map<string, Trigger>() };
  private readonly reported = new Map<string, string>();

  constructor(private readonly o: KubernetesControlPlaneOptions) {
    super();
    this.client = new KubeClient(o.connection ?? loadConnection(), { userAgent: `hadron-stream/${o.stream}` });
    const mk = (kind: WatchedKind, extra: { labelSelector?: string; fieldSelector?: string }): Informer => {
      const inf = new Informer({
        client: this.client,
        resource: RT[kind],
        namespace: o.namespace,
        logger: o.logger,
        onError: (err) => o.onWatchError?.(kind, err),
        ...(o.backoff ? { backoff: o.backoff } : {}),
        ...extra,
      });
      const changed = (): void => this.schedule();
      inf.on('add', changed).on('update', changed).on('delete', changed).on('sync', changed);
      return inf;
    };
    this.informers = {
      streams: mk('streams', { fieldSelector: `metadata.name=${o.stream}` }),
      pipelines: mk('pipelines', {}),
      tokens: mk('tokens', {}),
      secrets: mk('secrets', { labelSelector: OPERATOR_SECRET_SELECTOR }),
      triggers: mk('triggers', {}),
    };
  }

  view(): ControlPlaneView {
    return this.current;
  }

  /** Starts the four watches and resolves when each has listed once. Idempotent. */
  start(): Promise<void> {
    this.starting ??= (async () => {
      const all = Object.values(this.informers);
      for (const i of all) i.start();
      await Promise.all(all.map((i) => i.synced()));
      this.rebuild();
    })();
    return this.starting;
  }

  private schedule(): void {
    if (this.pending || this.starting === undefined) return;
    this.pending = setImmediate(() => {
      this.pending = undefined;
      if (Object.values(this.informers).every((i) => i.hasSynced)) this.rebuild();
    });
  }

  private problem(key: string, errors: string[], kept: boolean): void {
    const msg = `${errors.join('; ')}${kept ? '; keeping the previous valid version' : '; ignored'}`;
    if (this.reported.get(key) === msg) return;
    this.reported.set(key, msg);
    this.o.logger.error({ object: key, problem: msg }, 'invalid object from the Kubernetes API');
  }

  private rebuild(): void {
    const next = {
      streams: new Map<string, Stream>(),
      pipelines: new Map<string, Pipeline>(),
      tokens: new Map<string, Token>(),
      secrets: new Map<string, TokenSecret>(),
      triggers: new Map<string, Trigger>(),
    };
    const raw = (o: KubeObject): Record<string, unknown> => o as unknown as Record<string, unknown>;
    for (const o of this.informers.streams.list()) {
      const r = parseStream(raw(o));
      const name = o.metadata.name;
      if (r.ok) next.streams.set(name, r.value);
      else {
        const old = this.lastValid.streams.get(name);
        this.problem(`Stream/${name}`, r.errors, old !== undefined);
        if (old) next.streams.set(name, old);
      }
    }
    for (const o of this.informers.pipelines.list()) {
      const name = o.metadata.name;
      const old = this.lastValid.pipelines.get(name);
      const r = parsePipeline(raw(o));
      const errors = r.ok ? (old ? validatePipelineUpdate(old, r.value) : []) : r.errors;
      if (r.ok && errors.length === 0) next.pipelines.set(name, r.value);
      else {
        this.problem(`Pipeline/${name}`, errors, old !== undefined);
        if (old) next.pipelines.set(name, old);
      }
    }
    for (const o of this.informers.tokens.list()) {
      const r = parseToken(raw(o));
      const name = o.metadata.name;
      if (r.ok) next.tokens.set(name, r.value);
      else {
        const old = this.lastValid.tokens.get(name);
        this.problem(`Token/${name}`, r.errors, old !== undefined);
        if (old) next.tokens.set(name, old);
      }
    }
    for (const o of this.informers.secrets.list()) {
      const r = parseTokenSecret(raw(o));
      if (r === null) continue;
      // A Secret without a usable key is skipped (reference §2.10); no older key is kept, since
      // a replaced Secret must revoke the old one.
      if (r.ok) next.secrets.set(r.value.name, r.value);
      else this.problem(`Secret/${o.metadata.name}`, r.errors, false);
    }
    for (const o of this.informers.triggers.list()) {
      const r = parseTrigger(raw(o));
      const name = o.metadata.name;
      if (r.ok) next.triggers.set(name, r.value);
      else {
        const old = this.lastValid.triggers.get(name);
        this.problem(`Trigger/${name}`, r.errors, old !== undefined);
        if (old) next.triggers.set(name, old);
      }
    }
    for (const k of ['streams', 'pipelines', 'tokens', 'secrets', 'triggers'] as const) {
      const m = this.lastValid[k] as Map<string, unknown>;
      m.clear();
      for (const [n, v] of next[k]) m.set(n, v);
    }
    const d = viewDigest(next);
    if (d === this.digest) return;
    this.digest = d;
    this.current = next;
    this.emit('change', next);
  }

  /** Watch statistics per kind (tests, diagnostics). */
  stats(): Record<WatchedKind, Informer['stats']> {
    return {
      streams: this.informers.streams.stats,
      pipelines: this.informers.pipelines.stats,
      tokens: this.informers.tokens.stats,
      secrets: this.informers.secrets.stats,
      triggers: this.informers.triggers.stats,
    };
  }

  async close(): Promise<void> {
    if (this.pending) clearImmediate(this.pending);
    await Promise.all(Object.values(this.informers).map((i) => i.close()));
    this.client.close();
  }
}
