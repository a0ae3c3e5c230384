/**
 * Leader election through the `coordination.k8s.io/v1` Lease `hadron-operator` (reference §3.3),
 * following client-go's leaderelection package:
 *
 *   standby ──acquire ok──▶ leading ──renew ok (every renewSeconds)──▶ leading
 *      ▲   ╲                  │
 *      │    ╲──held by other──▶ following(holder) ──lease expired (observed locally)──▶ acquire
 *      │                      │
 *      └── renew conflict (409), or no successful renew for the whole renew deadline ──┘
 *
 * - Expiry is judged on the local clock from the moment a change of the Lease was *observed*
 *   (not from `renewTime`), so clock skew between hosts cannot cause two leaders.
 * - Writes use the read `resourceVersion` (optimistic concurrency): of two contenders only one
 *   update succeeds; the other gets 409 Conflict.
 * - A leader steps down when it could not renew for `leaseDuration − retry` (its renew deadline),
 *   i.e. before any follower may consider the Lease expired.
 * - `fence()` is called before every mutating API call: it fails unless this instance is leading
 *   locally *and* a fresh GET of the Lease names it as holder (reference §3.3 "Fencing").
 * - `stop({release: true})` hands the Lease over at once by clearing the holder.
 */
import { EventEmitter } from 'node:events';
import { CANONICAL_LABELS, HadronError, sleep, type Logger } from '@hadron/core';
import { KubeApiError, RT, resourcePath, type KubeClient, type KubeObject } from '@hadron/k8s';
import { LEASE_RETRY_SECONDS } from './config.js';

export const LEASE_NAME = 'hadron-operator';

export type LeaderState = { kind: 'standby' } | { kind: 'leading' } | { kind: 'following'; holder: string };

interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}
type Lease = KubeObject & { spec?: LeaseSpec };

export interface LeaderElectorOptions {
  client: KubeClient;
  namespace: string;
  identity: string;
  leaseDurationSeconds: number;
  renewSeconds: number;
  retrySeconds?: number;
  logger: Logger;
  /** Called with the Lease's holder whenever it is seen to change, and with leaseTransitions. */
  onObserved?: (holder: string | undefined, transitions: number) => void;
}

export class NotLeaderError extends HadronError {
  override name = 'NotLeaderError';
  constructor(identity: string, holder: string | undefined) {
    super('UNAVAILABLE', `${identity} is not the leader (Lease held by ${holder ?? 'nobody'}); refusing to write`, { retriable: true, context: { holder } });
  }
}

/** RFC 3339 with microseconds, as `metav1.MicroTime` expects. */
const microTime = (ms: number): string => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export class LeaderElector extends EventEmitter<{ state: [LeaderState] }> {
  private stateValue: LeaderState = { kind: 'standby' };
  private observed: { resourceVersion: string; holder: string | undefined; at: number } | undefined;
  private lastRenewAt = 0;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly path: string;
  private readonly collection: string;

  constructor(private readonly o: LeaderElectorOptions) {
    super();
    this.path = resourcePath(RT.leases, o.namespace, LEASE_NAME);
    this.collection = resourcePath(RT.leases, o.namespace);
  }

  get state(): LeaderState {
    return this.stateValue;
  }

  private get retryMs(): number {
    return (this.o.retrySeconds ?? LEASE_RETRY_SECONDS) * 1000;
  }
  private get durationMs(): number {
    return this.o.leaseDurationSeconds * 1000;
  }

  /** Leading, and the last successful renewal is recent enough that no one else can hold it. */
  get isLeader(): boolean {
    return this.stateValue.kind === 'leading' && Date.now() < this.lastRenewAt + this.durationMs - this.retryMs;
  }

  start(): void {
    this.loop ??= this.run();
  }

  private setState(s: LeaderState): void {
    const prev = this.stateValue;
    if (prev.kind === s.kind && (prev.kind !== 'following' || (s.kind === 'following' && prev.holder === s.holder))) return;
    this.stateValue = s;
    this.o.logger.info({ from: prev, to: s }, 'leader election state changed');
    this.emit('state', s);
  }

  private observe(lease: Lease, now: number): void {
    const rv = lease.metadata.resourceVersion ?? '';
    const holder = lease.spec?.holderIdentity || undefined;
    if (this.observed?.resourceVersion !== rv) {
      if (this.observed === undefined || this.observed.holder !== holder) this.o.onObserved?.(holder, lease.spec?.leaseTransitions ?? 0);
      this.observed = { resourceVersion: rv, holder, at: now };
    }
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        await this.tryAcquireOrRenew(signal);
      } catch (err) {
        if (signal.aborted) break;
        const conflict = err instanceof KubeApiError && err.conflict;
        this.o.logger.warn({ err, state: this.stateValue }, conflict ? 'Lease changed under us' : 'Lease acquire/renew failed');
        // A conflict means someone else wrote the Lease; otherwise keep leading only until the
        // renew deadline, which ends before any follower may take over.
        if (conflict || !this.isLeader) this.setState({ kind: 'standby' });
      }
      const wait = this.stateValue.kind === 'leading' ? this.o.renewSeconds * 1000 : this.retryMs;
      await sleep(wait, signal).catch(() => undefined);
    }
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<void> {
    const now = Date.now();
    let lease = await this.o.client.getOrUndefined<Lease>(this.path, AbortSignal.any([signal, AbortSignal.timeout(10_000)]));
    if (lease === undefined) {
      const created = await this.o.client
        .create<Lease>(this.collection, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: LEASE_NAME, namespace: this.o.namespace, labels: { app: CANONICAL_LABELS.app, 'hadron.rs/controlled-by': CANONICAL_LABELS['hadron.rs/controlled-by'] } },
          spec: { holderIdentity: this.o.identity, leaseDurationSeconds: this.o.leaseDurationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
        }, signal)
        .catch((err: unknown) => {
          if (err instanceof KubeApiError && err.statusCode === 409) return undefined; // lost the race
          throw err;
        });
      if (created === undefined) return;
      this.observe(created, now);
      this.lastRenewAt = now;
      this.setState({ kind: 'leading' });
      return;
    }
    this.observe(lease, now);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity || undefined;
    const duration = (spec.leaseDurationSeconds ?? this.o.leaseDurationSeconds) * 1000;
    if (holder !== undefined && holder !== this.o.identity && this.observed!.at + duration > now) {
      this.setState({ kind: 'following', holder });
      return;
    }
    const mine = holder === this.o.identity && this.stateValue.kind === 'leading';
    lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.o.identity,
        leaseDurationSeconds: this.o.leaseDurationSeconds,
        renewTime: microTime(now),
        acquireTime: mine ? (spec.acquireTime ?? microTime(now)) : microTime(now),
        leaseTransitions: mine || holder === this.o.identity ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    // resourceVersion is kept: a concurrent writer makes this fail with 409.
    const updated = await this.o.client.replace<Lease>(this.path, lease, AbortSignal.any([signal, AbortSignal.timeout(10_000)]));
    this.observe(updated, now);
    this.lastRenewAt = now;
    this.setState({ kind: 'leading' });
  }

  /** Throws NotLeaderError unless this instance holds the Lease right now. */
  async fence(signal?: AbortSignal): Promise<void> {
    if (!this.isLeader) throw new NotLeaderError(this.o.identity, this.observed?.holder);
    const timeout = AbortSignal.timeout(5_000);
    const lease = await this.o.client.get<Lease>(this.path, signal ? AbortSignal.any([signal, timeout]) : timeout);
    const holder = lease.spec?.holderIdentity || undefined;
    if (holder !== this.o.identity) {
      this.setState(holder ? { kind: 'following', holder } : { kind: 'standby' });
      throw new NotLeaderError(this.o.identity, holder);
    }
  }

  /** Stops the loop; with `release`, clears the holder so another instance takes over at once. */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.abort.abort(new Error('leader elector stopped'));
    await this.loop;
    const wasLeading = this.stateValue.kind === 'leading';
    this.setState({ kind: 'standby' });
    if (opts.release && wasLeading) {
      try {
        const lease = await this.o.client.get<Lease>(this.path, AbortSignal.timeout(5_000));
        if (lease.spec?.holderIdentity === this.o.identity) {
          await this.o.client.replace(this.path, { ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(Date.now()) } }, AbortSignal.timeout(5_000));
          this.o.logger.info('released the Lease');
        }
      } catch (err) {
        this.o.logger.warn({ err }, 'could not release the Lease');
      }
    }
  }
}
