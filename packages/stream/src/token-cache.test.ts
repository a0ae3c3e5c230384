import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedTokenCache } from './token-cache.js';

test('the verified-token cache stays within its entry and byte bounds, evicting the oldest', () => {
  const c = new BoundedTokenCache<number>({ maxEntries: 100, maxBytes: 10_000 });
  for (let i = 0; i < 1000; i++) c.set(`k${i}`.padEnd(50, 'x'), i);
  assert.ok(c.stats.entries <= 100, `entries ${c.stats.entries}`);
  assert.equal(c.get('k999'.padEnd(50, 'x')), 999, 'the newest entry is kept');
  assert.equal(c.get('k0'.padEnd(50, 'x')), undefined, 'the oldest entries are evicted');
  for (let i = 0; i < 100; i++) c.set(`b${i}`.padEnd(1_000, 'y'), i);
  assert.ok(c.stats.bytes <= 10_000, `bytes ${c.stats.bytes}`);
  c.set('z'.repeat(20_000), 1);
  assert.equal(c.get('z'.repeat(20_000)), undefined, 'a key larger than the byte bound is not cached');
  c.clear();
  assert.deepEqual(c.stats, { entries: 0, bytes: 0 });
});
