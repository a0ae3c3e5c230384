/**
 * Encodes one write of log records (layout.ts: u32 length, u32 CRC-32, u64 offset, u64 time,
 * payload) as a list of buffers for a single positional `writev`, copying as few payload bytes as
 * memory allows (issue 11).
 *
 * Before, every event was copied twice in user space: once when HTTP/2 chunks were joined into
 * the request message, and again into a fresh buffer per write that the tail cache then kept.
 * Those 1 MiB-per-request buffers were most of the server's allocation rate and its major GCs.
 * Now a payload that may be kept is written straight from the buffer it arrived in: its 24-byte
 * header goes into a reused staging buffer, the payload is its own iovec, and the tail cache
 * keeps a view of it. The bytes on disk are identical.
 *
 * "May be kept" (`canWriteInPlace`): every payload of the append views one ArrayBuffer that is
 * no larger than the records made from it (a request message joined from several chunks is
 * exactly that), and the records are not tiny. Otherwise — say a small request that is a view
 * into a 64 KiB socket read, which a tail entry would keep alive whole, or events encoded one by
 * one — the append's records are copied into one compact buffer per write, as before.
 */
import { crc32 } from 'node:zlib';
import { RECORD_FIXED_BODY_BYTES, RECORD_HEADER_BYTES, RECORD_OVERHEAD, writeRecord, writeU64 } from './layout.js';

/** Below this average record size, copying beats an iovec per payload. */
export const MIN_IN_PLACE_RECORD_BYTES = 256 + RECORD_OVERHEAD;

/** The encoded write: what to `writev`, and a view of each payload for the tail cache. */
export interface EncodedRecords {
  iov: Buffer[];
  payloads: Buffer[];
}

const asBuffer = (p: Uint8Array): Buffer => (Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength));

export class RecordBatchEncoder {
  /** Record headers of in-place payloads; reused by every write (writes never overlap). */
  private staging = Buffer.allocUnsafe(16 * 1024);
  private readonly fixed = Buffer.alloc(RECORD_FIXED_BODY_BYTES);
  private hpos = 0;
  private compact: Buffer | undefined;
  private cpos = 0;
  /** Start in `compact` of the records not yet in `iov` (-1: none). */
  private runStart = -1;
  private iov: Buffer[] = [];
  private payloads: Buffer[] = [];

  /** Whether the payloads of one append (`recordBytes` = their records' total size) are written in place. */
  static canWriteInPlace(payloads: readonly Uint8Array[], recordBytes: number): boolean {
    const n = payloads.length;
    if (n === 0 || recordBytes < n * MIN_IN_PLACE_RECORD_BYTES) return false;
    const ab = payloads[0]!.buffer;
    if (ab.byteLength > recordBytes) return false;
    for (let i = 1; i < n; i++) if (payloads[i]!.buffer !== ab) return false;
    return true;
  }

  /**
   * Starts a write of `inPlaceRecords` in-place records and `copiedBytes` bytes of copied ones.
   * The previous write's buffers must have been written: the staging buffer is reused.
   */
  begin(inPlaceRecords: number, copiedBytes: number): void {
    const need = inPlaceRecords * RECORD_OVERHEAD;
    if (this.staging.length < need) this.staging = Buffer.allocUnsafe(Math.max(need, this.staging.length * 2));
    this.hpos = 0;
    this.compact = copiedBytes > 0 ? Buffer.allocUnsafe(copiedBytes) : undefined;
    this.cpos = 0;
    this.runStart = -1;
    this.iov = [];
    this.payloads = [];
  }

  /** Adds the next record. */
  add(offset: number, timestampMs: number, payload: Uint8Array, inPlace: boolean): void {
    if (!inPlace) {
      const c = this.compact!;
      const start = this.cpos;
      if (this.runStart < 0) this.runStart = start;
      this.cpos = writeRecord(c, start, offset, timestampMs, payload);
      this.payloads.push(c.subarray(start + RECORD_OVERHEAD, this.cpos));
      return;
    }
    this.closeRun();
    const h = this.hpos;
    const st = this.staging;
    const fixed = this.fixed;
    writeU64(fixed, 0, offset);
    writeU64(fixed, 8, timestampMs);
    fixed.copy(st, h + RECORD_HEADER_BYTES);
    st.writeUInt32LE(RECORD_FIXED_BODY_BYTES + payload.length, h);
    // The CRC of (offset, time, payload), computed in two steps: the same value writeRecord stores.
    st.writeUInt32LE(crc32(payload, crc32(fixed)), h + 4);
    const p = asBuffer(payload);
    this.iov.push(st.subarray(h, h + RECORD_OVERHEAD), p);
    this.payloads.push(p);
    this.hpos = h + RECORD_OVERHEAD;
  }

  /** Ends the write: the buffers to write in order and the payload views. */
  finish(): EncodedRecords {
    this.closeRun();
    const out = { iov: this.iov, payloads: this.payloads };
    this.iov = [];
    this.payloads = [];
    this.compact = undefined;
    return out;
  }

  private closeRun(): void {
    if (this.runStart < 0) return;
    this.iov.push(this.compact!.subarray(this.runStart, this.cpos));
    this.runStart = -1;
  }
}

/** The buffers of `iov` that remain after the first `done` bytes (for a short write). */
export function skipBytes(iov: readonly Buffer[], done: number): Buffer[] {
  let i = 0;
  while (i < iov.length && done >= iov[i]!.length) done -= iov[i++]!.length;
  const rest = iov.slice(i);
  if (done > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(done);
  return rest;
}
