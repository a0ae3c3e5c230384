/**
 * Hand-written protobuf codecs for the hot paths of `stream.proto`.
 *
 * The generated code in `./gen/stream_pb.ts` is the reference and is used everywhere speed does
 * not matter. These functions exist because the publish and subscribe paths must not decode and
 * re-encode every event: the server stores the exact bytes of each `Event` as received and sends
 * them back verbatim, so it only needs to *find* the events inside a request (zero copy) and to
 * *frame* stored events into a response. Tests cross-check every function here against the
 * generated code, byte for byte.
 *
 * Protobuf wire grammar used here (https://protobuf.dev/programming-guides/encoding/):
 *   message := (tag value)*
 *   tag     := varint(field_number << 3 | wire_type)
 *   wire_type 0 = varint, 1 = i64 (8 bytes), 2 = LEN (varint length + bytes), 5 = i32 (4 bytes)
 * proto3 omits fields that hold their default value; encoders below do the same and write fields
 * in field-number order, as the generated encoder does, so both produce identical bytes.
 *
 * Offsets are carried as JavaScript numbers: exact up to 2^53-1, far beyond any real log.
 */

import { checkEventBytes } from './check-event.js';

/** Raised for bytes that are not a valid encoding of the expected message. */
export class WireFormatError extends Error {
  override readonly name = 'WireFormatError';
}

/** The plain-object form of `stream.Event` used by codecs and clients. */
export interface WireEvent {
  id: string;
  source: string;
  specversion: string;
  type: string;
  optattrs: Record<string, string>;
  data: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Varints

/** Number of bytes the varint encoding of `n` (0 ≤ n ≤ 2^53-1) takes. */
export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 4;
  let v = Math.floor(n / 0x10000000);
  while (v > 0) {
    size++;
    v = Math.floor(v / 128);
  }
  return size;
}

/** Writes `n` as a varint at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** A reader over one message's bytes, with bounds checks that throw `WireFormatError`. */
export class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    const buf = this.buf;
    let pos = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= this.end) throw new WireFormatError('truncated varint');
      const b = buf[pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        this.pos = pos;
        if (result > Number.MAX_SAFE_INTEGER) throw new WireFormatError('varint exceeds 2^53-1');
        return result;
      }
      mul *= 128;
    }
    throw new WireFormatError('varint longer than 10 bytes');
  }

  /** Reads a LEN field's length and returns [start, end) of its bytes, advancing past them. */
  lenRange(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    const end = start + len;
    if (end > this.end) throw new WireFormatError(`length ${len} runs past the end of the message`);
    this.pos = end;
    return [start, end];
  }

  string(): string {
    const [s, e] = this.lenRange();
    return this.buf.toString('utf8', s, e);
  }

  /** Skips a field's value of the given wire type. */
  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.lenRange();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new WireFormatError(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new WireFormatError('fixed-width field runs past the end');
  }
}

// ---------------------------------------------------------------------------------------------
// Event

const TAG_LEN = (field: number): number => (field << 3) | 2;

/** Size of a LEN field holding `len` bytes, tag included (field numbers < 16). */
function lenFieldSize(len: number): number {
  return 1 + varintSize(len) + len;
}

function writeLenHeader(buf: Buffer, pos: number, field: number, len: number): number {
  buf[pos++] = TAG_LEN(field);
  return writeVarint(buf, pos, len);
}

/** Encodes an event exactly as the generated `toBinary(EventSchema, …)` does. */
export function encodeEvent(ev: WireEvent): Buffer {
  // Hot on the client (once per published event): no temporary arrays, and the common event
  // without extension attributes skips the map walk. Saves ~1 µs per event (docs/client.md).
  const l1 = Buffer.byteLength(ev.id);
  const l2 = Buffer.byteLength(ev.source);
  const l3 = Buffer.byteLength(ev.specversion);
  const l4 = Buffer.byteLength(ev.type);
  let size = 0;
  if (l1 > 0) size += lenFieldSize(l1);
  if (l2 > 0) size += lenFieldSize(l2);
  if (l3 > 0) size += lenFieldSize(l3);
  if (l4 > 0) size += lenFieldSize(l4);
  let entries: [string, string][] | undefined;
  let entrySizes: number[] | undefined;
  for (const _k in ev.optattrs) {
    entries = Object.entries(ev.optattrs);
    break;
  }
  if (entries) {
    entrySizes = [];
    for (const [k, v] of entries) {
      const kl = Buffer.byteLength(k);
      const vl = Buffer.byteLength(v);
      // Map entries always carry key (1) and value (2), as the generated encoder writes them.
      const inner = lenFieldSize(kl) + lenFieldSize(vl);
      entrySizes.push(inner, kl, vl);
      size += lenFieldSize(inner);
    }
  }
  if (ev.data.length > 0) size += lenFieldSize(ev.data.length);

  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  if (l1 > 0) pos = writeString(buf, writeLenHeader(buf, pos, 1, l1), ev.id, l1);
  if (l2 > 0) pos = writeString(buf, writeLenHeader(buf, pos, 2, l2), ev.source, l2);
  if (l3 > 0) pos = writeString(buf, writeLenHeader(buf, pos, 3, l3), ev.specversion, l3);
  if (l4 > 0) pos = writeString(buf, writeLenHeader(buf, pos, 4, l4), ev.type, l4);
  if (entries && entrySizes) {
    for (let i = 0; i < entries.length; i++) {
      const [k, v] = entries[i]!;
      pos = writeLenHeader(buf, pos, 5, entrySizes[i * 3]!);
      pos = writeString(buf, writeLenHeader(buf, pos, 1, entrySizes[i * 3 + 1]!), k, entrySizes[i * 3 + 1]!);
      pos = writeString(buf, writeLenHeader(buf, pos, 2, entrySizes[i * 3 + 2]!), v, entrySizes[i * 3 + 2]!);
    }
  }
  if (ev.data.length > 0) {
    pos = writeLenHeader(buf, pos, 6, ev.data.length);
    buf.set(ev.data, pos);
    pos += ev.data.length;
  }
  return buf;
}

/**
 * Writes `s` (whose UTF-8 length is `byteLen`) at `pos`. A short ASCII string is copied char by
 * char: cheaper than a call into the native UTF-8 writer for attribute-sized strings.
 */
function writeString(buf: Buffer, pos: number, s: string, byteLen: number): number {
  if (byteLen === s.length && byteLen <= 64) {
    for (let i = 0; i < byteLen; i++) buf[pos + i] = s.charCodeAt(i);
    return pos + byteLen;
  }
  return pos + buf.write(s, pos, 'utf8');
}

/** Decodes an `Event`. `data` is a view into `buf` (no copy). Unknown fields are skipped. */
export function decodeEvent(buf: Buffer, start = 0, end = buf.length): WireEvent {
  const r = new Reader(buf, start, end);
  const ev: WireEvent = { id: '', source: '', specversion: '', type: '', optattrs: {}, data: EMPTY };
  while (!r.done) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field >= 1 && field <= 6 && wt !== 2) {
      throw new WireFormatError(`Event field ${field} has wire type ${wt}, expected 2`);
    }
    switch (field) {
      case 1:
        ev.id = r.string();
        break;
      case 2:
        ev.source = r.string();
        break;
      case 3:
        ev.specversion = r.string();
        break;
      case 4:
        ev.type = r.string();
        break;
      case 5: {
        const [s, e] = r.lenRange();
        const er = new Reader(buf, s, e);
        let k = '';
        let v = '';
        while (!er.done) {
          const t = er.varint();
          if (t === 0x0a) k = er.string();
          else if (t === 0x12) v = er.string();
          else er.skip(t & 7);
        }
        // A key "__proto__" must become an own property, not the object's prototype.
        if (k === '__proto__') Object.defineProperty(ev.optattrs, k, { value: v, enumerable: true, writable: true, configurable: true });
        else ev.optattrs[k] = v;
        break;
      }
      case 6: {
        const [s, e] = r.lenRange();
        ev.data = buf.subarray(s, e);
        break;
      }
      default:
        r.skip(wt);
    }
  }
  return ev;
}

const EMPTY = new Uint8Array(0);

/**
 * Checks that `[start, end)` is an `Event` every decoder accepts and that satisfies the
 * CloudEvents rules (see check-event.ts). Returns null when valid, else the problem.
 */
export function checkEvent(buf: Buffer, start: number, end: number): string | null {
  return checkEventBytes(buf, start, end);
}

// ---------------------------------------------------------------------------------------------
// StreamPublishRequest / StreamPublishResponse

/** A publish request with its events as zero-copy views of the request bytes. */
export interface ScannedPublish {
  events: Buffer[];
  /** Total bytes of the events' encodings. */
  bytes: number;
  fsync: boolean;
  ack: number;
}

/**
 * Finds the events of a `StreamPublishRequest` without decoding them, validating each with
 * `checkEvent`. Throws `WireFormatError` naming the first bad event.
 */
export function scanPublishRequest(buf: Buffer): ScannedPublish {
  const r = new Reader(buf);
  const events: Buffer[] = [];
  let bytes = 0;
  let fsync = false;
  let ack = 0;
  while (!r.done) {
    const tag = r.varint();
    switch (tag) {
      case 0x0a: {
        const [s, e] = r.lenRange();
        const problem = checkEvent(buf, s, e);
        if (problem !== null) {
          throw new WireFormatError(`event ${events.length} of the batch is invalid: ${problem}`);
        }
        events.push(buf.subarray(s, e));
        bytes += e - s;
        break;
      }
      case 0x10:
        fsync = r.varint() !== 0;
        break;
      case 0x18:
        ack = r.varint();
        break;
      default:
        if (tag >>> 3 === 0) throw new WireFormatError('field number 0 is invalid');
        r.skip(tag & 7);
    }
  }
  return { events, bytes, fsync, ack };
}

/** Encodes a `StreamPublishRequest` from already-encoded events. */
export function encodePublishRequest(events: readonly Uint8Array[], fsync: boolean, ack = 0): Buffer {
  let size = 0;
  for (const e of events) size += lenFieldSize(e.length);
  if (fsync) size += 2;
  if (ack !== 0) size += 1 + varintSize(ack);
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const e of events) {
    pos = writeLenHeader(buf, pos, 1, e.length);
    buf.set(e, pos);
    pos += e.length;
  }
  if (fsync) {
    buf[pos++] = 0x10;
    buf[pos++] = 1;
  }
  if (ack !== 0) {
    buf[pos++] = 0x18;
    pos = writeVarint(buf, pos, ack);
  }
  return buf;
}

export function encodePublishResponse(offset: number, partition: number): Buffer {
  const buf = Buffer.allocUnsafe(2 + varintSize(offset) + varintSize(partition));
  let pos = 0;
  if (offset !== 0) {
    buf[pos++] = 0x08;
    pos = writeVarint(buf, pos, offset);
  }
  if (partition !== 0) {
    buf[pos++] = 0x10;
    pos = writeVarint(buf, pos, partition);
  }
  return buf.subarray(0, pos);
}

export function decodePublishResponse(buf: Buffer): { offset: number; partition: number } {
  const r = new Reader(buf);
  let offset = 0;
  let partition = 0;
  while (!r.done) {
    const tag = r.varint();
    if (tag === 0x08) offset = r.varint();
    else if (tag === 0x10) partition = r.varint();
    else r.skip(tag & 7);
  }
  return { offset, partition };
}

// ---------------------------------------------------------------------------------------------
// StreamSubscribeResponse

/**
 * Frames stored events into a `StreamSubscribeResponse` (fields 1–4). The events are copied
 * once into the response buffer; nothing is decoded.
 */
export function encodeSubscribeResponse(
  events: readonly Uint8Array[],
  lastIncludedOffset: number,
  attempt: number,
  partition: number,
): Buffer {
  let size = 0;
  for (const e of events) size += lenFieldSize(e.length);
  size += 3 + varintSize(lastIncludedOffset) + varintSize(attempt) + varintSize(partition);
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const e of events) {
    pos = writeLenHeader(buf, pos, 1, e.length);
    buf.set(e, pos);
    pos += e.length;
  }
  if (lastIncludedOffset !== 0) {
    buf[pos++] = 0x10;
    pos = writeVarint(buf, pos, lastIncludedOffset);
  }
  if (attempt !== 0) {
    buf[pos++] = 0x18;
    pos = writeVarint(buf, pos, attempt);
  }
  if (partition !== 0) {
    buf[pos++] = 0x20;
    pos = writeVarint(buf, pos, partition);
  }
  return buf.subarray(0, pos);
}

/** A decoded subscription delivery; `events` are views into the response bytes. */
export interface SubscribeDelivery {
  events: Buffer[];
  lastIncludedOffset: number;
  attempt: number;
  partition: number;
}

export function decodeSubscribeResponse(buf: Buffer): SubscribeDelivery {
  const r = new Reader(buf);
  const out: SubscribeDelivery = { events: [], lastIncludedOffset: 0, attempt: 0, partition: 0 };
  while (!r.done) {
    const tag = r.varint();
    switch (tag) {
      case 0x0a: {
        const [s, e] = r.lenRange();
        out.events.push(buf.subarray(s, e));
        break;
      }
      case 0x10:
        out.lastIncludedOffset = r.varint();
        break;
      case 0x18:
        out.attempt = r.varint();
        break;
      case 0x20:
        out.partition = r.varint();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return out;
}

// StreamSubscribeRequest acks are tiny and frequent: pre-encode them.
/** `StreamSubscribeRequest{ack: Empty{}}` (no offset: "the batch in flight"). */
export const SUBSCRIBE_ACK = Buffer.from([0x12, 0x00]);

/** `StreamSubscribeRequest{ack: Empty{}, offset}`, as the generated encoder writes it. */
export function encodeSubscribeAck(offset: number): Buffer {
  if (offset === 0) return SUBSCRIBE_ACK;
  const buf = Buffer.allocUnsafe(3 + varintSize(offset));
  buf[0] = 0x12;
  buf[1] = 0x00;
  buf[2] = 0x20;
  writeVarint(buf, 3, offset);
  return buf;
}

/**
 * Recognises a plain ack (`ack{}` with an optional `offset`, in either field order) without the
 * generated decoder; returns its offset (0 when absent), or undefined for any other message.
 */
export function scanSubscribeAck(buf: Buffer): number | undefined {
  if (buf.length === 2) return buf[0] === 0x12 && buf[1] === 0x00 ? 0 : undefined;
  let ack = false;
  let offset = 0;
  const r = new Reader(buf);
  try {
    while (!r.done) {
      const t = r.varint();
      if (t === 0x12 && !ack && r.pos < buf.length && buf[r.pos] === 0x00) {
        r.pos++;
        ack = true;
      } else if (t === 0x20) offset = r.varint();
      else return undefined;
    }
  } catch {
    return undefined;
  }
  return ack ? offset : undefined;
}

// ---------------------------------------------------------------------------------------------
// Pipelines

/** Reads only the `type` attribute (field 4) of an encoded Event. */
export function eventType(buf: Buffer): string {
  const r = new Reader(buf);
  let type = '';
  while (!r.done) {
    const tag = r.varint();
    if (tag === 0x22) type = r.string();
    else r.skip(tag & 7);
  }
  return type;
}

/**
 * Encodes a `PipelineSubscribeResponse` from stored event bytes: stage (1), root_event (2),
 * inputs map<string, Event> (3), attempt (4), offset (5), partition (6).
 */
export function encodePipelineResponse(
  stage: string,
  root: Uint8Array,
  inputs: ReadonlyArray<readonly [string, Uint8Array]>,
  attempt: number,
  offset: number,
  partition: number,
): Buffer {
  const stageLen = Buffer.byteLength(stage);
  let size = lenFieldSize(stageLen) + lenFieldSize(root.length);
  const entrySizes: number[] = [];
  for (const [k, v] of inputs) {
    const kl = Buffer.byteLength(k);
    const inner = lenFieldSize(kl) + lenFieldSize(v.length);
    entrySizes.push(inner, kl);
    size += lenFieldSize(inner);
  }
  size += 3 + varintSize(attempt) + varintSize(offset) + varintSize(partition);
  const buf = Buffer.allocUnsafe(size);
  let pos = writeLenHeader(buf, 0, 1, stageLen);
  pos += buf.write(stage, pos, 'utf8');
  pos = writeLenHeader(buf, pos, 2, root.length);
  buf.set(root, pos);
  pos += root.length;
  inputs.forEach(([k, v], i) => {
    pos = writeLenHeader(buf, pos, 3, entrySizes[i * 2]!);
    pos = writeLenHeader(buf, pos, 1, entrySizes[i * 2 + 1]!);
    pos += buf.write(k, pos, 'utf8');
    pos = writeLenHeader(buf, pos, 2, v.length);
    buf.set(v, pos);
    pos += v.length;
  });
  if (attempt !== 0) {
    buf[pos++] = 0x20;
    pos = writeVarint(buf, pos, attempt);
  }
  if (offset !== 0) {
    buf[pos++] = 0x28;
    pos = writeVarint(buf, pos, offset);
  }
  if (partition !== 0) {
    buf[pos++] = 0x30;
    pos = writeVarint(buf, pos, partition);
  }
  return buf.subarray(0, pos);
}

/** A `PipelineSubscribeRequest` with the output event kept as raw bytes (no decode). */
export type ScannedPipelineRequest =
  | { pipeline: string; offset: number; kind: 'stage'; stage: string }
  | { pipeline: string; offset: number; kind: 'ack'; output: Buffer }
  | { pipeline: string; offset: number; kind: 'nack'; reason: string }
  | { pipeline: string; offset: number; kind: 'none' };

export function scanPipelineRequest(buf: Buffer): ScannedPipelineRequest {
  const r = new Reader(buf);
  let pipeline = '';
  let offset = 0;
  let out: ScannedPipelineRequest | undefined;
  while (!r.done) {
    const tag = r.varint();
    switch (tag) {
      case 0x0a:
        pipeline = r.string();
        break;
      case 0x52:
        out = { pipeline: '', offset: 0, kind: 'stage', stage: r.string() };
        break;
      case 0x5a: {
        const [s, e] = r.lenRange();
        const inner = new Reader(buf, s, e);
        let output = Buffer.alloc(0);
        while (!inner.done) {
          const t = inner.varint();
          if (t === 0x0a) {
            const [os, oe] = inner.lenRange();
            output = buf.subarray(os, oe);
          } else inner.skip(t & 7);
        }
        out = { pipeline: '', offset: 0, kind: 'ack', output };
        break;
      }
      case 0x62:
        out = { pipeline: '', offset: 0, kind: 'nack', reason: r.string() };
        break;
      case 0x68:
        offset = r.varint();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return { ...(out ?? { kind: 'none' }), pipeline, offset } as ScannedPipelineRequest;
}
