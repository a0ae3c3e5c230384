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

/**
 * Where each payload of a write lives, for the tail cache: `holders[holder[i]]` bytes
 * `start[i]`..`end[i]`. Kept as numbers rather than one Buffer view per event: ~65,000 views held
 * for a 64 MiB tail cache were old-space objects every major GC had to mark.
 */
export interface PayloadRefs {
  holders: Buffer[];
  holder: number[];
  start: number[];
  end: number[];
  /** Each record's stored CRC-32, so replication can ship the frame without recomputing it. */
  crc: number[];
}

/** The encoded write: what to `writev`, and where each payload is kept. */
export interface EncodedRecords {
  iov: Buffer[];
  refs: PayloadRefs;
}

/** The payload of record `i`. */
export const payloadAt = (r: PayloadRefs, i: number): Buffer => r.holders[r.holder[i]!]!.subarray(r.start[i], r.end[i]);

/** CRC-32 (IEEE, as zlib) lookup table. */
const CRC_TABLE = ((): Int32Array => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** zlib's crc32 of the `RECORD_FIXED_BODY_BYTES` bytes at `pos`. */
function crc32Fixed(buf: Buffer, pos: number): number {
  let c = -1;
  for (let i = pos; i < pos + RECORD_FIXED_BODY_BYTES; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

const asBuffer = (p: Uint8Array): Buffer => (Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength));

export class RecordBatchEncoder {
  /** Record headers of in-place payloads; reused by every write (writes never overlap). */
  private staging = Buffer.allocUnsafe(16 * 1024);
  private hpos = 0;
  private compact: Buffer | undefined;
  private cpos = 0;
  /** Start in `compact` of the records not yet in `iov` (-1: none). */
  private runStart = -1;
  private iov: Buffer[] = [];
  private refs: PayloadRefs = emptyRefs();
  /** ArrayBuffer of `refs.holders` last entry (in-place payloads of one append share it). */
  private lastHolder: ArrayBufferLike | undefined;

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
    this.refs = emptyRefs();
    this.lastHolder = undefined;
  }

  /** Adds the next record. */
  add(offset: number, timestampMs: number, payload: Uint8Array, inPlace: boolean): void {
    if (!inPlace) {
      const c = this.compact!;
      const start = this.cpos;
      if (this.runStart < 0) this.runStart = start;
      this.cpos = writeRecord(c, start, offset, timestampMs, payload);
      this.ref(c.buffer, c.byteOffset + start + RECORD_OVERHEAD, c.byteOffset + this.cpos, c.readUInt32LE(start + 4));
      return;
    }
    this.closeRun();
    const h = this.hpos;
    const st = this.staging;
    const body = h + RECORD_HEADER_BYTES;
    writeU64(st, body, offset);
    writeU64(st, body + 8, timestampMs);
    st.writeUInt32LE(RECORD_FIXED_BODY_BYTES + payload.length, h);
    // The CRC of (offset, time, payload) — the value writeRecord stores — in two steps: the 16
    // fixed bytes here (cheaper than a native call on a view), then the payload continuing it.
    const crc = crc32(payload, crc32Fixed(st, body));
    st.writeUInt32LE(crc, h + 4);
    this.iov.push(st.subarray(h, h + RECORD_OVERHEAD), asBuffer(payload));
    this.ref(payload.buffer, payload.byteOffset, payload.byteOffset + payload.length, crc);
    this.hpos = h + RECORD_OVERHEAD;
  }

  /**
   * Adds records that arrive as finished frames (a replica copying the leader's stored bytes,
   * already checked by `parseFrames`): `frames` is written as it is, no header is rebuilt and no
   * CRC recomputed. `payloads` are views into `frames`, `crcs` their frames' stored CRCs.
   */
  addFrames(frames: Buffer, payloads: readonly Uint8Array[], crcs: readonly number[]): void {
    this.closeRun();
    this.iov.push(frames);
    payloads.forEach((p, i) => this.ref(p.buffer, p.byteOffset, p.byteOffset + p.length, crcs[i]!));
  }

  /** Records where a payload lives: bytes `start`..`end` of `ab` (a request buffer or `compact`'s). */
  private ref(ab: ArrayBufferLike, start: number, end: number, crc: number): void {
    const r = this.refs;
    if (ab !== this.lastHolder) {
      r.holders.push(Buffer.from(ab));
      this.lastHolder = ab;
    }
    r.holder.push(r.holders.length - 1);
    r.start.push(start);
    r.end.push(end);
    r.crc.push(crc);
  }

  /** Ends the write: the buffers to write in order and the payload views. */
  finish(): EncodedRecords {
    this.closeRun();
    const out = { iov: this.iov, refs: this.refs };
    this.iov = [];
    this.refs = emptyRefs();
    this.compact = undefined;
    this.lastHolder = undefined;
    return out;
  }

  private closeRun(): void {
    if (this.runStart < 0) return;
    this.iov.push(this.compact!.subarray(this.runStart, this.cpos));
    this.runStart = -1;
  }
}

function emptyRefs(): PayloadRefs {
  return { holders: [], holder: [], start: [], end: [], crc: [] };
}

/** The buffers of `iov` that remain after the first `done` bytes (for a short write). */
export function skipBytes(iov: readonly Buffer[], done: number): Buffer[] {
  let i = 0;
  while (i < iov.length && done >= iov[i]!.length) done -= iov[i++]!.length;
  const rest = iov.slice(i);
  if (done > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(done);
  return rest;
}
