/**
 * checkEventBytes must accept only what every decoder accepts (issue 14 item 4): each defect
 * found by the independent check, the CloudEvents rules, and a seeded mutation run asserting
 * that anything accepted decodes with the generated decoder (strict UTF-8) and ours.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromBinary } from '@bufbuild/protobuf';
import { EventSchema } from './gen/stream_pb.js';
import { MAX_ATTRIBUTE_NAME, checkEventBytes, isValidUtf8 } from './check-event.js';
import { decodeEvent, encodeEvent, scanPublishRequest, encodePublishRequest, WireFormatError, type WireEvent } from './wire.js';

const base: WireEvent = { id: 'a1', source: 'src', specversion: '1.0', type: 't.v1', optattrs: {}, data: Buffer.from('hi') };
const ok = encodeEvent(base);

/** `ok` plus one raw optattrs map entry whose inner bytes are given. */
const withEntry = (inner: number[]): Buffer => Buffer.concat([ok, Buffer.from([0x2a, inner.length, ...inner])]);
const str = (field: number, s: string | number[]): number[] => {
  const b = typeof s === 'string' ? [...Buffer.from(s)] : s;
  return [(field << 3) | 2, b.length, ...b];
};
const check = (b: Uint8Array, cloudEvents = true): string | null => checkEventBytes(b, 0, b.length, { cloudEvents });
const decodesEverywhere = (b: Buffer): boolean => {
  try {
    fromBinary(EventSchema, b);
    decodeEvent(b);
    return true;
  } catch {
    return false;
  }
};

test('valid events pass, including unknown fields at the top level and inside map entries', () => {
  const full = encodeEvent({ ...base, optattrs: { subject: 'ü', datacontenttype: 'text/plain', x1: '', ['a'.repeat(MAX_ATTRIBUTE_NAME)]: 'v' } });
  assert.equal(check(full), null);
  const unknownInEntry = withEntry([...str(1, 'subject'), ...str(2, 's'), 0x18, 0x05, 0x25, 1, 2, 3, 4, ...str(9, 'zz')]);
  assert.equal(check(unknownInEntry), null);
  assert.ok(decodesEverywhere(unknownInEntry));
  const unknownTop = Buffer.concat([ok, Buffer.from([0x38, 0x96, 0x01, 0x41, 1, 2, 3, 4, 5, 6, 7, 8, 0xfa, 0x01, 0x02, 0x68, 0x69])]);
  assert.equal(check(unknownTop), null);
  assert.ok(decodesEverywhere(unknownTop));
  // Multi-byte UTF-8 up to U+10FFFF.
  assert.equal(check(encodeEvent({ ...base, id: 'ü€😀\u{10FFFF}', optattrs: { subject: '日本' } })), null);
});

test('each malformed encoding the independent check found is refused, naming the problem', () => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['map entry key with wire type 0', withEntry([0x08, 0x01, ...str(2, 'v')]), /entry 0: field 1 has wire type 0/],
    ['map entry value with wire type 5', withEntry([...str(1, 'k'), 0x15, 1, 2, 3, 4]), /entry 0: field 2 has wire type 5/],
    ['field number 0 inside a map entry', withEntry([0x02, 0x00, ...str(1, 'k')]), /entry 0: field number 0/],
    ['truncated inner length', withEntry([0x0a, 0x09, 0x6b]), /entry 0: attribute name: length 9 runs past/],
    ['group wire type inside a map entry', withEntry([...str(1, 'k'), 0x1b, 0x1c]), /entry 0: field 3 uses a group wire type/],
    ['end-group wire type inside a map entry', withEntry([...str(1, 'k'), 0x1c]), /group wire type/],
    ['invalid UTF-8 in a map value', withEntry([...str(1, 'k'), ...str(2, [0xff])]), /attribute value is not valid UTF-8/],
    ['invalid UTF-8 in a map key', withEntry([...str(1, [0xc3]), ...str(2, 'v')]), /attribute name is not valid UTF-8/],
    ['invalid UTF-8 in id', Buffer.concat([ok, Buffer.from(str(1, [0x61, 0xed, 0xa0, 0x80]))]), /attribute id is not valid UTF-8/],
    ['group wire type at the top level', Buffer.concat([ok, Buffer.from([0x3b, 0x3c])]), /field 7 uses a group wire type/],
    ['wire type 7', Buffer.concat([ok, Buffer.from([0x3f])]), /invalid wire type 7/],
    ['field number 0 at the top level', Buffer.concat([ok, Buffer.from([0x00, 0x00])]), /field number 0/],
    ['truncated top-level length', Buffer.concat([ok, Buffer.from([0x32, 0x05, 0x01])]), /data: length 5 runs past/],
    ['data with wire type 0', Buffer.concat([ok, Buffer.from([0x30, 0x01])]), /field 6 has wire type 0/],
    ['varint longer than 10 bytes', Buffer.concat([ok, Buffer.from([0x38, ...Array<number>(10).fill(0xff), 0x01])]), /not a valid varint/],
    ['tag beyond 32 bits', Buffer.concat([ok, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f, 0x00])]), /tag is not a valid varint/],
  ];
  for (const [what, bytes, re] of cases) {
    const p = check(bytes, false);
    assert.notEqual(p, null, what);
    assert.match(p!, re, what);
    assert.equal(check(bytes), p, `${what} (with CloudEvents rules)`);
  }
  // The wire-level cases in the issue are exactly ones a decoder rejects.
  for (const i of [0, 1, 2, 3, 4, 6, 7, 8]) assert.equal(decodesEverywhere(cases[i]![1]), false, cases[i]![0]);
});

test('CloudEvents 1.0 rules: required attributes, specversion, attribute names', () => {
  const ce = (over: Partial<WireEvent>): string | null => check(encodeEvent({ ...base, ...over }));
  assert.match(ce({ id: '' }) ?? '', /required attribute id missing or empty/);
  assert.match(ce({ source: '', type: '' }) ?? '', /required attributes source, type missing/);
  assert.match(ce({ specversion: '0.3' }) ?? '', /specversion must be "1.0", not "0.3"/);
  assert.match(ce({ optattrs: { Subject: 'x' } }) ?? '', /attribute name "Subject" must consist of lower-case/);
  assert.match(ce({ optattrs: { my_ext: 'x' } }) ?? '', /"my_ext"/);
  assert.match(ce({ optattrs: { '': 'x' } }) ?? '', /attribute name is empty/);
  assert.match(ce({ optattrs: { ['a'.repeat(MAX_ATTRIBUTE_NAME + 1)]: 'x' } }) ?? '', /at most 64/);
  for (const r of ['id', 'source', 'specversion', 'type', 'data']) assert.match(ce({ optattrs: { [r]: 'x' } }) ?? '', /is reserved/, r);
  assert.match(ce({ optattrs: { subject: '' } }) ?? '', /"subject" must not be empty/);
  assert.equal(ce({ optattrs: { myext: '' } }), null, 'extension values may be empty strings');
  // The last occurrence of a repeated field is what decoders keep.
  const emptiedId = Buffer.concat([ok, Buffer.from([0x0a, 0x00])]);
  assert.match(check(emptiedId) ?? '', /required attribute id/);
  assert.equal(fromBinary(EventSchema, emptiedId).id, '');
  // Without the CloudEvents rules an empty Event is fine (pipeline stage outputs).
  assert.equal(check(new Uint8Array(0), false), null);
});

test('UTF-8 validation matches a fatal TextDecoder on every 1–3 byte sequence around the edges', () => {
  const td = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const edges = [0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff];
  const seqs: number[][] = [];
  for (const a of edges) {
    seqs.push([a]);
    for (const b of edges) {
      seqs.push([a, b]);
      for (const c of edges) seqs.push([a, b, c], [a, b, c, 0x80], [a, b, c, 0xbf]);
    }
  }
  for (const s of seqs) {
    const b = Buffer.from(s);
    let expected = true;
    try {
      td.decode(b);
    } catch {
      expected = false;
    }
    assert.equal(isValidUtf8(b, 0, b.length), expected, Buffer.from(s).toString('hex'));
  }
});

test('seeded mutations: whatever the check accepts, both decoders accept', () => {
  let seed = 0x1234567;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const seedEvent = encodeEvent({ ...base, optattrs: { subject: 'sü', partitionkey: 'k' } });
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    const b = Buffer.from(seedEvent);
    for (let k = 0, n = 1 + rnd(3); k < n; k++) b[rnd(b.length)] = rnd(4) === 0 ? rnd(256) : b[rnd(b.length)]! ^ (1 << rnd(8));
    const cut = rnd(5) === 0 ? b.subarray(0, rnd(b.length)) : b;
    if (check(cut, false) === null) {
      accepted++;
      assert.ok(decodesEverywhere(cut), `seed run ${i}: accepted ${cut.toString('hex')} but a decoder rejects it`);
    }
  }
  assert.ok(accepted > 100, `the mutation run exercised the accepting path (${accepted})`);
});

test('a publish batch with one bad event is refused whole, naming the event index', () => {
  const bad = withEntry([0x08, 0x01]);
  assert.throws(() => scanPublishRequest(encodePublishRequest([ok, ok, bad], false)), (e: unknown) => e instanceof WireFormatError && /event 2 of the batch is invalid: optattrs entry 0/.test(e.message));
});
