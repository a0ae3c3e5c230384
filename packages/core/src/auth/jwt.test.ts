import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { JWT_CLOCK_SKEW_SECONDS, JwtError, checkTimeClaims, decodeJwtUnverified, expiryMs, mintToken, newHmacKey, signJwt, verifyJwt } from './jwt.js';

test('minted tokens are HS512 JWTs with exactly {jti, sub}', () => {
  const { token, key, jti } = mintToken('hadron-full-access');
  assert.equal(key.length, 128);
  const [h, p, s] = token.split('.');
  assert.deepEqual(JSON.parse(Buffer.from(h!, 'base64url').toString()), { typ: 'JWT', alg: 'HS512' });
  assert.deepEqual(JSON.parse(Buffer.from(p!, 'base64url').toString()), { jti, sub: 'hadron-full-access' });
  assert.equal(s, createHmac('sha512', key).update(`${h}.${p}`).digest('base64url'));
  assert.deepEqual(verifyJwt(decodeJwtUnverified(token), key), { jti, sub: 'hadron-full-access' });
});

test('a wrong key, a tampered payload, alg none and expired tokens are rejected', () => {
  const { token, key } = mintToken('t');
  assert.throws(() => verifyJwt(decodeJwtUnverified(token), newHmacKey()), /InvalidSignature/);
  const [h, , s] = token.split('.');
  const forged = `${h}.${Buffer.from(JSON.stringify({ jti: 'x', sub: 'admin' })).toString('base64url')}.${s}`;
  assert.throws(() => verifyJwt(decodeJwtUnverified(forged), key), /InvalidSignature/);
  const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"t"}').toString('base64url')}.`;
  assert.throws(() => decodeJwtUnverified(none), /InvalidAlgorithm/);
  assert.throws(() => decodeJwtUnverified('not-a-jwt'), JwtError);
  const expired = signJwt({ jti: 'j', sub: 't', exp: 1000 }, key);
  assert.throws(() => verifyJwt(decodeJwtUnverified(expired), key), /ExpiredSignature/);
});

test('exp and nbf must be numbers: a string, null or object time claim is refused, not ignored', () => {
  const key = newHmacKey();
  for (const bad of ['9999999999', null, { at: 1 }, true]) {
    for (const claim of ['exp', 'nbf']) {
      const t = signJwt({ jti: 'j', sub: 't', [claim]: bad } as never, key);
      assert.throws(() => decodeJwtUnverified(t), new RegExp(`InvalidToken: the \`${claim}\` claim must be a number`));
    }
  }
});

test('exp/nbf are honoured with a small documented leeway', () => {
  const key = newHmacKey();
  const now = 1_800_000_000;
  const exp = signJwt({ jti: 'j', sub: 't', exp: now }, key);
  // Within the leeway after exp: still accepted; at exp + leeway: refused.
  verifyJwt(decodeJwtUnverified(exp), key, now + JWT_CLOCK_SKEW_SECONDS - 0.001);
  assert.throws(() => verifyJwt(decodeJwtUnverified(exp), key, now + JWT_CLOCK_SKEW_SECONDS), /ExpiredSignature: the token expired at 2027-01-15T08:00:00.000Z/);
  const nbf = signJwt({ jti: 'j', sub: 't', nbf: now }, key);
  assert.throws(() => verifyJwt(decodeJwtUnverified(nbf), key, now - JWT_CLOCK_SKEW_SECONDS - 1), /ImmatureSignature/);
  verifyJwt(decodeJwtUnverified(nbf), key, now - JWT_CLOCK_SKEW_SECONDS);
  assert.throws(() => checkTimeClaims({ exp: now }, now + 60), /ExpiredSignature/);
  assert.equal(expiryMs({ exp: now }), (now + JWT_CLOCK_SKEW_SECONDS) * 1000);
  assert.equal(expiryMs({}), undefined);
});
