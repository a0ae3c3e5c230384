import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_AUTHORIZATION_BYTES, canonicalBearer } from './token-format.js';
import { mintToken } from './jwt.js';

test('only the canonical spelling of a token is accepted', () => {
  const { token } = mintToken('t');
  assert.deepEqual(canonicalBearer(`bearer ${token}`), { jwt: token });
  assert.deepEqual(canonicalBearer(`Bearer ${token}`), { jwt: token });
  const [h, p, s] = token.split('.') as [string, string, string];
  // Each of these decodes (leniently) to the same bytes as `token`, so all would verify.
  const variants = [
    `bearer  ${token}`, // two spaces
    `bearer ${h}.${p}.${s}==`, // padding
    `bearer ${h}.${p}.${s.slice(0, 10)} ${s.slice(10)}`, // inner space
    `bearer ${h}.${p}.${s.slice(0, 10)}*${s.slice(10)}`, // non-alphabet character
    `bearer ${h}.${p}.${s}${'!'.repeat(50_000)}`, // long junk
    `bearer ${h}+.${p}.${s}`, // base64 (not url) alphabet
  ];
  for (const v of variants) assert.ok(canonicalBearer(v).problem, `accepted a non-canonical spelling: ${v.slice(0, 120)}`);
  // Non-zero unused trailing bits: HS512 signatures are 64 bytes = 86 chars, 2 unused bits.
  const last = s[s.length - 1]!;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const twin = alphabet[alphabet.indexOf(last) ^ 1]!;
  assert.deepEqual(Buffer.from(s.slice(0, -1) + twin, 'base64url'), Buffer.from(s, 'base64url'));
  assert.match(canonicalBearer(`bearer ${h}.${p}.${s.slice(0, -1)}${twin}`).problem ?? '', /not canonical/);
});

test('malformed and oversized authorization values name their problem', () => {
  assert.match(canonicalBearer('basic abc').problem ?? '', /must begin with 'bearer '/);
  assert.match(canonicalBearer('bearer').problem ?? '', /no token/);
  assert.match(canonicalBearer('bearer a.b').problem ?? '', /three dot-separated parts/);
  assert.match(canonicalBearer(`bearer ${'a'.repeat(MAX_AUTHORIZATION_BYTES)}`).problem ?? '', /exceeds the limit of 8192 bytes/);
});
