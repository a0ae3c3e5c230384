import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MetaOp } from '../storage/layout.js';
import { MetaJournal, type MetaDelivery } from './meta-journal.js';

/** The journal's contract, written plainly: the last `max` changes, each with its log position. */
function expected(all: { seq: number; ops: MetaOp[]; logAt: number }[], max: number, latest: number, seq: number, logEnd: number, durable: number): MetaDelivery | 'snapshot' | 'none-snapshot' {
  const kept = all.slice(-max);
  const oldest = kept[0]?.seq ?? latest + 1;
  if (seq < oldest - 1 || seq > latest) return logEnd < durable ? 'none-snapshot' : 'snapshot';
  const ops: MetaOp[] = [];
  let at = seq;
  for (const e of kept) {
    if (e.seq <= seq) continue;
    if (e.logAt > logEnd) break;
    ops.push(...e.ops);
    at = e.seq;
  }
  return ops.length ? { kind: 'ops', ops, seq: at } : { kind: 'none', seq };
}

test('MetaJournal: a bounded journal of the last changes, delivered in order from any position it still holds, a snapshot otherwise', () => {
  for (const max of [1, 7, 100]) {
    let lastOffset = 0;
    const durable = (): number => Math.max(0, lastOffset - 2);
    const j = new MetaJournal({ maxEntries: max, snapshot: () => [['k', Buffer.from('v')]], lastOffset: () => lastOffset, durableOffset: durable });
    const all: { seq: number; ops: MetaOp[]; logAt: number }[] = [];
    // 3,000 changes: the journal drops its oldest many times over (and compacts its array).
    for (let n = 1; n <= 3000; n++) {
      if (n % 3 === 0) lastOffset++;
      const ops: MetaOp[] = n % 5 === 0 ? [{ kind: 'del', key: `g${n % 11}` }] : [{ kind: 'put', key: `g${n % 11}`, value: Buffer.from(String(n)) }, { kind: 'put', key: 'x', value: Buffer.from('y') }];
      j.add(ops);
      all.push({ seq: n, ops, logAt: lastOffset });
      assert.equal(j.size, Math.min(n, max));
      assert.equal(j.latest, n);
      if (n % 97 !== 0 && n !== 3000) continue;
      for (const seq of [0, n - max - 1, n - max, n - Math.floor(max / 2), n - 1, n, n + 1]) {
        for (const logEnd of [0, lastOffset - 1, lastOffset]) {
          if (seq < 0) continue;
          const got = j.next(j.epoch, seq, logEnd);
          const want = expected(all, max, n, seq, logEnd, durable());
          if (want === 'snapshot') assert.deepEqual(got, { kind: 'snapshot', entries: [['k', Buffer.from('v')]], seq: n }, `max ${max}, n ${n}, seq ${seq}`);
          else if (want === 'none-snapshot') assert.deepEqual(got, { kind: 'none', seq });
          else assert.deepEqual(got, want, `max ${max}, n ${n}, seq ${seq}, logEnd ${logEnd}`);
        }
      }
    }
    // Another leader's epoch always gets a snapshot.
    assert.equal(j.next('another-epoch', 3000, lastOffset).kind, 'snapshot');
  }
});
