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
  private entries: Entry[] = [];

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

  add(ops: readonly MetaOp[]): void {
    this.entries.push({ seq: ++this.seq, ops, logAt: this.o.lastOffset() });
    if (this.entries.length > this.o.maxEntries) this.entries.splice(0, this.entries.length - this.o.maxEntries);
  }

  /** What a replica at (epoch, seq) whose log will end at `logEnd` receives next. */
  next(epoch: string, seq: number, logEnd: number): MetaDelivery {
    const oldest = this.entries[0]?.seq ?? this.seq + 1;
    if (epoch !== this.epoch || seq < oldest - 1 || seq > this.seq) {
      // A snapshot is the state as of now: it names offsets up to the durable end at most.
      if (logEnd < this.o.durableOffset()) return { kind: 'none', seq };
      return { kind: 'snapshot', entries: this.o.snapshot(), seq: this.seq };
    }
    const ops: MetaOp[] = [];
    let at = seq;
    for (const e of this.entries) {
      if (e.seq <= seq) continue;
      if (e.logAt > logEnd) break;
      ops.push(...e.ops);
      at = e.seq;
    }
    return ops.length ? { kind: 'ops', ops, seq: at } : { kind: 'none', seq };
  }
}
