/**
 * Consumer groups of one partition (reference §2.6, with DESIGN.md's fixes). Pure domain logic
 * over a `PartitionStore`; members are reached through a `MemberTransport`, so this module knows
 * nothing of gRPC.
 *
 * Per group, at most ONE batch is in flight (strict order per partition). A batch goes to one
 * idle member (round robin, avoiding the member that just failed it when another is available).
 *
 * Member states:
 *   idle ──deliver──▶ busy ──ack──▶ idle (group offset advances; durable groups persist it)
 *                      ├──nack──▶ idle (batch redelivered after exponential backoff)
 *                      ├──ack deadline passes──▶ stale (batch goes to another member at once;
 *                      │        the stale member's late reply is discarded, then it is idle)
 *                      └──disconnect──▶ gone (batch redelivered at once to another member)
 * An ephemeral group disappears when its last member leaves, also mid-delivery (fixing §11.9).
 * A durable group's name, batch size and acked offset survive restarts; its first member fixes
 * `durable` and `maxBatchSize`; start points apply only when a group is created.
 */
import { randomUUID } from 'node:crypto';
import { HadronError, exponentialDelay, type Logger } from '@hadron/core';
import type { PartitionStore, StoredEvent } from './storage/partition-store.js';
import type { StreamMetrics } from './metrics.js';
import { OffsetPersister } from './offset-persister.js';

export type StartPoint = { kind: 'beginning' } | { kind: 'latest' } | { kind: 'offset'; offset: number };

export interface GroupSetup {
  group: string;
  durable: boolean;
  maxBatchSize: number;
  start: StartPoint;
}

export interface Delivery {
  events: StoredEvent[];
  lastIncludedOffset: number;
  /** 1 for the first delivery of this batch, 2+ for redeliveries. */
  attempt: number;
}

export interface MemberTransport {
  /** Sends a delivery; rejects when the member is gone. */
  send(d: Delivery): Promise<void>;
  /** Ends the member's subscription with an error (e.g. DATA_CORRUPTION). */
  fail(err: unknown): void;
}

export interface MemberHandle {
  readonly id: string;
  ack(): void;
  nack(reason: string): void;
  leave(): void;
}

interface Member {
  id: string;
  transport: MemberTransport;
  status: 'idle' | 'busy' | 'stale' | 'gone';
}

interface Batch {
  events: StoredEvent[];
  last: number;
  attempts: number;
  notBefore: number;
  avoid: string | undefined;
}

interface Group {
  name: string;
  durable: boolean;
  maxBatchSize: number;
  /** Last acked offset. */
  offset: number;
  members: Map<string, Member>;
  rr: number;
  batch: Batch | undefined;
  inflight: { member: Member; timer: NodeJS.Timeout } | undefined;
  pumping: boolean;
  again: boolean;
  retryTimer: NodeJS.Timeout | undefined;
  ready: Promise<void>;
  removed: boolean;
  /** The batch after the one in flight, read ahead so an ack is answered without a disk read. */
  prefetch: { from: number; events: Promise<StoredEvent[]> } | undefined;
}

export interface SubscriptionsOptions {
  store: PartitionStore;
  metrics: StreamMetrics;
  logger: Logger;
  ackDeadlineMs: number;
  nackBackoff: { baseMs: number; maxMs: number };
  maxDeliveryBytes: number;
  /** Called when a durable offset cannot be persisted (the process must stop). */
  onFatal: (err: unknown) => void;
}

export class Subscriptions {
  private readonly groups = new Map<string, Group>();
  private readonly unsubscribe: () => void;
  private closed = false;
  private readonly persister: OffsetPersister;

  constructor(private readonly o: SubscriptionsOptions) {
    this.persister = new OffsetPersister({ store: o.store, logger: o.logger, onFatal: o.onFatal });
    for (const g of o.store.durableGroups()) {
      this.groups.set(g.name, this.newGroup(g.name, true, g.maxBatchSize, g.offset));
      o.metrics.lastOffsetProcessed.set({ group: g.name }, g.offset);
    }
    o.metrics.numGroups.set(this.groups.size);
    this.unsubscribe = o.store.onAppend((last) => {
      for (const g of this.groups.values()) {
        this.o.metrics.groupLag.set({ group: g.name }, last - g.offset);
        if (!g.inflight && !g.batch && g.members.size) this.pump(g);
      }
    });
  }

  private newGroup(name: string, durable: boolean, maxBatchSize: number, offset: number): Group {
    return {
      name,
      durable,
      maxBatchSize,
      offset,
      members: new Map(),
      rr: 0,
      batch: undefined,
      inflight: undefined,
      pumping: false,
      again: false,
      retryTimer: undefined,
      ready: Promise.resolve(),
      removed: false,
      prefetch: undefined,
    };
  }

  /** Snapshot for inspection and tests. */
  describe(): Array<{ name: string; durable: boolean; maxBatchSize: number; offset: number; members: number; inflight: boolean }> {
    return [...this.groups.values()].map((g) => ({
      name: g.name,
      durable: g.durable,
      maxBatchSize: g.maxBatchSize,
      offset: g.offset,
      members: g.members.size,
      inflight: g.inflight !== undefined,
    }));
  }

  /** Creates the group if needed and adds a member; validation errors are INVALID_ARGUMENT. */
  async join(setup: GroupSetup, transport: MemberTransport): Promise<MemberHandle> {
    if (this.closed) throw new HadronError('UNAVAILABLE', 'server shutting down');
    if (setup.group === '') throw new HadronError('INVALID_ARGUMENT', 'subscriber group name may not be an empty string');
    if (setup.maxBatchSize <= 0) throw new HadronError('INVALID_ARGUMENT', 'subscriber batch size must be greater than 0');
    let g = this.groups.get(setup.group);
    if (!g) {
      const store = this.o.store;
      const offset =
        setup.start.kind === 'beginning'
          ? store.firstOffset - 1
          : setup.start.kind === 'latest'
            ? store.lastOffset
            : Math.min(Math.max(setup.start.offset - 1, 0), store.lastOffset);
      g = this.newGroup(setup.group, setup.durable, setup.maxBatchSize, offset);
      this.groups.set(g.name, g);
      this.o.metrics.numGroups.set(this.groups.size);
      this.o.metrics.lastOffsetProcessed.set({ group: g.name }, offset);
      if (g.durable) g.ready = this.createDurable(g, offset);
      this.o.logger.info({ group: g.name, durable: g.durable, maxBatchSize: g.maxBatchSize, offset }, 'subscription group created');
    }
    const group = g;
    await group.ready;
    const member: Member = { id: randomUUID(), transport, status: 'idle' };
    group.members.set(member.id, member);
    this.o.metrics.groupMembers.set({ group: group.name }, group.members.size);
    this.pump(group);
    return {
      id: member.id,
      ack: () => this.onAck(group, member),
      nack: (reason) => this.onNack(group, member, reason),
      leave: () => this.onLeave(group, member),
    };
  }

  /** A group whose creation could not be stored (e.g. DISK_FULL) is forgotten, so a later join retries. */
  private createDurable(g: Group, offset: number): Promise<void> {
    return this.o.store.createDurableGroup(g.name, g.maxBatchSize, offset).catch((err: unknown) => {
      if (this.groups.get(g.name) === g) this.removeGroup(g, 'durable group could not be stored');
      throw err;
    });
  }

  private pick(g: Group): Member | undefined {
    const idle = [...g.members.values()].filter((m) => m.status === 'idle');
    if (idle.length === 0) return undefined;
    const avoid = g.batch?.avoid;
    const candidates = idle.length > 1 && avoid ? idle.filter((m) => m.id !== avoid) : idle;
    return candidates[g.rr++ % candidates.length];
  }

  private pump(g: Group): void {
    if (g.pumping) {
      g.again = true;
      return;
    }
    g.pumping = true;
    g.again = false;
    void this.pumpLoop(g).finally(() => {
      g.pumping = false;
      // A wake-up that arrived after the loop decided to stop must not be lost.
      if (g.again) this.pump(g);
    });
  }

  private async pumpLoop(g: Group): Promise<void> {
    do {
      g.again = false;
      if (this.closed || g.removed || g.inflight || g.members.size === 0) return;
      if (![...g.members.values()].some((m) => m.status === 'idle')) return;
      if (!g.batch) {
        if (g.offset >= this.o.store.lastOffset) return;
        let events: StoredEvent[];
        try {
          const pre = g.prefetch;
          g.prefetch = undefined;
          events = await (pre && pre.from === g.offset + 1 ? pre.events : this.read(g, g.offset + 1));
        } catch (err) {
          if (err instanceof HadronError && err.code === 'DATA_CORRUPTION') {
            // Never serve corrupt data, and never stall silently: end every member's call with
            // DATA_LOSS. The group keeps its offset; an operator must repair the partition.
            this.o.logger.error({ err, group: g.name, offset: g.offset + 1 }, 'corrupt record at the group position; failing its members');
            for (const m of [...g.members.values()]) {
              m.transport.fail(err);
              this.onLeave(g, m);
            }
            return;
          }
          this.o.logger.error({ err, group: g.name, offset: g.offset + 1 }, 'cannot read the next batch; retrying in 5 s');
          this.retryLater(g, 5000);
          return;
        }
        if (g.removed || g.batch) continue;
        if (events.length === 0) return;
        g.batch = { events, last: events[events.length - 1]!.offset, attempts: 0, notBefore: 0, avoid: undefined };
      }
      const batch = g.batch;
      const wait = batch.notBefore - Date.now();
      if (wait > 0) {
        this.retryLater(g, wait);
        return;
      }
      const member = this.pick(g);
      if (!member) return;
      batch.attempts++;
      member.status = 'busy';
      const timer = setTimeout(() => this.onDeadline(g, member), this.o.ackDeadlineMs);
      g.inflight = { member, timer };
      this.o.metrics.deliveries.inc({ group: g.name });
      if (batch.attempts > 1) this.o.metrics.redeliveries.inc({ group: g.name });
      member.transport.send({ events: batch.events, lastIncludedOffset: batch.last, attempt: batch.attempts }).catch(() => this.onLeave(g, member));
      if (batch.attempts === 1 && !g.prefetch && batch.last < this.o.store.lastOffset) {
        const from = batch.last + 1;
        const events = this.read(g, from);
        events.catch(() => undefined); // surfaced when awaited
        g.prefetch = { from, events };
      }
    } while (g.again);
  }

  private read(g: Group, from: number): Promise<StoredEvent[]> {
    return this.o.store.readFrom(from, { maxEvents: g.maxBatchSize, maxBytes: this.o.maxDeliveryBytes });
  }

  private retryLater(g: Group, ms: number): void {
    if (g.retryTimer) return;
    g.retryTimer = setTimeout(() => {
      g.retryTimer = undefined;
      this.pump(g);
    }, ms);
  }

  private onAck(g: Group, m: Member): void {
    if (m.status === 'stale') {
      m.status = 'idle';
      this.pump(g);
      return;
    }
    if (!g.inflight || g.inflight.member !== m || !g.batch) {
      this.o.logger.debug({ group: g.name, member: m.id }, 'ack with no delivery outstanding; ignored');
      return;
    }
    clearTimeout(g.inflight.timer);
    const last = g.batch.last;
    g.offset = last;
    g.batch = undefined;
    g.inflight = undefined;
    m.status = 'idle';
    this.o.metrics.lastOffsetProcessed.set({ group: g.name }, last);
    this.o.metrics.groupLag.set({ group: g.name }, this.o.store.lastOffset - last);
    // The next batch may be delivered before this commit is on disk: after a crash the group
    // resumes from the last persisted ack, so delivery stays at-least-once.
    if (g.durable && !g.removed) this.persister.request(g.name, last);
    this.pump(g);
  }

  private onNack(g: Group, m: Member, reason: string): void {
    if (m.status === 'stale') {
      m.status = 'idle';
      this.pump(g);
      return;
    }
    if (!g.inflight || g.inflight.member !== m || !g.batch) {
      this.o.logger.debug({ group: g.name, member: m.id }, 'nack with no delivery outstanding; ignored');
      return;
    }
    clearTimeout(g.inflight.timer);
    g.inflight = undefined;
    m.status = 'idle';
    const delay = exponentialDelay(g.batch.attempts, this.o.nackBackoff);
    g.batch.notBefore = Date.now() + delay;
    g.batch.avoid = m.id;
    this.o.metrics.nacks.inc({ group: g.name });
    this.o.logger.info({ group: g.name, lastIncludedOffset: g.batch.last, attempt: g.batch.attempts, retryInMs: delay, reason }, 'batch nacked');
    this.pump(g);
  }

  private onDeadline(g: Group, m: Member): void {
    if (!g.inflight || g.inflight.member !== m || !g.batch) return;
    g.inflight = undefined;
    m.status = 'stale';
    g.batch.avoid = m.id;
    g.batch.notBefore = 0;
    this.o.metrics.ackTimeouts.inc({ group: g.name });
    this.o.logger.warn(
      { group: g.name, member: m.id, lastIncludedOffset: g.batch.last, attempt: g.batch.attempts, ackDeadlineMs: this.o.ackDeadlineMs },
      'ack deadline exceeded; handing the batch to another member',
    );
    this.pump(g);
  }

  private onLeave(g: Group, m: Member): void {
    if (m.status === 'gone') return;
    m.status = 'gone';
    g.members.delete(m.id);
    this.o.metrics.groupMembers.set({ group: g.name }, g.members.size);
    if (g.inflight?.member === m) {
      clearTimeout(g.inflight.timer);
      g.inflight = undefined;
      if (g.batch) {
        g.batch.notBefore = 0;
        g.batch.avoid = m.id;
      }
    }
    if (g.members.size === 0 && !g.durable) {
      this.removeGroup(g);
      return;
    }
    this.pump(g);
  }

  private removeGroup(g: Group, why = 'ephemeral subscription group removed (last member left)'): void {
    g.removed = true;
    if (g.retryTimer) clearTimeout(g.retryTimer);
    if (g.inflight) clearTimeout(g.inflight.timer);
    this.groups.delete(g.name);
    this.o.metrics.numGroups.set(this.groups.size);
    this.o.metrics.groupMembers.remove({ group: g.name });
    this.o.metrics.groupLag.remove({ group: g.name });
    this.o.metrics.lastOffsetProcessed.remove({ group: g.name });
    this.o.logger.info({ group: g.name }, why);
  }

  /** Durable groups that have not acked events below `offset` (for retention accounting). */
  durableLaggards(offset: number): Array<{ name: string; offset: number }> {
    return [...this.groups.values()].filter((g) => g.durable && g.offset < offset - 1).map((g) => ({ name: g.name, offset: g.offset }));
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    this.persister.close();
    for (const g of this.groups.values()) {
      if (g.retryTimer) clearTimeout(g.retryTimer);
      if (g.inflight) clearTimeout(g.inflight.timer);
    }
  }
}
