/**
 * Persists durable groups' acked offsets: one commit at a time per group (a newer offset is never
 * overtaken by an older one), coalescing acks that arrive meanwhile, and riding out a full disk.
 *
 * The store writes an offset only once the log is durable up to it (FileStore), so a commit may
 * wait for an fdatasync; acks are not held up by that — delivery continues and, after a crash,
 * the group resumes from the last persisted offset (at-least-once).
 *
 * DISK_FULL is not fatal: the offset stays in memory, the commit is retried every `retryMs`, and
 * a later ack supersedes it. Any other failure is fatal (the store can no longer be trusted).
 */
import { HadronError, type Logger } from '@hadron/core';
import type { PartitionStore } from './storage/partition-store.js';

export interface OffsetPersisterOptions {
  store: PartitionStore;
  logger: Logger;
  onFatal: (err: unknown) => void;
  /** Retry interval while the volume is full (default 1000 ms). */
  retryMs?: number;
}

interface State {
  want: number;
  done: number;
  running: boolean;
  retry: NodeJS.Timeout | undefined;
  full: boolean;
}

export class OffsetPersister {
  private readonly groups = new Map<string, State>();
  private closed = false;

  constructor(private readonly o: OffsetPersisterOptions) {}

  /** Persists `offset` for `group` (eventually, in order). */
  request(group: string, offset: number): void {
    let s = this.groups.get(group);
    if (!s) this.groups.set(group, (s = { want: 0, done: 0, running: false, retry: undefined, full: false }));
    if (offset > s.want) s.want = offset;
    if (!s.running && !s.retry) void this.run(group, s);
  }

  private async run(group: string, s: State): Promise<void> {
    s.running = true;
    try {
      while (s.want > s.done) {
        const offset = s.want;
        try {
          await this.o.store.commitGroupOffset(group, offset);
        } catch (err) {
          if (err instanceof HadronError && err.code === 'DISK_FULL' && !this.closed) {
            if (!s.full) this.o.logger.warn({ group, offset, err }, 'cannot persist the group offset: the volume is full; retrying until space is freed');
            s.full = true;
            s.retry = setTimeout(() => {
              s.retry = undefined;
              if (!s.running) void this.run(group, s);
            }, this.o.retryMs ?? 1000);
            return;
          }
          if (this.closed) this.o.logger.warn({ group, offset, err }, 'group offset not persisted at shutdown; the group resumes from its previous offset');
          else this.o.onFatal(err);
          return;
        }
        s.done = offset;
        if (s.full) this.o.logger.info({ group, offset }, 'group offset persisted again after the volume was full');
        s.full = false;
      }
    } finally {
      s.running = false;
    }
  }

  /**
   * Drops what is queued for `group`: an administrator's reset or delete supersedes it (a
   * commit already running still lands first; the store applies commits in order).
   */
  forget(group: string): void {
    const s = this.groups.get(group);
    if (!s) return;
    s.want = s.done;
    if (s.retry) clearTimeout(s.retry);
    s.retry = undefined;
    this.groups.delete(group);
  }

  /** Stops retrying (commits already running still finish). */
  close(): void {
    this.closed = true;
    for (const s of this.groups.values()) if (s.retry) clearTimeout(s.retry);
  }
}
