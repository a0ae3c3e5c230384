/**
 * A small durable key/value store: an append-only WAL of CRC-framed batches (layout.ts),
 * replayed into memory at open and rewritten as a snapshot when it grows. Holds the partition's
 * state other than events: durable groups and their acked offsets, retention state, pipelines.
 *
 * `commit(ops, {sync})` is atomic per call. Concurrent commits are group-committed: whatever is
 * pending is written with one write and, if any asked for it, one fdatasync.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { HadronError } from '@hadron/core';
import { decodeMetaBatch, encodeMetaBatch, type MetaOp } from './layout.js';
import { fsyncDir, storageError } from './fs-util.js';

interface Pending {
  buf: Buffer;
  sync: boolean;
  resolve: () => void;
  reject: (e: unknown) => void;
}

const COMPACT_MIN_BYTES = 4 * 1024 * 1024;

export class MetaStore {
  private readonly map = new Map<string, Buffer>();
  private fh!: fsp.FileHandle;
  private size = 0;
  private liveBytes = 0;
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  /** Set when a write or sync failed: the store refuses further writes (the process must restart). */
  private failed: unknown;

  private constructor(private readonly file: string) {}

  static async open(dir: string): Promise<MetaStore> {
    const s = new MetaStore(path.join(dir, 'meta.log'));
    await s.recover();
    return s;
  }

  private async recover(): Promise<void> {
    let data: Buffer;
    try {
      data = await fsp.readFile(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError(err, 'reading meta.log');
      data = Buffer.alloc(0);
    }
    let pos = 0;
    while (pos < data.length) {
      const b = decodeMetaBatch(data, pos);
      if (b === null) break;
      for (const op of b.ops) this.apply(op);
      pos += b.size;
    }
    this.fh = await fsp.open(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT);
    if (pos < data.length) {
      // Torn tail: the last batch was not completely written, so it was never acknowledged.
      await this.fh.truncate(pos);
      await this.fh.datasync();
    }
    this.size = pos;
    if (this.size > COMPACT_MIN_BYTES && this.size > 4 * this.liveBytes) await this.compact();
  }

  private apply(op: MetaOp): void {
    const old = this.map.get(op.key);
    if (old) this.liveBytes -= old.length + op.key.length + 8;
    if (op.kind === 'put') {
      this.map.set(op.key, op.value);
      this.liveBytes += op.value.length + op.key.length + 8;
    } else this.map.delete(op.key);
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
    for (const op of ops) this.apply(op);
    return new Promise((resolve, reject) => {
      this.pending.push({ buf, sync: opts.sync, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.flushing) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
      if (this.pending.length) this.kick();
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending;
      this.pending = [];
      const bufs = batch.map((p) => p.buf);
      const total = bufs.reduce((n, b) => n + b.length, 0);
      try {
        await this.fh.writev(bufs, this.size);
        this.size += total;
        if (batch.some((p) => p.sync)) await this.fh.datasync();
        for (const p of batch) p.resolve();
      } catch (err) {
        // The in-memory map already holds these ops, so the store can no longer be trusted:
        // fail this and every later commit; the owner treats this as fatal.
        this.failed = storageError(err, 'writing meta.log');
        for (const p of batch) p.reject(this.failed);
        for (const p of this.pending) p.reject(this.failed);
        this.pending = [];
        return;
      }
    }
    if (this.size > COMPACT_MIN_BYTES && this.size > 4 * this.liveBytes) await this.compact();
  }

  /** Rewrites the WAL as one snapshot batch (write temp, fsync, rename, fsync dir). */
  private async compact(): Promise<void> {
    const ops: MetaOp[] = [...this.map].map(([key, value]) => ({ kind: 'put', key, value }));
    const buf = encodeMetaBatch(ops);
    const tmp = `${this.file}.tmp`;
    const fh = await fsp.open(tmp, 'w');
    try {
      await fh.writeFile(buf);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, this.file);
    await fsyncDir(path.dirname(this.file));
    await this.fh.close();
    this.fh = await fsp.open(this.file, fs.constants.O_RDWR);
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
