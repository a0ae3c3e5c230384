/**
 * Partition selection (DESIGN.md "Partition selection"), shared by the client and the HTTP ingress.
 *
 *   key       = optattrs.partitionkey            (CloudEvents Partitioning extension)
 *             | optattrs.subject                 (when there is no partitionkey)
 *             | UTF-8(id) ‖ UTF-8(source)        (otherwise)
 *   partition = xxHash64(key, seed 0) mod partitionCount
 *
 * `partitionCount` is the Stream's partition count as announced by the Metadata stream (the
 * highest partition number + 1), never the number of live connections, so a key always maps to
 * the same partition while the Stream's size is unchanged, whatever is up or down.
 *
 * xxHash64 is XXH64 of https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md, chosen
 * because it is standard, fast, and available in every language a Hadron client may be written
 * in. It is computed here on pairs of unsigned 32-bit halves (no BigInt, no allocation), which
 * costs about as much as encoding the event. Test vectors are in docs/client.md and hash.test.ts.
 */

// The five 64-bit primes of XXH64, as [high 32 bits, low 32 bits].
const P1H = 0x9e3779b1, P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d, P2L = 0x27d4eb4f;
const P3H = 0x165667b1, P3L = 0x9e3779f9;
const P4H = 0x85ebca77, P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f, P5L = 0x165667c5;

// Result registers of the 64-bit helpers below. A typed array, not `let` variables: uint32
// values above 2^30 are not small integers in V8, so storing them in module variables would
// allocate a heap number on every write (this made the hash 10× slower).
const R = new Uint32Array(2);

/** (ah:al) * (bh:bl) mod 2^64 → R */
function mul(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  R[1] = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
  const hi = a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
  R[0] = (hi + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

/** (ah:al) + (bh:bl) mod 2^64 → R */
function add(ah: number, al: number, bh: number, bl: number): void {
  const lo = al + bl;
  R[1] = lo >>> 0;
  R[0] = (ah + bh + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

/** rotate-left of (h:l) by r (0 < r < 32) → R */
function rotl(h: number, l: number, r: number): void {
  R[0] = ((h << r) | (l >>> (32 - r))) >>> 0;
  R[1] = ((l << r) | (h >>> (32 - r))) >>> 0;
}

/** round(acc, lane) = rotl(acc + lane * P2, 31) * P1 → R */
function round(acch: number, accl: number, lh: number, ll: number): void {
  mul(lh, ll, P2H, P2L);
  add(acch, accl, R[0]!, R[1]!);
  rotl(R[0]!, R[1]!, 31);
  mul(R[0]!, R[1]!, P1H, P1L);
}

/** mergeRound(acc, v) = (acc ^ round(0, v)) * P1 + P4 → R */
function mergeRound(acch: number, accl: number, vh: number, vl: number): void {
  round(0, 0, vh, vl);
  mul((acch ^ R[0]!) >>> 0, (accl ^ R[1]!) >>> 0, P1H, P1L);
  add(R[0]!, R[1]!, P4H, P4L);
}

const u32 = (b: Uint8Array, i: number): number => (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;

/**
 * XXH64 of `input[start, end)` with seed 0, as [high, low] unsigned 32-bit halves. Use
 * `xxh64Hex` or `xxh64BigInt` for display; partition selection uses `partitionOfKey`.
 */
export function xxh64Pair(input: Uint8Array, start = 0, end = input.length): [number, number] {
  const len = end - start;
  let p = start;
  let hh: number;
  let hl: number;
  if (len >= 32) {
    // v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1 (seed 0)
    add(P1H, P1L, P2H, P2L);
    let v1h = R[0]!, v1l = R[1]!;
    let v2h = P2H, v2l = P2L;
    let v3h = 0, v3l = 0;
    add(~P1H >>> 0, ~P1L >>> 0, 0, 1);
    let v4h = R[0]!, v4l = R[1]!;
    const limit = end - 32;
    while (p <= limit) {
      round(v1h, v1l, u32(input, p + 4), u32(input, p));
      v1h = R[0]!; v1l = R[1]!;
      round(v2h, v2l, u32(input, p + 12), u32(input, p + 8));
      v2h = R[0]!; v2l = R[1]!;
      round(v3h, v3l, u32(input, p + 20), u32(input, p + 16));
      v3h = R[0]!; v3l = R[1]!;
      round(v4h, v4l, u32(input, p + 28), u32(input, p + 24));
      v4h = R[0]!; v4l = R[1]!;
      p += 32;
    }
    rotl(v1h, v1l, 1);
    hh = R[0]!; hl = R[1]!;
    rotl(v2h, v2l, 7);
    add(hh, hl, R[0]!, R[1]!);
    hh = R[0]!; hl = R[1]!;
    rotl(v3h, v3l, 12);
    add(hh, hl, R[0]!, R[1]!);
    hh = R[0]!; hl = R[1]!;
    rotl(v4h, v4l, 18);
    add(hh, hl, R[0]!, R[1]!);
    hh = R[0]!; hl = R[1]!;
    mergeRound(hh, hl, v1h, v1l);
    mergeRound(R[0]!, R[1]!, v2h, v2l);
    mergeRound(R[0]!, R[1]!, v3h, v3l);
    mergeRound(R[0]!, R[1]!, v4h, v4l);
    hh = R[0]!; hl = R[1]!;
  } else {
    hh = P5H;
    hl = P5L;
  }
  // h += len (len < 2^53, so split it into halves)
  add(hh, hl, Math.floor(len / 0x100000000) >>> 0, len >>> 0);
  hh = R[0]!; hl = R[1]!;
  while (p + 8 <= end) {
    round(0, 0, u32(input, p + 4), u32(input, p));
    rotl((hh ^ R[0]!) >>> 0, (hl ^ R[1]!) >>> 0, 27);
    mul(R[0]!, R[1]!, P1H, P1L);
    add(R[0]!, R[1]!, P4H, P4L);
    hh = R[0]!; hl = R[1]!;
    p += 8;
  }
  if (p + 4 <= end) {
    mul(0, u32(input, p), P1H, P1L);
    rotl((hh ^ R[0]!) >>> 0, (hl ^ R[1]!) >>> 0, 23);
    mul(R[0]!, R[1]!, P2H, P2L);
    add(R[0]!, R[1]!, P3H, P3L);
    hh = R[0]!; hl = R[1]!;
    p += 4;
  }
  while (p < end) {
    mul(0, input[p]!, P5H, P5L);
    rotl((hh ^ R[0]!) >>> 0, (hl ^ R[1]!) >>> 0, 11);
    mul(R[0]!, R[1]!, P1H, P1L);
    hh = R[0]!; hl = R[1]!;
    p++;
  }
  // avalanche
  hl = (hl ^ (hh >>> 1)) >>> 0; // h ^= h >>> 33
  mul(hh, hl, P2H, P2L);
  hh = R[0]!; hl = R[1]!;
  hl = (hl ^ ((hl >>> 29) | (hh << 3))) >>> 0; // h ^= h >>> 29
  hh = (hh ^ (hh >>> 29)) >>> 0;
  mul(hh, hl, P3H, P3L);
  hh = R[0]!; hl = R[1]!;
  hl = (hl ^ hh) >>> 0; // h ^= h >>> 32
  return [hh, hl];
}

/** XXH64 (seed 0) as a 16-digit lower-case hex string. */
export function xxh64Hex(input: Uint8Array | string): string {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const [h, l] = xxh64Pair(bytes);
  return h.toString(16).padStart(8, '0') + l.toString(16).padStart(8, '0');
}

/** XXH64 (seed 0) as a BigInt. */
export function xxh64BigInt(input: Uint8Array | string): bigint {
  return BigInt(`0x${xxh64Hex(input)}`);
}

/** (h·2^32 + l) mod n, exactly, for n < 2^21 (partition counts are far smaller). */
function mod64(h: number, l: number, n: number): number {
  // 2^32 mod n, then combine; every intermediate stays below 2^53.
  const r = ((h % n) * (0x100000000 % n)) % n;
  return (r + (l % n)) % n;
}

/** Partition for a key given as bytes. */
export function partitionOfKey(key: Uint8Array, partitionCount: number, start = 0, end = key.length): number {
  if (!(partitionCount >= 1)) throw new RangeError(`partition count must be ≥ 1, got ${partitionCount}`);
  const [h, l] = xxh64Pair(key, start, end);
  return mod64(h, l, partitionCount);
}

/** The attributes partition selection reads. */
export interface KeyedEvent {
  id: string;
  source: string;
  optattrs: Readonly<Record<string, string>>;
}

// Scratch buffer for keys: partition selection runs once per published event.
let scratch = Buffer.allocUnsafe(1024);

/**
 * The partition an event belongs to when the Stream has `partitionCount` partitions:
 * xxHash64 of its `partitionkey`, else its `subject`, else `id` ‖ `source`, modulo the count.
 */
export function partitionOf(ev: KeyedEvent, partitionCount: number): number {
  if (partitionCount === 1) return 0;
  const pk = ev.optattrs.partitionkey ?? ev.optattrs.subject;
  let len: number;
  if (pk !== undefined) {
    const need = pk.length * 3;
    if (need > scratch.length) scratch = Buffer.allocUnsafe(need);
    len = scratch.write(pk, 0, 'utf8');
  } else {
    const need = (ev.id.length + ev.source.length) * 3;
    if (need > scratch.length) scratch = Buffer.allocUnsafe(need);
    len = scratch.write(ev.id, 0, 'utf8');
    len += scratch.write(ev.source, len, 'utf8');
  }
  return partitionOfKey(scratch, partitionCount, 0, len);
}

/** The partition key bytes of an event (for display and tests). */
export function partitionKeyOf(ev: KeyedEvent): Buffer {
  const pk = ev.optattrs.partitionkey ?? ev.optattrs.subject;
  return pk !== undefined ? Buffer.from(pk, 'utf8') : Buffer.concat([Buffer.from(ev.id, 'utf8'), Buffer.from(ev.source, 'utf8')]);
}
