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
 * An ack or nack may name its batch (`offset` = last_included_offset); a named reply that does
 * not match the batch in flight to that member (or, for a stale member, the batch it went stale
 * on) is ignored and counted, so a duplicate can never ack a batch the member has not seen.
 * Undecodable stored events (from before publish-time validation) end a batch and are skipped
 * when they come first, with a metric and an error log naming the offset.
 * A stale member that had not even read its delivery (send still pending) is ended instead.
 * Memory: every batch and read-ahead is charged to one budget shared by all groups
 * (`maxBufferBytes`); a group waits for budget rather than read, reads ahead only once its last
 * delivery drained, and gives its batch back on an ack deadline (docs/configuration.md, Limits).
 * An ephemeral group disappears when its last member leaves, also mid-delivery (fixing §11.9).
 * A durable group's name, batch size and acked offset survive restarts; its first member fixes
 * `durable` and `maxBatchSize`; start points apply only when a group is created.
 */
import { randomUUID } from 'node:crypto';
import { HadronError, checkGroupName, exponentialDelay, type Logger } from '@hadron/core';
import { checkEventBytes } from '@hadron/proto';
import type { PartitionStore, StoredEvent } from './storage/partition-store.js';
import type { StreamMetrics } from './metrics.js';
import { ClientTextLog } from './client-text-log.js';
import { OffsetPersister } from './offset-persister.js';
import { DeliveryAttempts } from './delivery-attempts.js';
import { metaKeys } from './storage/layout.js';
import type { DeadLetterHook } from './dead-letter.js';

export type StartPoint = { kind: 'beginning' } | { kind: 'latest' } | { kind: 'offset'; offset: number };

export interface GroupSetup {
  group: string;
  durable: boolean;
  maxBatchSize: number;
  start: StartPoint;
  /** In-process members (trigger delivery) that always reply set their own deadline. */
  ackDeadlineMs?: number;
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
  /**
   * Acks the batch in flight to this member. With `offset` (> 0) the ack applies only if it
   * names that batch's last offset; otherwise it is ignored and counted (issue 14 item 9).
   */
  ack(offset?: number): void;
  /** Nacks the batch in flight; `offset` as for `ack`. */
  nack(reason: string, offset?: number): void;
  leave(): void;
}

interface Member {
  id: string;
  transport: MemberTransport;
  status: 'idle' | 'busy' | 'stale' | 'gone';
  /** Last offset of the batch this member went stale on (its late reply may name it). */
  staleLast?: number;
  /** A delivery is still in our buffers (send not resolved: the member is not reading). */
  congested: boolean;
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
  prefetch: { from: number; events: Promise<StoredEvent[]>; charged: number } | undefined;
  /** Bytes of the subscriber buffer budget charged for `batch`. */
  batchCharged: number;
  /**
   * A batch given back to the budget while undelivered or unacked (ack deadline passed, or a
   * durable group lost its last member): re-read with the same offsets and attempt count.
   */
  carry: { attempts: number; last: number } | undefined;
  /** Redeliveries since this process started (inspection). */
  redeliveries: number;
  /** Why the last delivery failed (nack reason, deadline, disconnect), for dead-lettering. */
  lastError: string;
  ackDeadlineMs: number | undefined;
  /** The write of the last failure record: a redelivery waits for it (delivery-attempts.ts). */
  failureWrite: Promise<void> | undefined;
}

/** One group as `describe()` reports it. */
export interface GroupSnapshot {
  name: string;
  durable: boolean;
  maxBatchSize: number;
  /** Last acked offset. */
  offset: number;
  members: number;
  inflight: boolean;
  /** Last offset of the batch in flight (0 = none) and its attempt. */
  inflightLast: number;
  inflightAttempt: number;
  redeliveries: number;
}

export interface SubscriptionsOptions {
  store: PartitionStore;
  metrics: StreamMetrics;
  logger: Logger;
  ackDeadlineMs: number;
  nackBackoff: { baseMs: number; maxMs: number };
  maxDeliveryBytes: number;
  /**
   * Event bytes all groups together may hold in batches and read-aheads
   * (HADRON_MAX_SUBSCRIBER_BUFFER_BYTES, at least `maxDeliveryBytes`). A group that cannot get
   * its next batch's worth waits until another group releases some; read-ahead is skipped.
   */
  maxBufferBytes?: number;
  /** Called when a durable offset cannot be persisted (the process must stop). */
  onFatal: (err: unknown) => void;
  /** The Stream's dead-letter policy for durable groups (dead-letter.ts). */
  deadLetter?: DeadLetterHook;
}

export class Subscriptions {
  private readonly groups = new Map<string, Group>();
  private readonly unsubscribe: () => void;
  private closed = false;
  private readonly textLog: ClientTextLog;
  /** Subscriber buffer budget: bytes charged, and groups waiting for some to be released. */
  private buffered = 0;
  private readonly waiting = new Set<Group>();

  private readonly persister: OffsetPersister;
  private readonly attempts: DeliveryAttempts;
  private shuttingDown = false;

  constructor(private readonly o: SubscriptionsOptions) {
    this.persister = new OffsetPersister({ store: o.store, logger: o.logger, onFatal: o.onFatal });
    this.attempts = new DeliveryAttempts({ meta: o.store.meta, keyOf: metaKeys.groupAttempts, logger: o.logger, onFatal: o.onFatal });
    this.textLog = new ClientTextLog({ logger: o.logger, onSuppressed: () => o.metrics.protocol.clientTextSuppressed.inc() });
    for (const g of o.store.durableGroups()) {
      const group = this.newGroup(g.name, true, g.maxBatchSize, g.offset);
      // Failed deliveries of the unacked batch count on after a restart (dead-lettering).
      const [failed] = this.attempts.pending(g.name, g.offset).filter(([last]) => last <= o.store.lastOffset);
      if (failed) {
        group.carry = { attempts: failed[1].attempts, last: failed[0] };
        group.lastError = failed[1].lastError;
      }
      this.groups.set(g.name, group);
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
      batchCharged: 0,
      carry: undefined,
      redeliveries: 0,
      failureWrite: undefined,
      lastError: '',
      ackDeadlineMs: undefined,
    };
  }

  /** Event bytes held for groups (batches in flight and read-aheads); the buffered-bytes gauge. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  private tryCharge(n: number): boolean {
    if (this.buffered + n > (this.o.maxBufferBytes ?? Infinity)) return false;
    this.buffered += n;
    return true;
  }

  private release(n: number): void {
    if (n === 0) return;
    this.buffered -= n;
    for (const g of [...this.waiting]) {
      this.waiting.delete(g);
      this.pump(g);
    }
  }

  /** Gives back what a group holds (it went away, or a durable group lost its last member). */
  private dropBuffers(g: Group): void {
    if (g.prefetch) this.release(g.prefetch.charged);
    g.prefetch = undefined;
    if (g.batch && !g.inflight) this.giveBackBatch(g, g.batch);
    this.waiting.delete(g);
  }

  private giveBackBatch(g: Group, batch: Batch): void {
    g.carry = { attempts: batch.attempts, last: batch.last };
    g.batch = undefined;
    this.release(g.batchCharged);
    g.batchCharged = 0;
  }

  /** Snapshot for inspection and tests. */
  describe(): GroupSnapshot[] {
    return [...this.groups.values()].map((g) => ({
      name: g.name,
      durable: g.durable,
      maxBatchSize: g.maxBatchSize,
      offset: g.offset,
      members: g.members.size,
      inflight: g.inflight !== undefined,
      inflightLast: g.inflight && g.batch ? g.batch.last : 0,
      inflightAttempt: g.inflight && g.batch ? g.batch.attempts : 0,
      redeliveries: g.redeliveries,
    }));
  }

  /**
   * Moves a durable group's acked offset to `target(store)` (clamped to the readable range).
   * Refused with GROUP_BUSY while members are connected unless `force`: their subscriptions
   * then end first (UNAVAILABLE, so clients reconnect and continue from the new offset).
   */
  async resetGroup(name: string, target: (store: PartitionStore) => Promise<number>, opts: { force: boolean }): Promise<{ previous: number; offset: number; disconnected: number }> {
    const g = this.adminTarget(name, opts.force, 'reset');
    if (!g.durable) throw new HadronError('INVALID_ARGUMENT', `group '${name}' is not durable: it has no stored offset to reset`);
    const wanted = await target(this.o.store);
    const g2 = this.adminTarget(name, opts.force, 'reset');
    if (g2 !== g) throw new HadronError('UNAVAILABLE', `group '${name}' changed during the reset; retry`);
    const disconnected = this.disconnectAll(g, `group '${name}' was reset by an administrator; reconnect to continue from the new offset`);
    const store = this.o.store;
    const offset = Math.min(Math.max(wanted, store.firstOffset - 1, 0), store.lastOffset);
    const previous = g.offset;
    this.dropBuffers(g);
    g.batch = undefined;
    g.carry = undefined;
    if (g.retryTimer) clearTimeout(g.retryTimer);
    g.retryTimer = undefined;
    g.offset = offset;
    this.persister.forget(name);
    await this.attempts.forget(name);
    await store.commitGroupOffset(name, offset);
    this.o.metrics.lastOffsetProcessed.set({ group: name }, offset);
    this.o.metrics.groupLag.set({ group: name }, store.lastOffset - offset);
    this.o.logger.info({ group: name, previous, offset, disconnected }, 'group offset reset by an administrator');
    return { previous, offset, disconnected };
  }

  /** Deletes a group (and its stored state); GROUP_BUSY while members are connected unless `force`. */
  async deleteGroup(name: string, opts: { force: boolean }): Promise<{ deleted: boolean; disconnected: number }> {
    if (!this.groups.has(name)) return { deleted: false, disconnected: 0 };
    const g = this.adminTarget(name, opts.force, 'delete');
    const disconnected = this.disconnectAll(g, `group '${name}' was deleted by an administrator`);
    if (this.groups.get(name) === g) this.removeGroup(g, 'group deleted by an administrator');
    if (g.durable) {
      this.persister.forget(name);
      await this.attempts.forget(name);
      await this.o.store.deleteGroup(name);
    }
    return { deleted: true, disconnected };
  }

  private adminTarget(name: string, force: boolean, verb: string): Group {
    checkGroupName(name);
    const g = this.groups.get(name);
    if (!g) throw new HadronError('NOT_FOUND', `group '${name}' does not exist on this partition`);
    if (g.members.size > 0 && !force) {
      throw new HadronError('GROUP_BUSY', `cannot ${verb} group '${name}': ${g.members.size} member(s) connected; stop them first or use --force`, { context: { group: name, members: g.members.size } });
    }
    return g;
  }

  private disconnectAll(g: Group, why: string): number {
    const members = [...g.members.values()];
    for (const m of members) {
      m.transport.fail(new HadronError('UNAVAILABLE', why));
      this.onLeave(g, m);
    }
    return members.length;
  }

  /** Creates the group if needed and adds a member; validation errors are INVALID_ARGUMENT. */
  async join(setup: GroupSetup, transport: MemberTransport): Promise<MemberHandle> {
    if (this.closed) throw new HadronError('UNAVAILABLE', 'server shutting down');
    checkGroupName(setup.group);
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
      g.ackDeadlineMs = setup.ackDeadlineMs;
      this.o.metrics.numGroups.set(this.groups.size);
      this.o.metrics.lastOffsetProcessed.set({ group: g.name }, offset);
      if (g.durable) g.ready = this.createDurable(g, offset);
      this.o.logger.info({ group: g.name, durable: g.durable, maxBatchSize: g.maxBatchSize, offset }, 'subscription group created');
    }
    const group = g;
    if (setup.ackDeadlineMs !== undefined) group.ackDeadlineMs = setup.ackDeadlineMs;
    await group.ready;
    const member: Member = { id: randomUUID(), transport, status: 'idle', congested: false };
    group.members.set(member.id, member);
    this.o.metrics.groupMembers.set({ group: group.name }, group.members.size);
    this.pump(group);
    return {
      id: member.id,
      ack: (offset) => this.onAck(group, member, offset),
      nack: (reason, offset) => this.onNack(group, member, reason, offset),
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
        const pre = g.prefetch;
        g.prefetch = undefined;
        let charged: number;
        if (pre && pre.from === g.offset + 1) charged = pre.charged;
        else {
          if (pre) this.release(pre.charged);
          // Bound what all groups hold together: wait for budget instead of reading.
          if (!this.tryCharge(this.o.maxDeliveryBytes)) {
            this.waiting.add(g);
            return;
          }
          charged = this.o.maxDeliveryBytes;
        }
        const from = g.offset + 1;
        try {
          events = await (pre && pre.from === g.offset + 1 ? pre.events : this.read(g, g.offset + 1, g.carry?.last));
        } catch (err) {
          this.release(charged);
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
        // An administrator's reset may have moved the group while it read: discard the read.
        if (g.removed || g.batch || events.length === 0 || g.offset + 1 !== from) {
          this.release(charged);
          if (events.length === 0) return;
          continue;
        }
        // Events stored before publish-time validation may be undecodable; never deliver one
        // (every client would fail on it and retry forever): end the batch before it, and
        // skip it when it comes first (issue 14 item 4).
        const bad = firstUndecodable(events);
        if (bad === 0) {
          this.release(charged);
          g.carry = undefined;
          this.skipUndecodable(g, events[0]!);
          g.again = true;
          continue;
        }
        if (bad > 0) events = events.slice(0, bad);
        const bytes = bytesOf(events);
        this.release(charged - bytes);
        g.batchCharged = bytes;
        const carried = g.carry !== undefined && g.carry.last === events[events.length - 1]!.offset ? g.carry.attempts : 0;
        g.batch = { events, last: events[events.length - 1]!.offset, attempts: carried, notBefore: 0, avoid: undefined };
        g.carry = undefined;
      }
      const batch = g.batch;
      const wait = batch.notBefore - Date.now();
      if (wait > 0) {
        this.retryLater(g, wait);
        return;
      }
      // Dead-lettering (durable groups): maxAttempts deliveries failed → publish elsewhere, ack.
      const maxAttempts = g.durable ? this.o.deadLetter?.maxAttempts() : undefined;
      if (maxAttempts !== undefined && batch.attempts >= maxAttempts) {
        if (!(await this.deadLetter(g, batch))) return;
        g.again = true;
        continue;
      }
      if (batch.attempts > 0 && g.failureWrite) {
        // A redelivery only once its failures are stored: the attempt count never goes back.
        const w = g.failureWrite;
        await w;
        if (g.failureWrite === w) g.failureWrite = undefined;
        if (g.removed || g.batch !== batch || g.inflight) {
          g.again = true;
          continue;
        }
      }
      const member = this.pick(g);
      if (!member) return;
      batch.attempts++;
      member.status = 'busy';
      const timer = setTimeout(() => this.onDeadline(g, member), g.ackDeadlineMs ?? this.o.ackDeadlineMs);
      g.inflight = { member, timer };
      this.o.metrics.deliveries.inc({ group: g.name });
      if (batch.attempts > 1) {
        this.o.metrics.redeliveries.inc({ group: g.name });
        g.redeliveries++;
      }
      // Read ahead only once the delivery left our buffers (send resolves when the HTTP/2 stream
      // is not congested): a member that stops reading never makes the group hold a second batch.
      member.congested = true;
      member.transport.send({ events: batch.events, lastIncludedOffset: batch.last, attempt: batch.attempts }).then(
        () => {
          member.congested = false;
          this.readAhead(g, batch);
        },
        () => this.onLeave(g, member),
      );
    } while (g.again);
  }

  /** Publishes `batch` to the dead-letter Stream and acks it; false (retry later) on failure. */
  private async deadLetter(g: Group, batch: Batch): Promise<boolean> {
    try {
      await this.o.deadLetter!.send(batch.events, { kind: 'group', consumer: g.name, attempts: batch.attempts, lastError: g.lastError });
    } catch (err) {
      const delay = exponentialDelay(batch.attempts, this.o.nackBackoff);
      this.o.logger.error({ err, group: g.name, lastIncludedOffset: batch.last, retryInMs: delay }, 'dead-lettering failed; the batch stays and is retried');
      this.retryLater(g, Math.max(delay, 100));
      return false;
    }
    if (g.removed || g.batch !== batch) return false;
    g.offset = batch.last;
    g.batch = undefined;
    g.lastError = '';
    this.release(g.batchCharged);
    g.batchCharged = 0;
    this.o.metrics.lastOffsetProcessed.set({ group: g.name }, batch.last);
    this.o.metrics.groupLag.set({ group: g.name }, this.o.store.lastOffset - batch.last);
    if (!g.removed) this.persister.request(g.name, batch.last);
    void this.attempts.settled(g.name, batch.last);
    return true;
  }

  private skipUndecodable(g: Group, ev: StoredEvent): void {
    const problem = checkEventBytes(ev.payload, 0, ev.payload.length, { cloudEvents: false });
    g.offset = ev.offset;
    this.o.metrics.protocol.undecodableSkipped.inc({ kind: 'group', consumer: g.name });
    this.o.metrics.lastOffsetProcessed.set({ group: g.name }, ev.offset);
    this.o.logger.error({ group: g.name, offset: ev.offset, problem }, 'undecodable stored event skipped by the group');
    if (g.durable && !g.removed) this.persister.request(g.name, ev.offset);
  }

  private readAhead(g: Group, batch: Batch): void {
    if (g.removed || g.batch !== batch || batch.attempts !== 1 || g.prefetch || batch.last >= this.o.store.lastOffset) return;
    if (!this.tryCharge(this.o.maxDeliveryBytes)) return;
    const from = batch.last + 1;
    const events = this.read(g, from);
    events.catch(() => undefined); // surfaced when awaited
    g.prefetch = { from, events, charged: this.o.maxDeliveryBytes };
  }

  /** Reads the batch starting at `from`, never past `last` (a re-read of a given-back batch). */
  private read(g: Group, from: number, last?: number): Promise<StoredEvent[]> {
    const maxEvents = last === undefined ? g.maxBatchSize : Math.max(1, Math.min(g.maxBatchSize, last - from + 1));
    return this.o.store.readFrom(from, { maxEvents, maxBytes: this.o.maxDeliveryBytes });
  }

  private retryLater(g: Group, ms: number): void {
    if (g.retryTimer) return;
    g.retryTimer = setTimeout(() => {
      g.retryTimer = undefined;
      this.pump(g);
    }, ms);
  }

  /**
   * Whether a reply (`offset` > 0: it names a batch) answers what this member holds; a stale
   * member's late reply is consumed here (it becomes idle). False: ignore the reply.
   */
  private accepts(g: Group, m: Member, kind: 'ack' | 'nack', offset: number | undefined, reason?: string): boolean {
    const named = offset !== undefined && offset > 0;
    if (m.status === 'stale') {
      if (named && offset !== m.staleLast) return this.mismatch(g, m, kind, offset, reason);
      m.status = 'idle';
      m.staleLast = undefined;
      this.pump(g);
      return false;
    }
    if (!g.inflight || g.inflight.member !== m || !g.batch) {
      if (named) return this.mismatch(g, m, kind, offset, reason);
      this.o.logger.debug({ group: g.name, member: m.id }, `${kind} with no delivery outstanding; ignored`);
      return false;
    }
    if (named && offset !== g.batch.last) return this.mismatch(g, m, kind, offset, reason);
    return true;
  }

  private mismatch(g: Group, m: Member, kind: 'ack' | 'nack', offset: number, reason: string | undefined): false {
    this.o.metrics.protocol.ackMismatches.inc({ kind: 'group', consumer: g.name });
    const inFlight = g.inflight?.member === m ? g.batch?.last : undefined;
    this.textLog.log('warn', g.name, { group: g.name, member: m.id, offset, inFlight }, 'reason', reason, `${kind} does not name the batch in flight to this member; ignored`);
    return false;
  }

  private onAck(g: Group, m: Member, offset?: number): void {
    if (!this.accepts(g, m, 'ack', offset) || !g.inflight || !g.batch) return;
    clearTimeout(g.inflight.timer);
    const last = g.batch.last;
    g.offset = last;
    g.batch = undefined;
    g.lastError = '';
    this.release(g.batchCharged);
    g.batchCharged = 0;
    g.inflight = undefined;
    m.status = 'idle';
    this.o.metrics.lastOffsetProcessed.set({ group: g.name }, last);
    this.o.metrics.groupLag.set({ group: g.name }, this.o.store.lastOffset - last);
    // The next batch may be delivered before this commit is on disk: after a crash the group
    // resumes from the last persisted ack, so delivery stays at-least-once.
    if (g.durable && !g.removed) this.persister.request(g.name, last);
    if (g.durable) void this.attempts.settled(g.name, last);
    this.pump(g);
  }

  /**
   * Stores a durable group's failed deliveries when the Stream dead-letters (the count must
   * survive a restart); the next delivery of the batch waits for it (pumpLoop).
   */
  private recordFailure(g: Group, batch: Batch): void {
    if (this.shuttingDown || !g.durable || this.o.deadLetter?.maxAttempts() === undefined) return;
    g.failureWrite = this.attempts.recorded(g.name, batch.last, { attempts: batch.attempts, lastError: g.lastError });
  }

  private onNack(g: Group, m: Member, reason: string, offset?: number): void {
    if (!this.accepts(g, m, 'nack', offset, reason) || !g.inflight || !g.batch) return;
    clearTimeout(g.inflight.timer);
    g.inflight = undefined;
    m.status = 'idle';
    const delay = exponentialDelay(g.batch.attempts, this.o.nackBackoff);
    g.batch.notBefore = Date.now() + delay;
    g.batch.avoid = m.id;
    g.lastError = `nacked: ${reason}`;
    this.recordFailure(g, g.batch);
    this.o.metrics.nacks.inc({ group: g.name });
    this.textLog.log('info', g.name, { group: g.name, lastIncludedOffset: g.batch.last, attempt: g.batch.attempts, retryInMs: delay }, 'reason', reason, 'batch nacked');
    this.pump(g);
  }

  private onDeadline(g: Group, m: Member): void {
    if (!g.inflight || g.inflight.member !== m || !g.batch) return;
    g.inflight = undefined;
    m.status = 'stale';
    m.staleLast = g.batch.last;
    g.batch.avoid = m.id;
    g.batch.notBefore = 0;
    g.lastError = `ack deadline of ${this.o.ackDeadlineMs} ms exceeded`;
    this.recordFailure(g, g.batch);
    this.o.metrics.ackTimeouts.inc({ group: g.name });
    if (m.congested) {
      // It has not even read the delivery: its HTTP/2 stream still buffers it, and would keep
      // doing so for as long as the member stays connected. End its call to free that memory.
      this.o.logger.warn({ group: g.name, member: m.id, lastIncludedOffset: g.batch.last, ackDeadlineMs: this.o.ackDeadlineMs }, 'member stopped reading; ending its subscription');
      m.transport.fail(
        new HadronError('DEADLINE_EXCEEDED', `the subscriber did not read its delivery within the ack deadline of ${this.o.ackDeadlineMs} ms (HADRON_ACK_DEADLINE_MS); subscription ended`),
      );
      this.onLeave(g, m);
      return;
    }
    this.o.logger.warn(
      { group: g.name, member: m.id, lastIncludedOffset: g.batch.last, attempt: g.batch.attempts, ackDeadlineMs: this.o.ackDeadlineMs },
      'ack deadline exceeded; handing the batch to another member',
    );
    // The stale member may never read again: give its buffers back; the batch is re-read (same
    // offsets, attempt count kept) when a member can take it. So stalled members hold the
    // shared subscriber budget for at most the ack deadline.
    this.giveBackBatch(g, g.batch);
    if (g.prefetch) this.release(g.prefetch.charged);
    g.prefetch = undefined;
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
        g.lastError = 'the subscriber disconnected before acking';
        this.recordFailure(g, g.batch);
      }
    }
    if (g.members.size === 0 && !g.durable) {
      this.removeGroup(g);
      return;
    }
    if (g.members.size === 0) this.dropBuffers(g);
    this.pump(g);
  }

  private removeGroup(g: Group, why = 'ephemeral subscription group removed (last member left)'): void {
    g.removed = true;
    this.dropBuffers(g);
    if (g.batch) this.release(g.batchCharged);
    g.batch = undefined;
    g.batchCharged = 0;
    if (g.retryTimer) clearTimeout(g.retryTimer);
    if (g.inflight) clearTimeout(g.inflight.timer);
    this.groups.delete(g.name);
    this.o.metrics.numGroups.set(this.groups.size);
    this.o.metrics.removeGroupSeries(g.name);
    this.o.metrics.protocol.removeGroup(g.name);
    this.textLog.forget(g.name);
    this.o.logger.info({ group: g.name }, why);
  }

  /** Durable groups that have not acked events below `offset` (for retention accounting). */
  durableLaggards(offset: number): Array<{ name: string; offset: number }> {
    return [...this.groups.values()].filter((g) => g.durable && g.offset < offset - 1).map((g) => ({ name: g.name, offset: g.offset }));
  }

  /**
   * The server is stopping: members about to be cut off by the shutdown have not failed, so
   * their deliveries are not counted as failed attempts.
   */
  stopping(): void {
    this.shuttingDown = true;
  }

  close(): void {
    this.closed = true;
    this.shuttingDown = true;
    this.unsubscribe();
    this.persister.close();
    this.attempts.close();
    for (const g of this.groups.values()) {
      if (g.retryTimer) clearTimeout(g.retryTimer);
      if (g.inflight) clearTimeout(g.inflight.timer);
    }
  }
}

/** Index of the first event no decoder accepts, or -1. */
function firstUndecodable(events: readonly StoredEvent[]): number {
  for (let i = 0; i < events.length; i++) {
    const p = events[i]!.payload;
    if (checkEventBytes(p, 0, p.length, { cloudEvents: false }) !== null) return i;
  }
  return -1;
}

function bytesOf(events: readonly StoredEvent[]): number {
  let n = 0;
  for (const e of events) n += e.payload.length;
  return n;
}
