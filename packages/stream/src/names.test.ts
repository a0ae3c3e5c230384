/**
 * Names that reach storage are bounded (issue 14 item 7): an over-long group name is a clear
 * INVALID_ARGUMENT every time, nothing of it is stored, and the meta log can always compact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GrpcStatusError, HadronError, MAX_GROUP_NAME_BYTES, Status } from '@hadron/core';
import { RawClient, startStream, testEvent } from '@hadron/testing';
import { MetaStore } from './storage/meta-store.js';

async function endStatus(sub: ReturnType<RawClient['subscribe']>): Promise<{ status: number; code: string; message: string } | undefined> {
  const err = await sub.ended();
  return err instanceof GrpcStatusError ? { status: err.grpcStatus, code: err.code, message: err.message } : undefined;
}

test('group names: over-long or control characters are INVALID_ARGUMENT on every try; the limit itself works', async () => {
  await using c = await startStream({ partitions: 1 });
  const cl = new RawClient(c.url(0), c.tokens.full);
  await cl.publish([testEvent(1)]);
  const huge = 'g'.repeat(70_000);
  for (let attempt = 0; attempt < 2; attempt++) {
    const st = await endStatus(cl.subscribe({ group: huge, durable: true, start: { beginning: true } }));
    assert.equal(st?.status, Status.INVALID_ARGUMENT, `attempt ${attempt}`);
    assert.match(st?.message ?? '', /group name is 70000 bytes long; at most 255 bytes/);
  }
  const over = 'é'.repeat(128); // 256 bytes
  assert.equal((await endStatus(cl.subscribe({ group: over, durable: true })))?.status, Status.INVALID_ARGUMENT);
  const ctl = await endStatus(cl.subscribe({ group: 'a\nb', durable: true }));
  assert.match(ctl?.message ?? '', /control characters/);
  // Exactly at the limit (multi-byte characters count as bytes) is accepted and delivers.
  const atLimit = 'é'.repeat(MAX_GROUP_NAME_BYTES >> 1) + 'x';
  assert.equal(Buffer.byteLength(atLimit), MAX_GROUP_NAME_BYTES);
  const sub = cl.subscribe({ group: atLimit, durable: true, start: { beginning: true } });
  assert.equal((await sub.next()).lastIncludedOffset, 1);
  sub.close();
  // The server is still up and healthy.
  assert.equal((await cl.publish([testEvent(2)])).offset, 2);
  await cl.close();
});

test('the meta log refuses an over-long key before applying it, so compaction never meets one', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-names-'));
  try {
    const meta = await MetaStore.open(dir);
    await assert.rejects(
      meta.commit([{ kind: 'put', key: `o/${'g'.repeat(70_000)}`, value: Buffer.alloc(8) }], { sync: true }),
      (e: unknown) => e instanceof HadronError && e.code === 'INVALID_ARGUMENT' && /meta key of 70002 bytes/.test(e.message),
    );
    assert.equal(meta.scan('o/').length, 0, 'nothing of the refused batch is visible');
    await meta.commit([{ kind: 'put', key: 'r/x', value: Buffer.alloc(1 << 20, 5) }], { sync: true });
    // Compaction rewrites every live key; it is what used to throw (a u16 key length) and exit.
    await (meta as unknown as { compact(): Promise<void> }).compact();
    await meta.close();
    const again = await MetaStore.open(dir);
    assert.equal(again.get('r/x')?.[0], 5);
    assert.equal(again.scan('o/').length, 0);
    await again.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
