/**
 * Complete validation of one encoded `stream.Event` in a single pass, without decoding it and
 * without allocating on the success path (the publish hot path runs this on every event).
 *
 * The server stores the exact bytes it accepts and serves them verbatim, so it must accept only
 * bytes that every decoder of `Event` accepts: the generated protobuf-es code, prost (the
 * original Rust client) and our own `decodeEvent`. The rules (issue 14 item 4):
 *
 * Wire level (https://protobuf.dev/programming-guides/encoding/), top level and inside each
 * `optattrs` map entry:
 *   - a tag is a varint of at most 5 bytes that fits in uint32; field number ≥ 1;
 *   - wire types 0 (varint, ≤ 10 bytes, 10th byte ≤ 1), 1 (8 bytes), 2 (LEN), 5 (4 bytes);
 *     group wire types 3/4 are refused (proto3 has no groups; our decoders reject them);
 *   - a LEN length is a varint of at most 5 bytes and stays inside its message;
 *   - known fields carry their declared wire type: Event fields 1–6 and map-entry fields 1–2
 *     are all LEN;
 *   - `string` fields (id, source, specversion, type, map keys and values) are valid UTF-8 as
 *     proto3 requires (no overlong forms, no surrogates, nothing above U+10FFFF);
 *   - unknown fields with a valid wire type are legal protobuf and are kept (the server stores
 *     bytes verbatim; decoders skip them), at the top level and inside map entries;
 *   - a repeated scalar field is legal: the last occurrence wins, so the rules below apply to
 *     the last occurrence.
 * CloudEvents 1.0 (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md):
 *   - id, source, specversion, type present and non-empty; specversion is exactly "1.0";
 *   - attribute names (map keys) are 1–{@link MAX_ATTRIBUTE_NAME} characters of a–z, 0–9
 *     (the spec RECOMMENDS ≤ 20; we refuse only beyond 64) and are not a name that has its own
 *     field (id, source, specversion, type) or is reserved (data);
 *   - the optional spec attributes datacontenttype, dataschema, subject, time are non-empty
 *     when present (their formats are not checked).
 * Everything is a strict subset of what a conforming decoder accepts; the only legal protobuf
 * refused is groups and non-minimal varints longer than 5 bytes in tags and lengths, which no
 * encoder produces.
 */

/** Longest attribute (optattrs key) name accepted, in characters. */
export const MAX_ATTRIBUTE_NAME = 64;

/** Result of {@link checkEventBytes}: null when valid, else what is wrong. */
export type EventProblem = string | null;

export interface CheckEventOptions {
  /**
   * Apply the CloudEvents attribute rules too (default true). False checks only that every
   * decoder accepts the bytes: used for pipeline stage outputs, which may be empty events.
   */
  cloudEvents?: boolean;
}

// Module-level scratch instead of returned tuples: no allocation per field.
let pos = 0;
let value = 0;
let problem = '';

// What a varint or length belongs to. Messages are built only on failure, so the success path
// allocates nothing: (kind, n) instead of a string.
const W_TAG = 0;
const W_FIELD = 1; // unknown field n
const W_ATTR = 2; // attribute field n (1–4)
const W_ENTRY = 3; // optattrs entry n
const W_DATA = 4;
const W_NAME = 5;
const W_VALUE = 6;

function what(kind: number, n: number): string {
  switch (kind) {
    case W_TAG:
      return 'tag';
    case W_FIELD:
      return `field ${n}`;
    case W_ATTR:
      return `attribute ${ATTRIBUTE_FIELDS[n] ?? n}`;
    case W_ENTRY:
      return `optattrs entry ${n}`;
    case W_DATA:
      return 'data';
    case W_NAME:
      return 'attribute name';
    default:
      return 'attribute value';
  }
}

/** Reads a varint of at most `maxBytes` into `value` (as a number, exact below 2^53). */
function varint(buf: Uint8Array, end: number, maxBytes: number, kind: number, n: number): boolean {
  // Fast path: tags of fields < 16 and lengths < 128 are one byte.
  if (pos < end) {
    const b0 = buf[pos]!;
    if (b0 < 0x80) {
      pos++;
      value = b0;
      return true;
    }
  }
  let result = 0;
  let mul = 1;
  for (let i = 0; i < maxBytes; i++) {
    if (pos >= end) {
      problem = `truncated ${kind === W_TAG ? 'tag' : `length or value of ${what(kind, n)}`}`;
      return false;
    }
    const b = buf[pos++]!;
    if (i === 9 && b > 1) break;
    result += (b & 0x7f) * mul;
    if (b < 0x80) {
      if (maxBytes === 5 && i === 4 && b > 0x0f) break;
      value = result;
      return true;
    }
    mul *= 128;
  }
  problem = `${kind === W_TAG ? 'tag' : `length or value of ${what(kind, n)}`} is not a valid varint${maxBytes === 5 ? ' of at most 32 bits' : ''}`;
  return false;
}

/** Skips an unknown field's value. */
function skip(buf: Uint8Array, end: number, wt: number, field: number): boolean {
  switch (wt) {
    case 0:
      return varint(buf, end, 10, W_FIELD, field);
    case 1:
      pos += 8;
      break;
    case 2:
      if (!varint(buf, end, 5, W_FIELD, field)) return false;
      pos += value;
      break;
    case 5:
      pos += 4;
      break;
    default:
      problem = wt === 3 || wt === 4 ? `field ${field} uses a group wire type (${wt}), which proto3 does not allow` : `field ${field} has invalid wire type ${wt}`;
      return false;
  }
  if (pos > end) {
    problem = `field ${field} runs past the end of its message`;
    return false;
  }
  return true;
}

/** Reads a tag into `value`: field number = value >>> 3, wire type = value & 7. */
function tag(buf: Uint8Array, end: number): boolean {
  if (!varint(buf, end, 5, W_TAG, 0)) return false;
  if (value < 8) {
    problem = 'field number 0 is invalid';
    return false;
  }
  return true;
}

/** Reads a LEN field's length; on success the bytes are [pos, pos + value). */
function len(buf: Uint8Array, end: number, kind: number, n: number): boolean {
  if (!varint(buf, end, 5, kind, n)) return false;
  if (pos + value > end) {
    problem = `${what(kind, n)}: length ${value} runs past the end of the event`;
    return false;
  }
  return true;
}

/**
 * Whether bytes [s, e) are well-formed UTF-8 (Unicode 15, table 3-7): no overlong encodings,
 * no surrogates, nothing beyond U+10FFFF. ASCII runs take the fast first branch.
 */
export function isValidUtf8(buf: Uint8Array, s: number, e: number): boolean {
  let i = s;
  while (i < e) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      else if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      else if (b === 0xf4) hi = 0x8f;
    } else return false;
    if (i + need >= e) return false;
    const b1 = buf[i + 1]!;
    if (b1 < lo || b1 > hi) return false;
    for (let k = 2; k <= need; k++) {
      const c = buf[i + k]!;
      if (c < 0x80 || c > 0xbf) return false;
    }
    i += need + 1;
  }
  return true;
}

const ATTRIBUTE_FIELDS = ['', 'id', 'source', 'specversion', 'type'] as const;
/** Names an optattrs key may not take: attributes with their own field, and `data`. */
const RESERVED = ['id', 'source', 'specversion', 'type', 'data'].map((n) => Buffer.from(n));
/** Optional spec attributes that must be non-empty when present. */
const NON_EMPTY = ['datacontenttype', 'dataschema', 'subject', 'time'].map((n) => Buffer.from(n));

function equalsAscii(buf: Uint8Array, s: number, e: number, name: Uint8Array): boolean {
  if (e - s !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (buf[s + i] !== name[i]) return false;
  return true;
}

function inList(buf: Uint8Array, s: number, e: number, list: readonly Uint8Array[]): boolean {
  for (const n of list) if (equalsAscii(buf, s, e, n)) return true;
  return false;
}

/** Checks one `optattrs` map entry [s, e); `n` is its index, for messages. */
function checkEntry(buf: Uint8Array, s: number, e: number, n: number, cloudEvents: boolean): boolean {
  const outer = pos;
  pos = s;
  let ks = 0;
  let ke = 0;
  let vs = 0;
  let ve = 0;
  while (pos < e) {
    if (!tag(buf, e)) break;
    const field = Math.floor(value / 8);
    const wt = value & 7;
    if (field === 1 || field === 2) {
      if (wt !== 2) {
        problem = `field ${field} has wire type ${wt}, expected 2 (length-delimited)`;
        break;
      }
      if (!len(buf, e, field === 1 ? W_NAME : W_VALUE, 0)) break;
      const fs = pos;
      pos += value;
      if (!isValidUtf8(buf, fs, pos)) {
        problem = `attribute ${field === 1 ? 'name' : 'value'} is not valid UTF-8`;
        break;
      }
      if (field === 1) {
        ks = fs;
        ke = pos;
      } else {
        vs = fs;
        ve = pos;
      }
    } else if (!skip(buf, e, wt, field)) break;
  }
  if (pos !== e || problem !== '') {
    problem = `optattrs entry ${n}: ${problem || 'malformed entry'}`;
    return false;
  }
  pos = outer;
  if (!cloudEvents) return true;
  const name = (): string => JSON.stringify(Buffer.from(buf.buffer, buf.byteOffset + ks, ke - ks).toString('utf8'));
  if (ke === ks) {
    problem = `optattrs entry ${n}: attribute name is empty`;
    return false;
  }
  if (ke - ks > MAX_ATTRIBUTE_NAME) {
    problem = `optattrs entry ${n}: attribute name is ${ke - ks} characters long, at most ${MAX_ATTRIBUTE_NAME} allowed`;
    return false;
  }
  for (let i = ks; i < ke; i++) {
    const c = buf[i]!;
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39))) {
      problem = `optattrs entry ${n}: attribute name ${name()} must consist of lower-case letters a-z and digits 0-9 (CloudEvents 1.0)`;
      return false;
    }
  }
  if (inList(buf, ks, ke, RESERVED)) {
    problem = `optattrs entry ${n}: attribute name ${name()} is reserved (it has its own field or is reserved by CloudEvents)`;
    return false;
  }
  if (ve === vs && inList(buf, ks, ke, NON_EMPTY)) {
    problem = `optattrs entry ${n}: attribute ${name()} must not be empty when present`;
    return false;
  }
  return true;
}

/**
 * Validates the encoded Event at [start, end) of `buf` completely (see the module comment).
 * Returns null when every decoder accepts it and it satisfies the CloudEvents rules, else a
 * short description naming the problem.
 */
export function checkEventBytes(buf: Uint8Array, start: number, end: number, opts?: CheckEventOptions): EventProblem {
  const cloudEvents = opts?.cloudEvents ?? true;
  pos = start;
  problem = '';
  // Bit f (1–4) set when the last occurrence of attribute f is non-empty.
  let present = 0;
  let specStart = -1;
  let specEnd = -1;
  let entries = 0;
  while (pos < end) {
    if (!tag(buf, end)) return problem;
    const field = Math.floor(value / 8);
    const wt = value & 7;
    if (field >= 1 && field <= 6) {
      if (wt !== 2) return `field ${field} has wire type ${wt}, expected 2 (length-delimited)`;
      const kind = field <= 4 ? W_ATTR : field === 5 ? W_ENTRY : W_DATA;
      if (!len(buf, end, kind, field === 5 ? entries : field)) return problem;
      const fs = pos;
      const fe = pos + value;
      if (field <= 4) {
        if (!isValidUtf8(buf, fs, fe)) return `${what(kind, field)} is not valid UTF-8`;
        if (fe > fs) present |= 1 << field;
        else present &= ~(1 << field);
        if (field === 3) {
          specStart = fs;
          specEnd = fe;
        }
      } else if (field === 5) {
        if (!checkEntry(buf, fs, fe, entries, cloudEvents)) return problem;
        entries++;
      }
      pos = fe;
    } else if (!skip(buf, end, wt, field)) return problem;
  }
  if (!cloudEvents) return null;
  if (present !== 0b11110) {
    const missing = ['id', 'source', 'specversion', 'type'].filter((_, i) => !(present & (1 << (i + 1))));
    return `required attribute${missing.length > 1 ? 's' : ''} ${missing.join(', ')} missing or empty`;
  }
  if (!(specEnd - specStart === 3 && buf[specStart] === 0x31 && buf[specStart + 1] === 0x2e && buf[specStart + 2] === 0x30)) {
    return `specversion must be "1.0", not ${JSON.stringify(Buffer.from(buf.buffer, buf.byteOffset + specStart, specEnd - specStart).toString('utf8'))}`;
  }
  return null;
}
