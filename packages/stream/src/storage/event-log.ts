/**
 * The event log of one partition: segment files of CRC-checked records (layout.ts), a sparse
 * in-memory index per segment, a tail cache of recent appends for subscribers that keep up, and
 * a group-commit writer.
 *
 * Writer pipeline (one owner; callers only enqueue):
 *   append() ─queue─▶ write loop: take all pending, stamp offsets, one positional write
 *                       ├─ fsync:false callers resolve now
 *                       └─ fsync:true callers ─queue─▶ sync loop: one fdatasync for all waiting
 * The write loop does not wait for the sync loop, so the next write overlaps the previous fsync
 * (PERF-NOTES: ~1.5× throughput). Unsynced data is fdatasync'ed within `flushIntervalMs`.
 *
 * Failure model: a failed write is truncated away and reported (DISK_FULL or STORAGE_FAILURE)
 * with no offset consumed, so offsets stay dense and are never reused. A failed fdatasync leaves
 * the page cache in an unknown state (the "fsyncgate" lesson), so it is fatal: `onFatal` fires
 * and the process must exit and recover from disk.
 *
 * Recovery: sealed segments load their .idx (or are rescanned); the last segment is scanned and
 * a torn tail (first invalid record onward) is truncated — unless the previous shutdown was
 * clean, in which case an invalid record is corruption and opening fails with DATA_CORRUPTION
 * rather than silently dropping data.
 */
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { HadronError, type Logger } from '@hadron/core';
import {
  INDEX_ENTRY_BYTES,
  INDEX_INTERVAL,
  INDEX_MAGIC,
  RECORD_FIXED_BODY_BYTES,
  RECORD_HEADER_BYTES,
  RECORD_OVERHEAD,
  indexFileName,
  parseRecord,
  parseSegmentFileName,
  readU64,
  segmentFileName,
  writeRecord,
  writeU64,
  type ParsedRecord,
} from './layout.js';
import { storageError } from './fs-util.js';
import { RecordBatchEncoder, payloadAt, skipBytes, type PayloadRefs } from './record-batch.js';
import { parseFrames, type StoredFrames } from './frames.js';
import { mkdirDurable, nodeStorageFs, writeDurableTemp, type StorageFile, type StorageFs } from './file-io.js';

export interface StoredEvent {
  offset: number;
  timestamp: number;
  payload: Buffer;
}

export interface EventLogOptions {
  logger: Logger;
  /** Roll to a new segment once the active one reaches this size (default 64 MiB). */
  segmentBytes?: number;
  /** fsync:false data is fdatasync'ed at most this long after it was written (default 100 ms). */
  flushIntervalMs?: number;
  /** Bytes of recent appends kept in memory for readers (default 64 MiB). */
  tailCacheBytes?: number;
  /** Called once on an unrecoverable storage failure; the owner must shut down. */
  onFatal?: (err: HadronError) => void;
  /** The file system (default: node:fs). Tests pass a power-loss simulator. */
  fs?: StorageFs;
  /** Called with the seconds each fdatasync of the active segment took (the fsync-latency metric). */
  onSync?: (seconds: number) => void;
}

class SparseIndex {
  offsets: number[] = [];
  positions: number[] = [];
  timestamps: number[] = [];
  add(offset: number, position: number, ts: number): void {
    this.offsets.push(offset);
    this.positions.push(position);
    this.timestamps.push(ts);
  }
  /** Index of the last entry with offset ≤ o (or -1). */
  floorByOffset(o: number): number {
    let lo = 0;
    let hi = this.offsets.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.offsets[mid]! <= o) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }
  /** Index of the last entry with timestamp < ts (or -1). */
  lastBeforeTs(ts: number): number {
    let lo = 0;
    let hi = this.timestamps.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.timestamps[mid]! < ts) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }
}

interface Segment {
  base: number;
  /** Last offset in the segment; base-1 when empty. */
  last: number;
  size: number;
  lastTs: number;
  fh: StorageFile;
  index: SparseIndex;
}

interface TailChunk {
  first: number;
  last: number;
  /** Where each record's payload is: in a request buffer or in a copy (record-batch.ts). */
  refs: PayloadRefs;
  /** Bytes of the records, counted against `tailCacheBytes`. */
  bytes: number;
  /** One append time for the chunk, or one per record (records copied from a leader). */
  timestamps: number | number[];
}

interface PendingAppend {
  payloads: readonly Uint8Array[];
  bytes: number;
  fsync: boolean;
  /** Records copied from another log: they must land at `first` and keep their own times. */
  stamped?: { first: number; timestamps: readonly number[] };
  /** Records that arrived as checked stored frames: written as they are (frames.ts). */
  frames?: { buf: Buffer; crcs: readonly number[] };
  resolve: (r: { first: number; last: number }) => void;
  reject: (e: unknown) => void;
}

const CLEAN_MARKER = '.clean-shutdown';
/** After a segment roll failed for lack of space, wait this long before trying again. */
const ROLL_RETRY_MS = 1000;

export class EventLog {
  private segments: Segment[] = [];
  private pending: PendingAppend[] = [];
  private writing: Promise<void> | undefined;
  private syncWaiters: Array<{ resolve: () => void; reject: (e: unknown) => void; range: { first: number; last: number }; cb: PendingAppend }> = [];
  private syncing: Promise<void> | undefined;
  private unsynced = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private tail: TailChunk[] = [];
  private readonly encoder = new RecordBatchEncoder();
  private tailBytes = 0;
  private lastTimestamp = 0;
  private closed = false;
  private fatal: HadronError | undefined;
  private readonly segmentBytes: number;
  private readonly flushIntervalMs: number;
  private readonly tailCacheBytes: number;
  private readonly appendListeners = new Set<(last: number) => void>();
  private readonly sfs: StorageFs;
  /** Highest offset known to be on disk (fdatasync'ed); never above lastOffset. */
  private durable = 0;
  private durableWaiters: Array<{ offset: number; resolve: () => void; reject: (e: unknown) => void }> = [];
  private rollRetryAt = 0;
  /** Bytes dropped from a torn tail during the last recovery. */
  recoveredTruncatedBytes = 0;
  /** Count of corrupt records met by reads since open. */
  corruptReads = 0;

  /** Segment files, the active one included (inspection). */
  get segmentCount(): number {
    return this.segments.length;
  }

  private constructor(
    private readonly dir: string,
    private readonly opts: EventLogOptions,
  ) {
    this.segmentBytes = opts.segmentBytes ?? 64 * 1024 * 1024;
    this.flushIntervalMs = opts.flushIntervalMs ?? 100;
    this.tailCacheBytes = opts.tailCacheBytes ?? 64 * 1024 * 1024;
    this.sfs = opts.fs ?? nodeStorageFs;
  }

  static async open(dir: string, opts: EventLogOptions): Promise<EventLog> {
    const log = new EventLog(dir, opts);
    await mkdirDurable(log.sfs, dir);
    await log.recover();
    return log;
  }

  /** Last written offset (0 when nothing was ever written). */
  get lastOffset(): number {
    return this.active.last;
  }

  /**
   * Highest offset that is on disk (fdatasync'ed). Anything that records progress through the
   * log (group offsets, pipeline positions) must not be persisted beyond it: after a power loss
   * the log ends at (at least) this offset, and progress past the end would skip new events.
   */
  get durableOffset(): number {
    return this.durable;
  }

  /**
   * Resolves once every offset ≤ `offset` is on disk, triggering an fdatasync if needed.
   * Rejects if the log fails or closes first.
   */
  waitDurable(offset: number): Promise<void> {
    if (offset <= this.durable) return Promise.resolve();
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.closed) return Promise.reject(new HadronError('UNAVAILABLE', 'partition log is closed'));
    return new Promise((resolve, reject) => {
      this.durableWaiters.push({ offset, resolve, reject });
      // Only written data can be synced; a waiter beyond lastOffset is served by a later sync.
      if (offset <= this.lastOffset) {
        this.unsynced = true;
        this.kickSync();
      }
    });
  }

  private markDurable(upTo: number): void {
    if (upTo <= this.durable) return;
    this.durable = upTo;
    if (this.durableWaiters.length === 0) return;
    const keep: typeof this.durableWaiters = [];
    for (const w of this.durableWaiters) {
      if (w.offset <= upTo) w.resolve();
      else keep.push(w);
    }
    this.durableWaiters = keep;
  }

  /** First offset physically present (lastOffset+1 when empty). */
  get firstOffset(): number {
    return this.segments[0]!.base;
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  /** Subscribe to "new events up to `last` are readable". Returns an unsubscribe function. */
  onAppend(fn: (last: number) => void): () => void {
    this.appendListeners.add(fn);
    return () => this.appendListeners.delete(fn);
  }

  // -------------------------------------------------------------------------------------------
  // Recovery

  private async recover(): Promise<void> {
    const sfs = this.sfs;
    const names = await sfs.readdir(this.dir);
    const bases = names
      .map(parseSegmentFileName)
      .filter((b): b is number => b !== undefined)
      .sort((a, b) => a - b);
    const wasClean = names.includes(CLEAN_MARKER);
    // Leftovers of interrupted work: an index being written, or the index of a deleted segment.
    const leftovers = names.filter((n) => n.endsWith('.tmp') || (n.endsWith('.idx') && !names.includes(n.replace(/\.idx$/, '.log'))));
    for (const n of leftovers) await sfs.unlink(path.join(this.dir, n));
    if (wasClean) await sfs.unlink(path.join(this.dir, CLEAN_MARKER));
    // The marker's removal must be durable before anything new is written: if it came back after
    // a power loss, the torn tail of the coming writes would be taken for corruption.
    if (wasClean || leftovers.length) await sfs.fsyncDir(this.dir);
    if (bases.length === 0) {
      await this.createSegment(1);
      return;
    }
    for (let i = 0; i < bases.length; i++) {
      const base = bases[i]!;
      const isLast = i === bases.length - 1;
      const file = path.join(this.dir, segmentFileName(base));
      const fh = await sfs.open(file, 'rw');
      const seg: Segment = { base, last: base - 1, size: 0, lastTs: 0, fh, index: new SparseIndex() };
      if (!isLast && (await this.loadIndex(seg))) {
        this.segments.push(seg);
        continue;
      }
      const { size } = await fh.stat();
      const scanned = await this.scanSegment(seg, size);
      if (scanned.validEnd < size) {
        const where = `${file} at byte ${scanned.validEnd} (${scanned.reason})`;
        if (!isLast || wasClean) {
          await fh.close();
          for (const s of this.segments) await s.fh.close();
          throw new HadronError(
            'DATA_CORRUPTION',
            `corrupt record in ${where}; the previous shutdown was ${wasClean ? 'clean' : 'not clean'} and the record is not at the tail, so it is corruption rather than a torn write. Refusing to drop data: restore the partition or move the segment aside`,
            { context: { file, position: scanned.validEnd } },
          );
        }
        this.opts.logger.warn(
          { file, position: scanned.validEnd, droppedBytes: size - scanned.validEnd, reason: scanned.reason, lastOffset: seg.last },
          'truncating torn tail of the last segment after an unclean shutdown',
        );
        this.recoveredTruncatedBytes = size - scanned.validEnd;
        await fh.truncate(scanned.validEnd);
      }
      seg.size = scanned.validEnd;
      this.segments.push(seg);
      if (!isLast) await this.writeIndexIfSpace(seg);
    }
    // Segments must chain: each base = previous last + 1.
    for (let i = 1; i < this.segments.length; i++) {
      const prev = this.segments[i - 1]!;
      const cur = this.segments[i]!;
      if (cur.base !== prev.last + 1) {
        throw new HadronError('DATA_CORRUPTION', `segment ${segmentFileName(cur.base)} does not follow ${segmentFileName(prev.base)} (last offset ${prev.last})`);
      }
    }
    this.lastTimestamp = Math.max(...this.segments.map((s) => s.lastTs));
    // What we read may still be only in the page cache (after a process crash without a power
    // loss): make it durable before anything is built on it, so durableOffset = lastOffset.
    await this.active.fh.datasync();
    this.durable = this.active.last;
    if (this.active.size >= this.segmentBytes) await this.tryRoll();
  }

  /** Scans records from the start, building the index; stops at the first invalid record. */
  private async scanSegment(seg: Segment, size: number): Promise<{ validEnd: number; reason: string }> {
    const chunk = 4 * 1024 * 1024;
    let buf = Buffer.alloc(0);
    let bufStart = 0; // file position of buf[0]
    let pos = 0; // file position of next record
    let expected = seg.base;
    for (;;) {
      const rel = pos - bufStart;
      const r = parseRecord(buf, rel);
      if (r.kind === 'ok') {
        if (r.record.offset !== expected) return { validEnd: pos, reason: `offset ${r.record.offset} where ${expected} was expected` };
        if ((expected - seg.base) % INDEX_INTERVAL === 0) seg.index.add(expected, pos, r.record.timestamp);
        seg.last = expected;
        seg.lastTs = r.record.timestamp;
        expected++;
        pos += r.record.size;
        continue;
      }
      if (r.kind === 'corrupt') return { validEnd: pos, reason: r.reason };
      // short: read more from the file, unless the buffer already reaches its end
      if (pos >= size) return { validEnd: pos, reason: 'end' };
      if (buf.length > 0 && bufStart + buf.length >= size) return { validEnd: pos, reason: 'incomplete record at the end of the file' };
      const len = Math.min(Math.max(chunk, r.need), size - pos);
      const next = Buffer.allocUnsafe(len);
      const { bytesRead } = await seg.fh.read(next, 0, len, pos);
      if (bytesRead === 0) return { validEnd: pos, reason: 'file shorter than its size' };
      buf = next.subarray(0, bytesRead);
      bufStart = pos;
    }
  }

  private async loadIndex(seg: Segment): Promise<boolean> {
    let data: Buffer;
    try {
      data = await this.sfs.readFile(path.join(this.dir, indexFileName(seg.base)));
    } catch {
      return false;
    }
    const HEADER = 32;
    if (data.length < HEADER + 4 || data.readUInt32LE(0) !== INDEX_MAGIC) return false;
    if (crc32(data.subarray(0, data.length - 4)) !== data.readUInt32LE(data.length - 4)) return false;
    const count = data.readUInt32LE(4);
    if (data.length !== HEADER + count * INDEX_ENTRY_BYTES + 4) return false;
    seg.size = readU64(data, 8);
    seg.last = readU64(data, 16);
    seg.lastTs = readU64(data, 24);
    const { size } = await seg.fh.stat();
    if (size !== seg.size) return false;
    for (let i = 0; i < count; i++) {
      const p = HEADER + i * INDEX_ENTRY_BYTES;
      seg.index.add(readU64(data, p), data.readUInt32LE(p + 8), readU64(data, p + 12));
    }
    return true;
  }

  private async writeIndex(seg: Segment): Promise<void> {
    const count = seg.index.offsets.length;
    const buf = Buffer.alloc(32 + count * INDEX_ENTRY_BYTES + 4);
    buf.writeUInt32LE(INDEX_MAGIC, 0);
    buf.writeUInt32LE(count, 4);
    writeU64(buf, 8, seg.size);
    writeU64(buf, 16, seg.last);
    writeU64(buf, 24, seg.lastTs);
    for (let i = 0; i < count; i++) {
      const p = 32 + i * INDEX_ENTRY_BYTES;
      writeU64(buf, p, seg.index.offsets[i]!);
      buf.writeUInt32LE(seg.index.positions[i]!, p + 8);
      writeU64(buf, p + 12, seg.index.timestamps[i]!);
    }
    buf.writeUInt32LE(crc32(buf.subarray(0, buf.length - 4)), buf.length - 4);
    // Write a temp file, make its bytes durable, rename, make the rename durable: the .idx name
    // never refers to unsynced bytes (its checksum would catch them, but then the index is lost).
    const file = path.join(this.dir, indexFileName(seg.base));
    const tmp = `${file}.tmp`;
    await writeDurableTemp(this.sfs, tmp, buf);
    await this.sfs.rename(tmp, file);
    await this.sfs.fsyncDir(this.dir);
  }

  /** An index is an optimisation (a segment without one is rescanned): lack of space is not fatal. */
  private async writeIndexIfSpace(seg: Segment): Promise<void> {
    try {
      await this.writeIndex(seg);
    } catch (err) {
      const e = storageError(err, `writing the index of ${segmentFileName(seg.base)}`);
      if (e.code !== 'DISK_FULL') throw e;
      this.opts.logger.warn({ segment: segmentFileName(seg.base) }, 'no space for a segment index; it will be rebuilt by scanning at the next start');
    }
  }

  private async createSegment(base: number): Promise<void> {
    const file = path.join(this.dir, segmentFileName(base));
    const fh = await this.sfs.open(file, 'create-excl');
    try {
      // The new name must be durable before any acknowledged event lives in the file.
      await this.sfs.fsyncDir(this.dir);
    } catch (err) {
      await fh.close().catch(() => undefined);
      await this.sfs.unlink(file).catch(() => undefined);
      throw err;
    }
    this.segments.push({ base, last: base - 1, size: 0, lastTs: this.lastTimestamp, fh, index: new SparseIndex() });
  }

  /** Seals the active segment (sync + index) and starts a new one. */
  private async roll(): Promise<void> {
    const seg = this.active;
    await this.syncing;
    await seg.fh.datasync();
    this.markDurable(seg.last);
    await this.writeIndexIfSpace(seg);
    await this.createSegment(seg.last + 1);
  }

  /**
   * Rolls unless the volume is full: then the active segment keeps growing past its target size
   * (appends themselves fail with DISK_FULL while no space is free) and the roll is retried later.
   * Any other failure is fatal.
   */
  private async tryRoll(): Promise<void> {
    if (Date.now() < this.rollRetryAt) return;
    try {
      await this.roll();
      this.rollRetryAt = 0;
    } catch (err) {
      const e = storageError(err, 'rolling to a new segment');
      if (e.code !== 'DISK_FULL') throw e;
      this.rollRetryAt = Date.now() + ROLL_RETRY_MS;
      this.opts.logger.warn({ segment: segmentFileName(this.active.base), size: this.active.size }, 'no space to roll to a new segment; writing on in the current one');
    }
  }

  // -------------------------------------------------------------------------------------------
  // Appends

  /**
   * Appends events; resolves with their offsets once written (and, with `fsync`, once on disk).
   * Rejects with DISK_FULL / STORAGE_FAILURE having consumed no offsets.
   */
  append(payloads: readonly Uint8Array[], opts: { fsync: boolean }): Promise<{ first: number; last: number }> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.closed) return Promise.reject(new HadronError('UNAVAILABLE', 'partition log is closed'));
    if (payloads.length === 0) return Promise.reject(new HadronError('EMPTY_BATCH', 'validation error: entries batch was empty, no-op'));
    let bytes = 0;
    for (const p of payloads) bytes += RECORD_OVERHEAD + p.length;
    return new Promise((resolve, reject) => {
      this.pending.push({ payloads, bytes, fsync: opts.fsync, resolve, reject });
      if (!this.writing) this.writing = this.writeLoop();
    });
  }

  /**
   * Appends records copied from another log (replication), keeping their offsets and append
   * times. The first must be `lastOffset + 1`, except on an empty log, which then starts at it
   * (a copy of a log whose start was raised by retention). Rejects with INVALID_ARGUMENT when
   * the offsets do not continue the log; nothing is written then.
   */
  async appendRecords(records: readonly StoredEvent[], opts: { fsync: boolean }): Promise<{ first: number; last: number }> {
    if (records.length === 0) throw new HadronError('EMPTY_BATCH', 'no records to append');
    const first = records[0]!.offset;
    records.forEach((r, i) => {
      if (r.offset !== first + i) throw new HadronError('INVALID_ARGUMENT', `copied records are not dense: offset ${r.offset} at position ${i} after ${first}`);
    });
    return this.appendCopied(first, records.map((r) => r.payload), records.map((r) => r.timestamp), undefined, opts);
  }

  /**
   * Appends another log's stored frames byte for byte (replication's verbatim path, frames.ts),
   * as `appendRecords` would append the records they hold. Every frame's CRC is checked first
   * (they crossed a network): one that fails is refused with DATA_CORRUPTION naming its offset,
   * and nothing of the batch is written. `source` names where the bytes came from.
   */
  async appendFrames(frames: Buffer, opts: { fsync: boolean; source: string }): Promise<{ first: number; last: number; lastChecksum: number }> {
    const f = parseFrames(frames, opts.source);
    const r = await this.appendCopied(f.first, f.payloads, f.timestamps, { buf: frames, crcs: f.crcs }, opts);
    return { ...r, lastChecksum: f.crcs[f.crcs.length - 1]! };
  }

  private async appendCopied(
    first: number,
    payloads: readonly Buffer[],
    timestamps: readonly number[],
    frames: PendingAppend['frames'],
    opts: { fsync: boolean },
  ): Promise<{ first: number; last: number }> {
    if (first !== this.lastOffset + 1) {
      if (this.lastOffset === 0 && this.segments.length === 1 && this.active.size === 0 && !this.writing && this.pending.length === 0) await this.rebaseEmpty(first);
      else throw new HadronError('INVALID_ARGUMENT', `copied records start at offset ${first} but the log ends at ${this.lastOffset}`);
    }
    if (this.fatal) throw this.fatal;
    if (this.closed) throw new HadronError('UNAVAILABLE', 'partition log is closed');
    let bytes = 0;
    for (const p of payloads) bytes += RECORD_OVERHEAD + p.length;
    return new Promise((resolve, reject) => {
      this.pending.push({ payloads, bytes, fsync: opts.fsync, stamped: { first, timestamps }, frames, resolve, reject });
      if (!this.writing) this.writing = this.writeLoop();
    });
  }

  /** An empty log that is to hold a copy starting at `base`: its one empty segment is renamed by recreating it. */
  private async rebaseEmpty(base: number): Promise<void> {
    const seg = this.segments.pop()!;
    await seg.fh.close();
    await this.sfs.unlink(path.join(this.dir, segmentFileName(seg.base)));
    await this.createSegment(base);
    this.durable = base - 1;
  }

  private async writeLoop(): Promise<void> {
    try {
      while (this.pending.length && !this.fatal) {
        if (this.active.size >= this.segmentBytes) {
          try {
            await this.tryRoll();
          } catch (err) {
            this.die(storageError(err, 'rolling to a new segment'));
            break;
          }
        }
        // Take what fits the 2 GiB positional-write limit; the rest goes next round.
        let total = 0;
        let n = 0;
        while (n < this.pending.length && (n === 0 || total + this.pending[n]!.bytes < 1024 * 1024 * 1024)) {
          total += this.pending[n]!.bytes;
          n++;
        }
        const batch = this.pending.splice(0, n);
        await this.writeBatch(batch, total);
      }
    } finally {
      this.writing = undefined;
      if (this.pending.length && !this.fatal && !this.closed) this.writing = this.writeLoop();
      else if (this.fatal) for (const p of this.pending.splice(0)) p.reject(this.fatal);
    }
  }

  private async writeBatch(all: PendingAppend[], total: number): Promise<void> {
    const seg = this.active;
    // Copied records must continue the log exactly; one that no longer does (an earlier write
    // failed) is refused without consuming anything.
    let expect = seg.last + 1;
    const batch: PendingAppend[] = [];
    for (const p of all) {
      if (p.stamped && p.stamped.first !== expect) {
        total -= p.bytes;
        p.reject(new HadronError('INVALID_ARGUMENT', `copied records start at offset ${p.stamped.first} but the log ends at ${expect - 1}`));
        continue;
      }
      batch.push(p);
      expect += p.payloads.length;
    }
    if (batch.length === 0) return;
    const now = Math.max(Date.now(), this.lastTimestamp);
    const stamped = batch.some((p) => p.stamped);
    const times: number[] | undefined = stamped ? [] : undefined;
    let ts = now;
    // Payloads that may be kept are written from the request buffers they arrived in (one copy
    // fewer); the others are copied into one compact buffer, as before (record-batch.ts).
    // Frames copied verbatim need neither: they are written from the buffer they arrived in.
    const inPlace = batch.map((p) => !p.frames && RecordBatchEncoder.canWriteInPlace(p.payloads, p.bytes));
    let inPlaceRecords = 0;
    let copied = 0;
    batch.forEach((p, i) => {
      if (inPlace[i]) inPlaceRecords += p.payloads.length;
      else if (!p.frames) copied += p.bytes;
    });
    const enc = this.encoder;
    enc.begin(inPlaceRecords, copied);
    const newIndex: Array<[number, number, number]> = [];
    let pos = 0;
    let offset = seg.last;
    const ranges: Array<{ first: number; last: number }> = [];
    for (const [b, p] of batch.entries()) {
      const first = offset + 1;
      const keep = inPlace[b]!;
      const stampedTimes = p.stamped?.timestamps;
      const payloads = p.payloads;
      if (p.frames) enc.addFrames(p.frames.buf, payloads, p.frames.crcs);
      for (let i = 0; i < payloads.length; i++) {
        offset++;
        // Copied records keep their leader's time; local ones never go back before it.
        ts = stampedTimes ? stampedTimes[i]! : ts < now ? now : ts;
        times?.push(ts);
        if ((offset - seg.base) % INDEX_INTERVAL === 0) newIndex.push([offset, seg.size + pos, ts]);
        const payload = payloads[i]!;
        if (!p.frames) enc.add(offset, ts, payload, keep);
        pos += RECORD_OVERHEAD + payload.length;
      }
      ranges.push({ first, last: offset });
    }
    const { iov, refs } = enc.finish();
    try {
      let written = 0;
      let rest = iov;
      while (written < total) {
        const { bytesWritten } = await seg.fh.writev(rest, seg.size + written);
        written += bytesWritten;
        if (written < total) rest = skipBytes(rest, bytesWritten);
      }
    } catch (err) {
      const e = storageError(err, 'appending events');
      try {
        await seg.fh.truncate(seg.size);
      } catch (terr) {
        this.die(storageError(terr, 'truncating a failed append'));
      }
      for (const p of batch) p.reject(e);
      return;
    }
    seg.size += total;
    seg.last = offset;
    seg.lastTs = ts;
    this.lastTimestamp = Math.max(this.lastTimestamp, ts);
    for (const [o, p, t] of newIndex) seg.index.add(o, p, t);
    this.addTail({ first: ranges[0]!.first, last: offset, refs, bytes: total, timestamps: times ?? ts });
    this.unsynced = true;
    batch.forEach((p, i) => {
      const range = ranges[i]!;
      if (!p.fsync) p.resolve(range);
      else this.syncWaiters.push({ resolve: () => p.resolve(range), reject: p.reject, range, cb: p });
    });
    if (this.syncWaiters.length) this.kickSync();
    else this.scheduleFlush();
    for (const fn of this.appendListeners) fn(offset);
  }

  private kickSync(): void {
    if (this.syncing) return;
    this.syncing = this.syncLoop().finally(() => {
      this.syncing = undefined;
      if (this.syncWaiters.length && !this.fatal) this.kickSync();
    });
  }

  private async syncLoop(): Promise<void> {
    while ((this.syncWaiters.length || this.unsynced) && !this.fatal) {
      const waiters = this.syncWaiters;
      this.syncWaiters = [];
      this.unsynced = false;
      const seg = this.active;
      const upTo = seg.last; // earlier segments were synced when they were sealed
      try {
        const started = performance.now();
        await seg.fh.datasync();
        this.opts.onSync?.((performance.now() - started) / 1000);
      } catch (err) {
        const e = storageError(err, 'fsyncing the log');
        for (const w of waiters) w.reject(e);
        this.die(e);
        return;
      }
      this.markDurable(upTo);
      for (const w of waiters) w.resolve();
    }
  }

  private scheduleFlush(): void {
    if (this.flushTimer || this.closed) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      if (this.unsynced) this.kickSync();
    }, this.flushIntervalMs);
  }

  private die(err: HadronError): void {
    if (this.fatal) return;
    this.fatal = err;
    this.opts.logger.fatal({ err }, 'unrecoverable storage failure');
    for (const w of this.syncWaiters.splice(0)) w.reject(err);
    for (const p of this.pending.splice(0)) p.reject(err);
    for (const w of this.durableWaiters.splice(0)) w.reject(err);
    this.opts.onFatal?.(err);
  }

  private addTail(chunk: TailChunk): void {
    this.tail.push(chunk);
    this.tailBytes += chunk.bytes;
    while (this.tailBytes > this.tailCacheBytes && this.tail.length > 1) {
      this.tailBytes -= this.tail.shift()!.bytes;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  /**
   * Reads events from `offset` (inclusive) onward: at most `maxEvents` events and about
   * `maxBytes` of payload (at least one event). Offsets below the first present are skipped.
   * A corrupt record ends the batch before it; if it is the first, DATA_CORRUPTION is thrown.
   */
  async read(offset: number, opts: { maxEvents: number; maxBytes?: number }): Promise<StoredEvent[]> {
    const maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
    if (offset < this.firstOffset) offset = this.firstOffset;
    if (offset > this.lastOffset || opts.maxEvents <= 0) return [];
    const cached = this.readTail(offset, opts.maxEvents, maxBytes);
    if (cached) return cached;
    return this.readDisk(offset, opts.maxEvents, maxBytes);
  }

  /**
   * Reads stored records from `offset` onward like `read`, as their stored frames (frames.ts):
   * from the tail cache by rebuilding each 24-byte header from the kept CRC (no checksum is
   * computed), from a segment as the bytes on disk (whose CRCs the read checks, as every read
   * does). Undefined when there is nothing at or after `offset`.
   */
  async readFrames(offset: number, opts: { maxEvents: number; maxBytes?: number }): Promise<StoredFrames | undefined> {
    const maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
    if (offset < this.firstOffset) offset = this.firstOffset;
    if (offset > this.lastOffset || opts.maxEvents <= 0) return undefined;
    const cached = this.readTailFrames(offset, opts.maxEvents, maxBytes);
    if (cached) return cached;
    const views: Buffer[] = [];
    const events = await this.readDisk(offset, opts.maxEvents, maxBytes, views);
    if (events.length === 0) return undefined;
    const last = views[views.length - 1]!;
    return { first: events[0]!.offset, last: events[events.length - 1]!.offset, frames: views.length === 1 ? last : Buffer.concat(views), lastChecksum: last.readUInt32LE(4) };
  }

  /** The part of `read` served from segment files; with `frames`, each record's stored bytes are added to it. */
  private async readDisk(offset: number, maxEvents: number, maxBytes: number, frames?: Buffer[]): Promise<StoredEvent[]> {
    const opts = { maxEvents };
    const segIdx = this.findSegment(offset);
    const seg = this.segments[segIdx]!;
    const out: StoredEvent[] = [];
    const entry = seg.index.floorByOffset(offset);
    let pos = entry >= 0 ? seg.index.positions[entry]! : 0;
    let expect = entry >= 0 ? seg.index.offsets[entry]! : seg.base;
    let bytes = 0;
    const segEnd = seg.size;
    let buf = Buffer.alloc(0);
    let bufStart = pos;
    while (pos < segEnd && out.length < opts.maxEvents && (bytes < maxBytes || out.length === 0)) {
      let r = parseRecord(buf, pos - bufStart);
      if (r.kind === 'short' && buf.length > 0 && bufStart + buf.length >= segEnd) {
        r = { kind: 'corrupt', reason: 'record runs past the end of the segment' };
      }
      if (r.kind === 'short') {
        const len = Math.min(segEnd - pos, Math.max(r.need, 256 * 1024, Math.min(maxBytes, 4 * 1024 * 1024)));
        buf = Buffer.allocUnsafe(len);
        const { bytesRead } = await seg.fh.read(buf, 0, len, pos);
        if (bytesRead < Math.min(r.need, len)) {
          throw new HadronError('DATA_CORRUPTION', `segment ${segmentFileName(seg.base)} is shorter than recorded (${seg.size} bytes)`);
        }
        buf = buf.subarray(0, bytesRead);
        bufStart = pos;
        continue;
      }
      if (r.kind === 'corrupt' && expect < offset) {
        // A damaged record before the one asked for: step over it if its length field leads to
        // the next record (only the payload or checksum was hit); it is still never served.
        const next = pos + RECORD_HEADER_BYTES + buf.readUInt32LE(pos - bufStart);
        if (next < segEnd) {
          const ahead = parseRecord(buf, next - bufStart);
          if ((ahead.kind === 'ok' && ahead.record.offset === expect + 1) || ahead.kind === 'short') {
            this.corruptReads++;
            pos = next;
            expect++;
            continue;
          }
        }
      }
      if (r.kind === 'corrupt' || r.record.offset !== expect) {
        this.corruptReads++;
        const reason = r.kind === 'corrupt' ? r.reason : `offset ${r.record.offset} where ${expect} was expected`;
        this.opts.logger.error({ segment: segmentFileName(seg.base), position: pos, offset: expect, reason }, 'corrupt record; not serving it');
        if (out.length) return out;
        throw new HadronError('DATA_CORRUPTION', `stored event at offset ${expect} is corrupt (${reason}) and will not be served`, {
          context: { offset: expect, segment: segmentFileName(seg.base), position: pos },
        });
      }
      const rec: ParsedRecord = r.record;
      const at = pos - bufStart;
      pos += rec.size;
      expect++;
      if (rec.offset < offset) continue;
      frames?.push(buf.subarray(at, at + rec.size));
      out.push({ offset: rec.offset, timestamp: rec.timestamp, payload: rec.payload });
      bytes += rec.payload.length;
    }
    return out;
  }

  /** Index of the tail-cache chunk holding `offset` (the last one starting at or before it); undefined when the cache starts after it. */
  private tailChunkOf(offset: number): number | undefined {
    const t = this.tail;
    if (t.length === 0 || offset < t[0]!.first) return undefined;
    let lo = 0;
    let hi = t.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (t[mid]!.first <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private readTail(offset: number, maxEvents: number, maxBytes: number): StoredEvent[] | undefined {
    const t = this.tail;
    const lo = this.tailChunkOf(offset);
    if (lo === undefined) return undefined;
    const out: StoredEvent[] = [];
    let bytes = 0;
    for (let c = lo; c < t.length && out.length < maxEvents && (bytes < maxBytes || out.length === 0); c++) {
      const chunk = t[c]!;
      for (let o = Math.max(offset, chunk.first); o <= chunk.last; o++) {
        const i = o - chunk.first;
        const payload = payloadAt(chunk.refs, i);
        const ts = chunk.timestamps;
        out.push({ offset: o, timestamp: typeof ts === 'number' ? ts : ts[i]!, payload });
        bytes += payload.length;
        if (out.length >= maxEvents || bytes >= maxBytes) break;
      }
    }
    return out;
  }

  /** `readTail` as frames: one buffer, headers rebuilt from the kept CRCs (record-batch.ts). */
  private readTailFrames(offset: number, maxEvents: number, maxBytes: number): StoredFrames | undefined {
    const t = this.tail;
    const lo = this.tailChunkOf(offset);
    if (lo === undefined) return undefined;
    // First pass: how many records and bytes; second: write them.
    let count = 0;
    let bytes = 0;
    let size = 0;
    for (let c = lo; c < t.length && count < maxEvents && (bytes < maxBytes || count === 0); c++) {
      const chunk = t[c]!;
      for (let o = Math.max(offset, chunk.first); o <= chunk.last; o++) {
        const i = o - chunk.first;
        const len = chunk.refs.end[i]! - chunk.refs.start[i]!;
        count++;
        bytes += len;
        size += RECORD_OVERHEAD + len;
        if (count >= maxEvents || bytes >= maxBytes) break;
      }
    }
    if (count === 0) return undefined;
    const out = Buffer.allocUnsafe(size);
    let pos = 0;
    let o = offset;
    let crc = 0;
    for (let c = lo; o < offset + count; c++) {
      const chunk = t[c]!;
      const ts = chunk.timestamps;
      for (; o <= chunk.last && o < offset + count; o++) {
        const i = o - chunk.first;
        const payload = payloadAt(chunk.refs, i);
        crc = chunk.refs.crc[i]!;
        out.writeUInt32LE(RECORD_FIXED_BODY_BYTES + payload.length, pos);
        out.writeUInt32LE(crc, pos + 4);
        writeU64(out, pos + RECORD_HEADER_BYTES, o);
        writeU64(out, pos + RECORD_HEADER_BYTES + 8, typeof ts === 'number' ? ts : ts[i]!);
        payload.copy(out, pos + RECORD_OVERHEAD);
        pos += RECORD_OVERHEAD + payload.length;
      }
    }
    return { first: offset, last: offset + count - 1, frames: out, lastChecksum: crc };
  }

  private findSegment(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.segments[mid]!.base <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  // -------------------------------------------------------------------------------------------
  // Retention

  /** The last offset whose timestamp is < `ts` (firstOffset-1 when there is none). */
  async lastOffsetBefore(ts: number): Promise<number> {
    let answer = this.firstOffset - 1;
    for (const seg of this.segments) {
      if (seg.last < seg.base) continue;
      if (seg.lastTs < ts) {
        answer = seg.last;
        continue;
      }
      // The cut lies inside this segment: start from the last index entry before ts and scan.
      const e = seg.index.lastBeforeTs(ts);
      if (e < 0) return answer;
      let o = seg.index.offsets[e]!;
      for (;;) {
        const batch = await this.read(o, { maxEvents: INDEX_INTERVAL * 4 });
        if (batch.length === 0) return answer;
        for (const ev of batch) {
          if (ev.timestamp >= ts) return answer;
          answer = ev.offset;
        }
        o = batch[batch.length - 1]!.offset + 1;
      }
    }
    return answer;
  }

  /** Deletes whole sealed segments whose events are all below `offset`. Returns events removed. */
  async deleteSegmentsBefore(offset: number): Promise<number> {
    let removed = 0;
    while (this.segments.length > 1 && this.segments[0]!.last < offset) {
      const seg = this.segments.shift()!;
      await seg.fh.close();
      // Oldest first, each deletion durable before the next: whatever a power loss keeps is
      // still a chain of segments (a gap would make recovery refuse to start). The index goes
      // first so that no .idx outlives its segment.
      await this.sfs.unlink(path.join(this.dir, indexFileName(seg.base)));
      await this.sfs.unlink(path.join(this.dir, segmentFileName(seg.base)));
      await this.sfs.fsyncDir(this.dir);
      removed += seg.last - seg.base + 1;
    }
    while (this.tail.length && this.tail[0]!.last < this.firstOffset) this.tailBytes -= this.tail.shift()!.bytes;
    return removed;
  }

  /** Total bytes of all segments. */
  get sizeBytes(): number {
    return this.segments.reduce((n, s) => n + s.size, 0);
  }

  /** Sealed segments oldest first, with their last offsets and sizes (for size-based retention). */
  segmentSummaries(): Array<{ base: number; last: number; size: number; sealed: boolean }> {
    return this.segments.map((s, i) => ({ base: s.base, last: s.last, size: s.size, sealed: i < this.segments.length - 1 }));
  }

  // -------------------------------------------------------------------------------------------

  /** Writes everything pending and fdatasyncs it. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    this.unsynced = true;
    this.kickSync();
    while (this.syncing) await this.syncing;
    if (this.fatal) throw this.fatal;
  }

  /** Flushes, closes every file and marks the shutdown clean. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    try {
      if (!this.fatal) await this.flush();
    } finally {
      this.closed = true;
      if (this.flushTimer) clearTimeout(this.flushTimer);
      const closed = new HadronError('UNAVAILABLE', 'partition log is closed');
      for (const w of this.durableWaiters.splice(0)) w.reject(closed);
      for (const s of this.segments) await s.fh.close().catch(() => undefined);
    }
    if (!this.fatal) {
      // Everything is synced; only now may the marker appear (an empty file: its name is the fact).
      // Without it (e.g. no room for the name on a full volume) the next start is merely lenient.
      try {
        await (await this.sfs.open(path.join(this.dir, CLEAN_MARKER), 'truncate')).close();
        await this.sfs.fsyncDir(this.dir);
      } catch (err) {
        this.opts.logger.warn({ err }, 'could not mark the shutdown clean');
      }
    }
  }
}
