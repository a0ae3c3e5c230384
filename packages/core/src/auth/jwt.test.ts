import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { JwtError, decodeJwtUnverified, mintToken, newHmacKey, signJwt, verifyJwt } from './jwt.js';

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
