/**
 * Stored record frames shipped verbatim between logs (replication, docs/replication.md): the
 * exact bytes of consecutive records as layout.ts stores them (u32 body length, u32 CRC-32 of
 * the body, body = u64 offset, u64 append time, payload).
 *
 * The leader sends what it stores without decoding, re-encoding or recomputing a checksum; the
 * receiver checks every frame's stored CRC once (the bytes crossed a network) and that the
 * offsets are dense, then writes the same bytes. One CRC per record on each side instead of two,
 * and no per-record protobuf message (issue 9).
 */
import { HadronError } from '@hadron/core';
import { RECORD_HEADER_BYTES, parseRecord, readU64 } from './layout.js';

/** Consecutive stored records, as frames. */
export interface StoredFrames {
  /** Offset of the first frame and of the last. */
  first: number;
  last: number;
  /** The frames, back to back. */
  frames: Buffer;
  /** Stored CRC-32 of the last frame (what replication compares logs by). */
  lastChecksum: number;
}

/** The checked contents of a frames buffer: views into it, nothing copied. */
export interface ParsedFrames {
  first: number;
  last: number;
  timestamps: number[];
  payloads: Buffer[];
  crcs: number[];
}

/**
 * Checks every frame of `buf` (length, stored CRC, dense offsets) and returns views of it.
 * Throws DATA_CORRUPTION naming the offset of the first bad frame (`source` says where the bytes
 * came from); nothing is returned for a buffer with any bad frame.
 */
export function parseFrames(buf: Buffer, source: string): ParsedFrames {
  const out: ParsedFrames = { first: 0, last: 0, timestamps: [], payloads: [], crcs: [] };
  let pos = 0;
  let expect = 0;
  while (pos < buf.length) {
    const i = out.payloads.length;
    // The offset this frame must carry: its predecessor's + 1; the first names its own (if readable).
    const offset = i > 0 ? expect : buf.length - pos >= RECORD_HEADER_BYTES + 8 ? readU64(buf, pos + RECORD_HEADER_BYTES) : 0;
    const r = parseRecord(buf, pos);
    if (r.kind !== 'ok' || (i > 0 && r.record.offset !== expect)) {
      const why = r.kind === 'short' ? 'is cut short' : r.kind === 'corrupt' ? `failed its check (${r.reason})` : `carries offset ${r.record.offset}`;
      throw new HadronError('DATA_CORRUPTION', `stored record ${offset} (frame ${i + 1}, byte ${pos}) from ${source} ${why}; nothing of this batch was stored`, {
        context: { offset, frame: i, position: pos },
      });
    }
    const rec = r.record;
    if (i === 0) out.first = rec.offset;
    out.last = rec.offset;
    out.timestamps.push(rec.timestamp);
    out.payloads.push(rec.payload);
    out.crcs.push(buf.readUInt32LE(pos + 4));
    expect = rec.offset + 1;
    pos += rec.size;
  }
  if (out.payloads.length === 0) throw new HadronError('EMPTY_BATCH', `no records in the frames from ${source}`);
  return out;
}
