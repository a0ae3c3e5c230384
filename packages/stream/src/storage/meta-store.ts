/**
 * A small durable key/value store: an append-only WAL of CRC-framed batches (layout.ts),
 * replayed into memory at open and rewritten as a snapshot when it grows. Holds the partition's
 * state other than events: durable groups and their acked offsets, retention state, pipelines.
 *
 * `commit(ops, {sync})` is atomic per call. Concurrent commits are group-committed: whatever is
 * pending is written with one write and, if any asked for it, one fdatasync.
 */
import path from 'node:path';
import { HadronError, type Logger } from '@hadron/core';
import { decodeMetaBatch, encodeMetaBatch, type MetaOp } from './layout.js';
import { storageError } from './fs-util.js';
import { nodeStorageFs, writeDurableTemp, type StorageFile, type StorageFs } from './file-io.js';

interface Pending {
  buf: Buffer;
  sync: boolean;
  /** Previous values of the keys this commit changed (in op order), to undo a failed write. */
  undo: Array<[string, Buffer | undefined]>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

const COMPACT_MIN_BYTES = 4 * 1024 * 1024;

export interface MetaStoreOptions {
  logger?: Logger;
  /** The file system (default: node:fs). */
  fs?: StorageFs;
}

export class MetaStore {
  private readonly committedListeners = new Set<(ops: readonly MetaOp[]) => void>();
  private readonly map = new Map<string, Buffer>();
  private fh!: StorageFile;
  private size = 0;
  private liveBytes = 0;
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  /**
   * Set when the store can no longer be trusted (a failed fdatasync, or a failed write that could
   * not be cut off again): every later commit fails and the process must restart. A write that
   * fails for lack of space is undone instead and does not set this.
   */
  private failed: unknown;
  private readonly sfs: StorageFs;

  private constructor(
    private readonly file: string,
    private readonly opts: MetaStoreOptions,
  ) {
    this.sfs = opts.fs ?? nodeStorageFs;
  }

  static async open(dir: string, opts: MetaStoreOptions = {}): Promise<MetaStore> {
    const s = new MetaStore(path.join(dir, 'meta.log'), opts);
    await s.recover();
    return s;
  }

  private async recover(): Promise<void> {
    let data: Buffer;
    let created = false;
    try {
      data = await this.sfs.readFile(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError(err, 'reading meta.log');
      data = Buffer.alloc(0);
      created = true;
    }
    let pos = 0;
    while (pos < data.length) {
      const b = decodeMetaBatch(data, pos);
      if (b === null) break;
      for (const op of b.ops) this.apply(op);
      pos += b.size;
    }
    await this.sfs.unlink(`${this.file}.tmp`); // an interrupted compaction
    this.fh = await this.sfs.open(this.file, 'create');
    // Torn tail: the last batch was not completely written, so it was never acknowledged.
    if (pos < data.length) await this.fh.truncate(pos);
    // What was read may be only in the page cache (process crash): make it durable before it is
    // built upon, and make a new file's name durable.
    await this.fh.datasync();
    if (created) await this.sfs.fsyncDir(path.dirname(this.file));
    this.size = pos;
    if (this.size > COMPACT_MIN_BYTES && this.size > 4 * this.liveBytes) await this.compactIfSpace();
  }

  /** Applies one op to the in-memory map; returns the key's previous value. */
  private apply(op: MetaOp): Buffer | undefined {
    const old = this.map.get(op.key);
    this.set(op.key, op.kind === 'put' ? op.value : undefined);
    return old;
  }

  private set(key: string, value: Buffer | undefined): void {
    const old = this.map.get(key);
    if (old) this.liveBytes -= old.length + key.length + 8;
    if (value) {
      this.map.set(key, value);
      this.liveBytes += value.length + key.length + 8;
    } else this.map.delete(key);
  }

  get(key: string): Buffer | undefined {
    return this.map.get(key);
  }

  /** Entries whose key starts with `prefix`, in key order. */
  scan(prefix: string): Array<[string, Buffer]> {
    const out: Array<[string, Buffer]> = [];
    for (const [k, v] of this.map) if (k.startsWith(prefix)) out.push([k, v]);
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /**
   * Calls `fn` with every batch of ops once it is written (in commit order), e.g. to ship it to
   * replicas. Returns an unsubscribe function.
   */
  onCommitted(fn: (ops: readonly MetaOp[]) => void): () => void {
    this.committedListeners.add(fn);
    return () => this.committedListeners.delete(fn);
  }

  /** Applies `ops` atomically; with `sync` resolves only once they are on disk. */
  commit(ops: readonly MetaOp[], opts: { sync: boolean }): Promise<void> {
    if (this.closed) return Promise.reject(new HadronError('UNAVAILABLE', 'meta store closed'));
    if (this.failed) return Promise.reject(this.failed);
    if (ops.length === 0) return Promise.resolve();
    // Encoded first: ops it refuses (an over-long key) must never reach the map, or the next
    // compaction would throw on them.
    let buf: Buffer;
    try {
      buf = encodeMetaBatch(ops);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    // Visible to readers at once (single-threaded: no reader can interleave), durable later.
    const undo = ops.map((op): [string, Buffer | undefined] => [op.key, this.apply(op)]);
    return new Promise((resolve, reject) => {
      const done = (): void => {
        resolve();
        for (const l of this.committedListeners) l(ops);
      };
      this.pending.push({ buf, sync: opts.sync, undo, resolve: done, reject });
      this.kick();
    });
  }

  /**
   * Applies `ops` in memory only, for repairs that must hold for this process even when they
   * cannot be written (a full volume at start-up); the next start redoes them, and a later
   * compaction snapshot persists them.
   */
  applyUnpersisted(ops: readonly MetaOp[]): void {
    for (const op of ops) this.apply(op);
  }

  private kick(): void {
    if (this.flushing) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
      if (this.pending.length) this.kick();
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.pending.length && !this.failed) {
      const batch = this.pending;
      this.pending = [];
      const bufs = batch.map((p) => p.buf);
      const total = bufs.reduce((n, b) => n + b.length, 0);
      try {
        await this.writeAll(bufs, total);
      } catch (err) {
        await this.writeFailed(batch, err);
        continue;
      }
      this.size += total;
      try {
        if (batch.some((p) => p.sync)) await this.fh.datasync();
      } catch (err) {
        // After a failed fdatasync the page cache's state is unknown ("fsyncgate"): fatal.
        this.fail(storageError(err, 'syncing meta.log'), batch);
        return;
      }
      for (const p of batch) p.resolve();
    }
    if (!this.failed && this.size > COMPACT_MIN_BYTES && this.size > 4 * this.liveBytes) await this.compactIfSpace();
  }

  private async writeAll(bufs: Buffer[], total: number): Promise<void> {
    const { bytesWritten } = await this.fh.writev(bufs, this.size);
    if (bytesWritten === total) return;
    // A short write (the volume filled up mid-way): write the rest; the next call reports why.
    const rest = Buffer.concat(bufs).subarray(bytesWritten);
    let done = 0;
    while (done < rest.length) done += (await this.fh.write(rest, done, rest.length - done, this.size + bytesWritten + done)).bytesWritten;
  }

  /**
   * A write failed: cut the file back to its last good end and undo, newest first, the in-memory
   * effects of this batch and of every commit queued behind it (they follow it in the WAL order),
   * so memory matches the file again. The store stays usable: the next commit simply tries again,
   * which is how writing resumes once space is freed.
   */
  private async writeFailed(batch: Pending[], err: unknown): Promise<void> {
    const e = storageError(err, 'writing meta.log');
    const failed = [...batch, ...this.pending];
    this.pending = [];
    for (let i = failed.length - 1; i >= 0; i--) {
      const undo = failed[i]!.undo;
      for (let j = undo.length - 1; j >= 0; j--) this.set(undo[j]![0], undo[j]![1]);
    }
    try {
      await this.fh.truncate(this.size);
    } catch (terr) {
      this.fail(storageError(terr, 'cutting off a failed meta.log write'), failed);
      return;
    }
    this.opts.logger?.warn({ err: e, commits: failed.length }, 'meta.log write failed; the commits were undone');
    for (const p of failed) p.reject(e);
  }

  private fail(err: HadronError, batch: Pending[]): void {
    this.failed = err;
    for (const p of batch) p.reject(err);
    for (const p of this.pending) p.reject(err);
    this.pending = [];
  }

  /** Compaction only saves space: failing for lack of space leaves the (valid) WAL as it was. */
  private async compactIfSpace(): Promise<void> {
    try {
      await this.compact();
    } catch (err) {
      const e = storageError(err, 'compacting meta.log');
      if (this.failed || e.code !== 'DISK_FULL') {
        // Later commits fail with this error and their owners stop the process.
        this.failed ??= e;
        this.opts.logger?.error({ err: e }, 'meta.log compaction failed');
        return;
      }
      this.opts.logger?.warn({ err: e }, 'no space to compact meta.log; keeping the log as it is');
    }
  }

  /** Rewrites the WAL as one snapshot batch (write temp, fsync, rename, fsync dir). */
  private async compact(): Promise<void> {
    const ops: MetaOp[] = [...this.map].map(([key, value]) => ({ kind: 'put', key, value }));
    const buf = encodeMetaBatch(ops);
    const tmp = `${this.file}.tmp`;
    await writeDurableTemp(this.sfs, tmp, buf);
    await this.sfs.rename(tmp, this.file);
    // From here on the old file is gone: writes must go to the new one, and the rename must be
    // durable before any of them is acknowledged (else a power loss brings the old file back
    // and loses them). A failure here is fatal.
    try {
      await this.sfs.fsyncDir(path.dirname(this.file));
      await this.fh.close();
      this.fh = await this.sfs.open(this.file, 'rw');
    } catch (err) {
      this.failed = storageError(err, 'switching to the compacted meta.log');
      throw this.failed;
    }
    this.size = buf.length;
  }

  /** Waits for pending writes, then syncs. */
  async flush(): Promise<void> {
    await this.commitBarrier();
    if (!this.failed && !this.closed) await this.fh.datasync();
  }

  private async commitBarrier(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.commitBarrier();
    this.closed = true;
    try {
      if (!this.failed) await this.fh.datasync();
    } finally {
      await this.fh.close();
    }
  }
}
