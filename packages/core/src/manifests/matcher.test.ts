/**
 * Trigger matching per the documented rules. Cases from the original's tests (reference §10
 * case 23) are kept where the original was right and corrected where it was wrong (§11.12).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkTriggerPattern, matchesTrigger, matchesTriggers } from './matcher.js';

test('original acceptance cases that hold', () => {
  assert.equal(matchesTriggers([], ''), true);
  assert.equal(matchesTriggers([], 'domain.event.v1'), true);
  assert.equal(matchesTriggers(['domain.>'], 'domain.event'), true);
  assert.equal(matchesTriggers(['domain.>'], 'domain.event.v1'), true);
  assert.equal(matchesTriggers(['*'], 'domain'), true);
  assert.equal(matchesTriggers(['domain.*'], 'domain.event'), true);
  assert.equal(matchesTriggers(['domain.*.*'], 'domain.event.v1'), true);
  assert.equal(matchesTriggers(['*.event.*'], 'domain.event.v1'), true);
  assert.equal(matchesTriggers(['*.*.v1'], 'domain.event.v1'), true);
  assert.equal(matchesTriggers(['domain.event'], 'domain.event.v1'), false);
  assert.equal(matchesTriggers(['*'], 'domain.event'), false);
});

test("the original's prefix bugs are fixed", () => {
  // a type with fewer tokens than the pattern matched in the original
  assert.equal(matchesTrigger('a.b', 'a'), false);
  assert.equal(matchesTrigger('a.b.c', 'a.b'), false);
  // `>` needs one or more tokens
  assert.equal(matchesTrigger('a.>', 'a'), false);
  // `*` is exactly one (non-empty) token
  assert.equal(matchesTrigger('*', ''), false);
  assert.equal(matchesTrigger('a', ''), false);
  // `>` only at the end
  assert.equal(matchesTrigger('a.>.c', 'a.b.c'), false);
  assert.equal(matchesTrigger('foo>', 'foo.bar'), false);
});

test('empty pattern matches everything; any of several patterns may match', () => {
  assert.equal(matchesTrigger('', 'x.y'), true);
  assert.equal(matchesTriggers(['x.y', 'service.created'], 'service.created'), true);
  assert.equal(matchesTriggers(['x.y', 'service.created'], 'service.deleted'), false);
});

test('pattern syntax checks', () => {
  assert.equal(checkTriggerPattern('a.*.>'), null);
  assert.match(checkTriggerPattern('a.>.c') ?? '', /before the last token/);
  assert.match(checkTriggerPattern('a..b') ?? '', /empty token/);
  assert.match(checkTriggerPattern('foo*') ?? '', /mixes a wildcard/);
});
