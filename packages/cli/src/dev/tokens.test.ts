import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { decodeJwtUnverified, parseTokenSecret, verifyJwt, type Token } from '@hadron/core';
import { syncTokens } from './tokens.js';

const token = (name: string): Token => ({ apiVersion: 'hadron.rs/v1beta1', kind: 'Token', metadata: { name }, spec: { all: true } });

test('dev tokens: Secrets as the operator makes them, reused across runs, removed with their Token', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-dev-tokens-'));
  try {
    const secrets = path.join(dir, 'secrets');
    const tokens = path.join(dir, 'tokens');
    const first = syncTokens(new Map([['a', token('a')], ['b', token('b')]]), secrets, tokens);
    assert.deepEqual(first.created, ['a', 'b']);
    const doc = parse(fs.readFileSync(path.join(secrets, 'a.yaml'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual((doc.metadata as { labels: object }).labels, { app: 'hadron', 'hadron.rs/component': 'hadron-stream', 'hadron.rs/controlled-by': 'hadron-operator' });
    const s = parseTokenSecret(doc);
    assert.ok(s?.ok);
    assert.equal(s.value.hmacKey.length, 128);
    const jwt = fs.readFileSync(path.join(tokens, 'a'), 'utf8');
    assert.equal(s.value.token, jwt);
    const decoded = decodeJwtUnverified(jwt);
    assert.deepEqual(Object.keys(decoded.claims).sort(), ['jti', 'sub']);
    assert.equal(verifyJwt(decoded, s.value.hmacKey).sub, 'a');
    assert.equal((fs.statSync(path.join(tokens, 'a')).mode & 0o777).toString(8), '600');

    const again = syncTokens(new Map([['a', token('a')]]), secrets, tokens);
    assert.deepEqual(again.created, []);
    assert.deepEqual(again.removed, ['b']);
    assert.equal(again.tokens.get('a'), jwt, 'an existing Secret is reused');
    assert.ok(!fs.existsSync(path.join(secrets, 'b.yaml')));
    assert.ok(!fs.existsSync(path.join(tokens, 'b')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
