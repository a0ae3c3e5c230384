/**
 * The leader's journal of durable-state changes (meta store commits) for its replicas. Each
 * change gets a sequence number within an epoch (one per leader process); a replica whose epoch
 * differs, or whose position fell out of the bounded journal, gets a snapshot instead.
 *
 * `logAt` is the leader's last offset when the change was written: a replica receives a change
 * only together with (or after) the records up to it, so its copy of the state never names
 * offsets its copy of the log lacks.
 */
import { randomUUID } from 'node:crypto';
import type { MetaOp } from '../storage/layout.js';

interface Entry {
  seq: number;
  ops: readonly MetaOp[];
  logAt: number;
}

export type MetaDelivery =
  | { kind: 'none'; seq: number }
  | { kind: 'ops'; ops: MetaOp[]; seq: number }
  | { kind: 'snapshot'; entries: Array<[string, Buffer]>; seq: number };

export class MetaJournal {
  readonly epoch = randomUUID();
  private seq = 0;
  /**
   * `entries[head…]` are the journal, with consecutive `seq`s. Dropping the oldest moves `head`
   * (the array is compacted now and then): `splice(0, 1)` on every change once the journal was
   * full moved all 10,000 entries each time — 15% of a pipeline leader's CPU (issue 11).
   */
  private entries: Entry[] = [];
  private head = 0;

  constructor(
    private readonly o: {
      maxEntries: number;
      snapshot: () => Array<[string, Buffer]>;
      lastOffset: () => number;
      /** Stored progress never names offsets beyond the durable log (docs/storage.md). */
      durableOffset: () => number;
    },
  ) {}

  /** Sequence number of the latest change. */
  get latest(): number {
    return this.seq;
  }

  /** Changes a replica at (epoch, seq) has not received yet. */
  behind(epoch: string, seq: number): number {
    return epoch === this.epoch ? Math.max(0, this.seq - seq) : this.seq + 1;
  }

  /** How many changes the journal holds (at most `maxEntries`). */
  get size(): number {
    return this.entries.length - this.head;
  }

  add(ops: readonly MetaOp[]): void {
    this.entries.push({ seq: ++this.seq, ops, logAt: this.o.lastOffset() });
    if (this.entries.length - this.head > this.o.maxEntries) this.head = this.entries.length - this.o.maxEntries;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** What a replica at (epoch, seq) whose log will end at `logEnd` receives next. */
  next(epoch: string, seq: number, logEnd: number): MetaDelivery {
    const oldest = this.entries[this.head]?.seq ?? this.seq + 1;
    if (epoch !== this.epoch || seq < oldest - 1 || seq > this.seq) {
      // A snapshot is the state as of now: it names offsets up to the durable end at most.
      if (logEnd < this.o.durableOffset()) return { kind: 'none', seq };
      return { kind: 'snapshot', entries: this.o.snapshot(), seq: this.seq };
    }
    const ops: MetaOp[] = [];
    let at = seq;
    // Sequence numbers are consecutive: the first change after `seq` is at a known index.
    for (let i = this.head + (seq + 1 - oldest); i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.logAt > logEnd) break;
      for (const op of e.ops) ops.push(op);
      at = e.seq;
    }
    return ops.length ? { kind: 'ops', ops, seq: at } : { kind: 'none', seq };
  }
}
