import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HadronError, newHmacKey, signJwt, type ControlPlaneView, type Token, type TokenSecret } from '@hadron/core';
import { Authenticator } from './auth.js';

function viewWith(name: string, key: Buffer): { view: ControlPlaneView; secret: TokenSecret } {
  const token: Token = { apiVersion: 'hadron.rs/v1beta1', kind: 'Token', metadata: { name }, spec: { all: true } };
  const secret: TokenSecret = { name, hmacKey: key, token: undefined };
  return { view: { streams: new Map(), pipelines: new Map(), tokens: new Map([[name, token]]), secrets: new Map([[name, secret]]) }, secret };
}

const unauthenticated = (re: RegExp) => (err: unknown): boolean => err instanceof HadronError && err.code === 'UNAUTHENTICATED' && re.test(err.message);

test('a cached token stops working when its exp passes (the cache holds claims, not a verdict)', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_800_000_000_000 });
  const key = newHmacKey();
  const { view } = viewWith('t1', key);
  const auth = new Authenticator(() => view);
  const header = `bearer ${signJwt({ jti: 'j', sub: 't1', exp: 1_800_000_010 }, key)}`;
  assert.equal(auth.authenticate(header).name, 't1'); // verified and cached
  assert.equal(auth.authenticate(header).name, 't1'); // served from the cache
  t.mock.timers.tick(20_000); // past exp + leeway
  assert.throws(() => auth.authenticate(header), unauthenticated(/ExpiredSignature/));
});

test('a cached token is refused before its nbf, and accepted from then on', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_800_000_000_000 });
  const key = newHmacKey();
  const { view } = viewWith('t1', key);
  const auth = new Authenticator(() => view);
  const header = `bearer ${signJwt({ jti: 'j', sub: 't1', nbf: 1_800_000_100 }, key)}`;
  assert.throws(() => auth.authenticate(header), unauthenticated(/ImmatureSignature/));
  t.mock.timers.tick(100_000);
  assert.equal(auth.authenticate(header).name, 't1');
});

test('a non-numeric exp is refused with a clear UNAUTHENTICATED', () => {
  const key = newHmacKey();
  const { view } = viewWith('t1', key);
  const auth = new Authenticator(() => view);
  const header = `bearer ${signJwt({ jti: 'j', sub: 't1', exp: 'tomorrow' } as never, key)}`;
  assert.throws(() => auth.authenticate(header), unauthenticated(/`exp` claim must be a number/));
});

test('revalidate() notices a deleted Token, a deleted or replaced Secret, and expiry', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_800_000_000_000 });
  const key = newHmacKey();
  let { view } = viewWith('t1', key);
  const auth = new Authenticator(() => view);
  const p = auth.authenticate(`bearer ${signJwt({ jti: 'j', sub: 't1', exp: 1_800_000_060 }, key)}`);
  auth.revalidate(p);
  // An equal Secret re-read from the manifests is not a revocation.
  view = viewWith('t1', Buffer.from(key)).view;
  auth.revalidate(p);
  view = { ...view, tokens: new Map() };
  assert.throws(() => auth.revalidate(p), unauthenticated(/Token was deleted/));
  view = viewWith('t1', newHmacKey()).view;
  assert.throws(() => auth.revalidate(p), unauthenticated(/Secret was deleted or replaced/));
  view = { ...viewWith('t1', key).view, secrets: new Map() };
  assert.throws(() => auth.revalidate(p), unauthenticated(/Secret was deleted or replaced/));
  view = viewWith('t1', key).view;
  auth.revalidate(p);
  t.mock.timers.tick(70_000);
  assert.throws(() => auth.revalidate(p), unauthenticated(/ExpiredSignature/));
});

test('the cache of verified headers: a hit is re-checked against the live view, so a revoked token is refused on the next call even without a reset', () => {
  const key = newHmacKey();
  let { view } = viewWith('t1', key);
  const auth = new Authenticator(() => view);
  const header = `bearer ${signJwt({ jti: 'j', sub: 't1' }, key)}`;
  assert.equal(auth.authenticate(header).name, 't1');
  assert.equal(auth.cache.stats.entries, 1, 'verified once, then cached by its header text');
  assert.equal(auth.authenticate(header).name, 't1'); // a hit
  // Token deleted (no reset(): the cache itself must notice).
  const full = view;
  view = { ...full, tokens: new Map() };
  assert.throws(() => auth.authenticate(header), unauthenticated(/token is unknown/));
  assert.equal(auth.cache.stats.entries, 0, 'the revoked entry is dropped');
  // Back, then its Secret replaced by another key: the cached verification no longer counts.
  view = full;
  auth.authenticate(header);
  view = viewWith('t1', newHmacKey()).view;
  assert.throws(() => auth.authenticate(header), unauthenticated(/InvalidSignature/));
  assert.equal(auth.cache.stats.entries, 0);
  // An equal Secret re-created by a manifest reload is not a revocation.
  view = viewWith('t1', Buffer.from(key)).view;
  assert.equal(auth.authenticate(header).name, 't1');
});

test('the cache of verified headers: an entry is dropped once its token expires, and only canonical headers are cached', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_800_000_000_000 });
  const key = newHmacKey();
  const { view } = viewWith('t1', key);
  const auth = new Authenticator(() => view);
  const jwt = signJwt({ jti: 'j', sub: 't1', exp: 1_800_000_010 }, key);
  auth.authenticate(`bearer ${jwt}`);
  auth.authenticate(`Bearer ${jwt}`);
  assert.equal(auth.cache.stats.entries, 2);
  assert.throws(() => auth.authenticate(`bearer ${jwt}=`), unauthenticated(/outside the base64url alphabet/));
  assert.throws(() => auth.authenticate(`bearer  ${jwt}`), unauthenticated(/outside the base64url alphabet|three dot-separated/));
  assert.equal(auth.cache.stats.entries, 2, 'refused spellings are never cached');
  t.mock.timers.tick(20_000);
  assert.throws(() => auth.authenticate(`bearer ${jwt}`), unauthenticated(/ExpiredSignature/));
  assert.equal(auth.cache.stats.entries, 1, 'the expired entry is dropped on use');
  assert.throws(() => auth.authenticate(`bearer ${jwt}`), unauthenticated(/ExpiredSignature/));
});
