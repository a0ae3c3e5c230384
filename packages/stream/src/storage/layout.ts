/**
 * On-disk layout of one partition: the only module that knows how bytes are arranged.
 *
 * Directory `{STORAGE_DATA_PATH}/{POD_NAME}/`:
 *   log/{base:020d}.log   event segments, named by the offset of their first record
 *   log/{base:020d}.idx   sparse index of a sealed segment (rebuilt from the .log if missing/bad)
 *   meta.log              key/value write-ahead log (group offsets, retention state, pipelines)
 *
 * Event record (little-endian), one after another in a segment:
 *   u32 bodyLength | u32 crc32(body) | body = u48 offset, u16 0, u48 timestampMs, u16 0, payload
 * `payload` is the exact protobuf encoding of the `Event` as the client sent it.
 *
 * Invariants:
 *   - offsets are dense and strictly increasing through a segment and across segments; the first
 *     offset ever written is 1; the next segment's base = previous segment's last offset + 1;
 *   - timestamps are non-decreasing (the writer stamps max(now, previous)), so retention can cut
 *     the log at a single offset;
 *   - a record is valid only if its length fits the file and its CRC matches; recovery truncates
 *     the last segment at its first invalid record (a torn tail), and reads of any record verify
 *     its CRC, so corrupt bytes are never served.
 *
 * Index entry (sparse, every INDEX_INTERVAL records): u48 offset, u16 0, u32 position, u48 ts, u16 0
 * An .idx file is: u32 magic 'HIDX', u32 count, entries…, u32 crc32(all preceding bytes).
 *
 * Meta WAL record: u32 bodyLength | u32 crc32(body) | body = ops…, where an op is
 *   u8 kind (1 put, 2 delete) | u16 keyLength | key (UTF-8) | [u32 valueLength | value]   (put only)
 * One record is one atomic batch: a torn record is dropped whole on recovery.
 *
 * Meta keys (UTF-8 strings; `/` separates a prefix from a name):
 *   g/{group}           durable group model, JSON {"maxBatchSize":n}
 *   o/{group}           durable group's last acked offset, u64 (8 bytes LE via u48+u16)
 *   a/{group}           failed deliveries of its unacked batches, JSON (delivery-attempts.ts)
 *   t/{trigger}         failed POSTs of a Trigger's unacked events, JSON (delivery-attempts.ts)
 *   r/start             first readable offset after retention, u64
 *   r/compacted-at      unix ms of the last compaction run, u64
 *   p/{pipeline}/l                       last source offset scanned for instance creation, u64
 *   p/{pipeline}/a/{offset:020d}         active instance: the root event's stored bytes
 *   p/{pipeline}/o/{offset:020d}/{stage} a stage's output Event bytes for that instance
 * Offsets in keys are zero-padded to 20 digits so key order is numeric order.
 */
import { crc32 } from 'node:zlib';
import { HadronError } from '@hadron/core';

export const RECORD_HEADER_BYTES = 8;
export const RECORD_FIXED_BODY_BYTES = 16;
export const RECORD_OVERHEAD = RECORD_HEADER_BYTES + RECORD_FIXED_BODY_BYTES;
export const INDEX_INTERVAL = 32;
export const INDEX_ENTRY_BYTES = 20;
export const INDEX_MAGIC = 0x58444948; // 'HIDX' little-endian

export const segmentFileName = (base: number): string => `${String(base).padStart(20, '0')}.log`;
export const indexFileName = (base: number): string => `${String(base).padStart(20, '0')}.idx`;
export const parseSegmentFileName = (name: string): number | undefined => {
  const m = /^(\d{20})\.log$/.exec(name);
  return m ? Number(m[1]) : undefined;
};

export function writeU64(buf: Buffer, pos: number, v: number): void {
  buf.writeUIntLE(v, pos, 6);
  buf.writeUInt16LE(0, pos + 6);
}

export function readU64(buf: Buffer, pos: number): number {
  return buf.readUIntLE(pos, 6) + buf.readUInt16LE(pos + 6) * 2 ** 48;
}

export const u64 = (v: number): Buffer => {
  const b = Buffer.allocUnsafe(8);
  writeU64(b, 0, v);
  return b;
};

/** Writes one event record at `pos` of `buf`; returns the position after it. */
export function writeRecord(buf: Buffer, pos: number, offset: number, timestampMs: number, payload: Uint8Array): number {
  const bodyLen = RECORD_FIXED_BODY_BYTES + payload.length;
  const body = pos + RECORD_HEADER_BYTES;
  writeU64(buf, body, offset);
  writeU64(buf, body + 8, timestampMs);
  buf.set(payload, body + RECORD_FIXED_BODY_BYTES);
  buf.writeUInt32LE(bodyLen, pos);
  buf.writeUInt32LE(crc32(buf.subarray(body, body + bodyLen)), pos + 4);
  return body + bodyLen;
}

/**
 * The CRC-32 a record with these fields carries (the same value `writeRecord` stores). Replication
 * ships it with each record and compares logs by it (docs/replication.md).
 */
export function recordChecksum(offset: number, timestampMs: number, payload: Uint8Array): number {
  const body = Buffer.allocUnsafe(RECORD_FIXED_BODY_BYTES + payload.length);
  body.fill(0, 0, RECORD_FIXED_BODY_BYTES);
  writeU64(body, 0, offset);
  writeU64(body, 8, timestampMs);
  body.set(payload, RECORD_FIXED_BODY_BYTES);
  return crc32(body);
}

export interface ParsedRecord {
  offset: number;
  timestamp: number;
  /** View of the payload inside the source buffer. */
  payload: Buffer;
  /** Total record size in bytes, header included. */
  size: number;
}

export type RecordParse =
  | { kind: 'ok'; record: ParsedRecord }
  /** Fewer bytes than the record needs: read more (or, at the end of a file, a torn tail). */
  | { kind: 'short'; need: number }
  | { kind: 'corrupt'; reason: string };

/** Parses the record at `pos`, verifying its checksum. */
export function parseRecord(buf: Buffer, pos: number, end = buf.length): RecordParse {
  if (end - pos < RECORD_HEADER_BYTES) return { kind: 'short', need: RECORD_OVERHEAD };
  const bodyLen = buf.readUInt32LE(pos);
  if (bodyLen < RECORD_FIXED_BODY_BYTES || bodyLen > 1024 * 1024 * 1024) {
    return { kind: 'corrupt', reason: `implausible record length ${bodyLen}` };
  }
  const size = RECORD_HEADER_BYTES + bodyLen;
  if (end - pos < size) return { kind: 'short', need: size };
  const body = pos + RECORD_HEADER_BYTES;
  if (crc32(buf.subarray(body, body + bodyLen)) !== buf.readUInt32LE(pos + 4)) {
    return { kind: 'corrupt', reason: 'checksum mismatch' };
  }
  return {
    kind: 'ok',
    record: {
      offset: readU64(buf, body),
      timestamp: readU64(buf, body + 8),
      payload: buf.subarray(body + RECORD_FIXED_BODY_BYTES, body + bodyLen),
      size,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Meta WAL batches

/** Longest meta key (its length is stored as a u16). */
export const MAX_META_KEY_BYTES = 0xffff;

export type MetaOp = { kind: 'put'; key: string; value: Buffer } | { kind: 'del'; key: string };

export function encodeMetaBatch(ops: readonly MetaOp[]): Buffer {
  let size = RECORD_HEADER_BYTES;
  const keys = ops.map((o) => Buffer.from(o.key, 'utf8'));
  // keyLength is a u16; callers validate names (core/names.ts), this is the last line of defence.
  for (const k of keys) if (k.length > MAX_META_KEY_BYTES) throw new HadronError('INVALID_ARGUMENT', `meta key of ${k.length} bytes exceeds ${MAX_META_KEY_BYTES}`);
  ops.forEach((o, i) => {
    size += 3 + keys[i]!.length + (o.kind === 'put' ? 4 + o.value.length : 0);
  });
  const buf = Buffer.allocUnsafe(size);
  let pos = RECORD_HEADER_BYTES;
  ops.forEach((o, i) => {
    const k = keys[i]!;
    buf[pos++] = o.kind === 'put' ? 1 : 2;
    buf.writeUInt16LE(k.length, pos);
    pos += 2;
    k.copy(buf, pos);
    pos += k.length;
    if (o.kind === 'put') {
      buf.writeUInt32LE(o.value.length, pos);
      pos += 4;
      o.value.copy(buf, pos);
      pos += o.value.length;
    }
  });
  buf.writeUInt32LE(size - RECORD_HEADER_BYTES, 0);
  buf.writeUInt32LE(crc32(buf.subarray(RECORD_HEADER_BYTES)), 4);
  return buf;
}

/** Decodes the meta batch at `pos`; null when torn or corrupt. */
export function decodeMetaBatch(buf: Buffer, pos: number): { ops: MetaOp[]; size: number } | null {
  if (buf.length - pos < RECORD_HEADER_BYTES) return null;
  const len = buf.readUInt32LE(pos);
  const end = pos + RECORD_HEADER_BYTES + len;
  if (end > buf.length) return null;
  const body = buf.subarray(pos + RECORD_HEADER_BYTES, end);
  if (crc32(body) !== buf.readUInt32LE(pos + 4)) return null;
  const ops: MetaOp[] = [];
  let p = 0;
  try {
    while (p < body.length) {
      const kind = body[p++];
      const kl = body.readUInt16LE(p);
      p += 2;
      const key = body.toString('utf8', p, p + kl);
      p += kl;
      if (kind === 1) {
        const vl = body.readUInt32LE(p);
        p += 4;
        if (p + vl > body.length) return null;
        ops.push({ kind: 'put', key, value: Buffer.from(body.subarray(p, p + vl)) });
        p += vl;
      } else if (kind === 2) ops.push({ kind: 'del', key });
      else return null;
    }
  } catch {
    return null;
  }
  return { ops, size: RECORD_HEADER_BYTES + len };
}

export const metaKeys = {
  group: (name: string): string => `g/${name}`,
  groupOffset: (name: string): string => `o/${name}`,
  groupAttempts: (name: string): string => `a/${name}`,
  triggerAttempts: (name: string): string => `t/${name}`,
  logStart: 'r/start',
  compactedAt: 'r/compacted-at',
  GROUP_PREFIX: 'g/',
  pipelinePrefix: (p: string): string => `p/${p}/`,
  pipelineScanned: (p: string): string => `p/${p}/l`,
  pipelineInstance: (p: string, offset: number): string => `p/${p}/a/${String(offset).padStart(20, '0')}`,
  pipelineOutput: (p: string, offset: number, stage: string): string => `p/${p}/o/${String(offset).padStart(20, '0')}/${stage}`,
} as const;
