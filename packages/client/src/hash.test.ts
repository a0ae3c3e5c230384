import { test } from 'node:test';
import assert from 'node:assert/strict';
import { partitionKeyOf, partitionOf, partitionOfKey, xxh64BigInt, xxh64Hex } from './hash.js';

// A straightforward BigInt XXH64 (seed 0) straight from the spec, to cross-check the 32-bit one.
const M = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n, P2 = 0xc2b2ae3d27d4eb4fn, P3 = 0x165667b19e3779f9n, P4 = 0x85ebca77c2b2ae63n, P5 = 0x27d4eb2f165667c5n;
const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & M;
const round = (acc: bigint, lane: bigint): bigint => (rotl((acc + lane * P2) & M, 31n) * P1) & M;
const merge = (acc: bigint, v: bigint): bigint => (((acc ^ round(0n, v)) * P1) & M) + P4 & M;
function refXxh64(b: Uint8Array): bigint {
  const buf = Buffer.from(b);
  let p = 0;
  let h: bigint;
  if (buf.length >= 32) {
    let v1 = (P1 + P2) & M, v2 = P2, v3 = 0n, v4 = (M + 1n - P1) & M;
    for (; p + 32 <= buf.length; p += 32) {
      v1 = round(v1, buf.readBigUInt64LE(p));
      v2 = round(v2, buf.readBigUInt64LE(p + 8));
      v3 = round(v3, buf.readBigUInt64LE(p + 16));
      v4 = round(v4, buf.readBigUInt64LE(p + 24));
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & M;
    h = merge(merge(merge(merge(h, v1), v2), v3), v4);
  } else h = P5;
  h = (h + BigInt(buf.length)) & M;
  for (; p + 8 <= buf.length; p += 8) h = ((rotl(h ^ round(0n, buf.readBigUInt64LE(p)), 27n) * P1) & M) + P4 & M;
  if (p + 4 <= buf.length) {
    h = ((rotl(h ^ ((BigInt(buf.readUInt32LE(p)) * P1) & M), 23n) * P2) & M) + P3 & M;
    p += 4;
  }
  for (; p < buf.length; p++) h = (rotl(h ^ ((BigInt(buf[p]!) * P5) & M), 11n) * P1) & M;
  h ^= h >> 33n;
  h = (h * P2) & M;
  h ^= h >> 29n;
  h = (h * P3) & M;
  h ^= h >> 32n;
  return h;
}

test('xxh64 matches the official test vectors', () => {
  assert.equal(xxh64Hex(''), 'ef46db3751d8e999');
  assert.equal(xxh64Hex('a'), 'd24ec4f1a98c6e5b');
  assert.equal(xxh64Hex('abc'), '44bc2cf5ad770999');
  assert.equal(xxh64Hex('message digest'), '066ed728fceeb3be');
  assert.equal(xxh64Hex('abcdefghijklmnopqrstuvwxyz'), 'cfe1f278fa89835c');
  assert.equal(xxh64Hex('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'), 'aaa46907d3047814');
  assert.equal(xxh64Hex('12345678901234567890123456789012345678901234567890123456789012345678901234567890'), 'e04a477f19ee145d');
  assert.equal(xxh64BigInt('abc'), 0x44bc2cf5ad770999n);
});

test('xxh64 agrees with a BigInt reference for every length 0..300 and random bytes', () => {
  let seed = 12345;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed & 0xff;
  };
  for (let len = 0; len <= 300; len++) {
    const b = Uint8Array.from({ length: len }, rnd);
    assert.equal(xxh64BigInt(b), refXxh64(b), `length ${len}`);
  }
  const ones = new Uint8Array(100).fill(0xff);
  assert.equal(xxh64BigInt(ones), refXxh64(ones));
});

// The published partition test vectors: docs/client.md shows the same table. Any change to the
// algorithm breaks this test on purpose (clients in other languages depend on these numbers).
const PARTITION_VECTORS: Array<{ event: { id: string; source: string; optattrs: Record<string, string> }; key: string; hash: string; p3: number; p5: number }> = [
  { event: { id: '1', source: 'hadron-cli', optattrs: {} }, key: '1hadron-cli', hash: '756cd924ebcb2f04', p3: 1, p5: 2 },
  { event: { id: 'order-42', source: 'shop', optattrs: {} }, key: 'order-42shop', hash: '6bf565f60ba147c3', p3: 0, p5: 2 },
  { event: { id: 'x', source: 'y', optattrs: { subject: 'customer-7' } }, key: 'customer-7', hash: 'af814f0f339edeff', p3: 1, p5: 4 },
  { event: { id: 'x', source: 'y', optattrs: { subject: 'customer-7', partitionkey: 'tenant-a' } }, key: 'tenant-a', hash: '24cbcbec76c2694a', p3: 2, p5: 4 },
  { event: { id: 'x', source: 'y', optattrs: { partitionkey: 'tenant-b' } }, key: 'tenant-b', hash: 'd2320a2aacf4fb75', p3: 1, p5: 1 },
  { event: { id: 'événement', source: 'ünïcode', optattrs: {} }, key: 'événementünïcode', hash: '04e06036e3b5a107', p3: 0, p5: 4 },
];

test('partition selection: published vectors (docs/client.md)', () => {
  for (const v of PARTITION_VECTORS) {
    assert.equal(partitionKeyOf(v.event).toString('utf8'), v.key);
    assert.equal(xxh64Hex(v.key), v.hash);
    assert.equal(partitionOf(v.event, 3), v.p3, `${v.key} mod 3`);
    assert.equal(partitionOf(v.event, 5), v.p5, `${v.key} mod 5`);
    assert.equal(partitionOf(v.event, 1), 0);
    assert.equal(partitionOf(v.event, 1024), Number(BigInt(`0x${v.hash}`) % 1024n));
  }
});

test('partition selection: modulo is exact for any partition count', () => {
  for (const n of [2, 3, 7, 10, 1000, 1023]) {
    for (let i = 0; i < 200; i++) {
      const k = Buffer.from(`k${i}`);
      assert.equal(partitionOfKey(k, n), Number(refXxh64(k) % BigInt(n)));
    }
  }
  assert.throws(() => partitionOfKey(Buffer.from('a'), 0), RangeError);
});
