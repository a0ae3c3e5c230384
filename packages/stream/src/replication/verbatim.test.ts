/**
 * Replication's verbatim Fetch (issue 9): a replica that asks `verbatim` gets the leader's stored
 * frames in `frames` and writes them unchanged, so its log files equal the leader's byte for byte
 * — caught up from sealed segments (disk reads) and from the tail cache alike. A frame damaged in
 * transit is refused naming its offset, with nothing of its batch stored. A rolling upgrade mixes
 * versions: a replica that does not ask gets `records` as before, and a leader that answers with
 * `records` (an older version, emulated by a forwarder that drops the request field) still
 * replicates to a new replica.
 *
 * Real leader, follower, stores on disk and gRPC over loopback; the forwarder stands between them
 * to see (and for the fault case, damage) the answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { GrpcServer, HadronError, silentLogger } from '@hadron/core';
import { METHOD, ReplicaFetchRequestSchema, ReplicaFetchResponseSchema, create, fromBinary, toBinary } from '@hadron/proto';
import { freePorts, until } from '@hadron/testing';
import { Registry } from 'prom-client';
import { FileStore } from '../storage/partition-store.js';
import { parseFrames } from '../storage/frames.js';
import { recordChecksum } from '../storage/layout.js';
import { ReplicationLeader } from './leader.js';
import { ReplicaFollower } from './follower.js';
import { ReplicationMetrics } from './metrics.js';
import { encodeFetchResponse } from './fetch-codec.js';

const STORE = { segmentBytes: 8 * 1024, flushIntervalMs: 600_000 };

/** Events of mixed sizes; the large ones share one ArrayBuffer, so the leader writes them in place. */
function events(from: number, n: number): Buffer[] {
  const big = Buffer.alloc(n * 400);
  return Array.from({ length: n }, (_, i) => {
    const o = from + i;
    if (o % 3 === 0) return Buffer.from(`small-${o}`);
    const p = big.subarray(i * 400, i * 400 + 300 + (o % 50));
    p.fill(o % 251);
    p.write(`big-${o}`);
    return p;
  });
}

/** All segment files of a store directory, concatenated in order: the log's stored bytes. */
function logBytes(dir: string): Buffer {
  const d = path.join(dir, 'log');
  return Buffer.concat(
    fs
      .readdirSync(d)
      .filter((f) => f.endsWith('.log'))
      .sort()
      .map((f) => fs.readFileSync(path.join(d, f))),
  );
}

interface Harness {
  tmp: string;
  leaderStore: FileStore;
  leader: ReplicationLeader;
  follower: ReplicaFollower;
  /** Answers the forwarder passed on, by shape. */
  seen: { frames: number; records: number };
  /** What the forwarder does to each Fetch. */
  mode: { stripVerbatim: boolean; corruptOffset: number };
  logs: string[];
  close(): Promise<void>;
}

async function harness(initial: number, mode: Harness['mode']): Promise<Harness> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-verbatim-'));
  // A small tail cache: early records are served from sealed segments, late ones from memory.
  const leaderStore = await FileStore.open(path.join(tmp, 'leader'), { ...STORE, logger: silentLogger, tailCacheBytes: 16 * 1024 });
  for (let o = 1; o <= initial; o += 50) await leaderStore.append(events(o, 50), { fsync: true });
  const metrics = new ReplicationMetrics(new Registry());
  const leader = new ReplicationLeader({ store: leaderStore, partition: 0, podName: (n) => `events-${n}`, timeoutMs: 5000, logger: silentLogger, metrics });
  leader.setReplicas([1]);
  leader.serve();
  const seen = { frames: 0, records: 0 };
  const [port] = await freePorts(1);
  const server = new GrpcServer({
    logger: silentLogger,
    maxMessageBytes: 64 * 1024 * 1024,
    methods: {
      [METHOD.replicaFetch]: {
        kind: 'unary',
        handler: async (buf, ctx) => {
          const req = fromBinary(ReplicaFetchRequestSchema, buf);
          if (mode.stripVerbatim) req.verbatim = false;
          const res = await leader.fetch(req, ctx.signal);
          if (res.frames.length) seen.frames++;
          if (res.records.length) seen.records++;
          if (res.frames.length && mode.corruptOffset) {
            // Flip one payload byte of the frame of that offset, as a faulty path would.
            const frames = Buffer.from(res.frames);
            const f = parseFrames(frames, 'test');
            const i = mode.corruptOffset - f.first;
            if (i >= 0 && i < f.payloads.length) {
              const p = f.payloads[i]!;
              const at = p.byteOffset - frames.byteOffset + p.length - 1;
              frames.writeUInt8(frames.readUInt8(at) ^ 0xff, at);
              res.frames = frames;
            }
          }
          return encodeFetchResponse(res);
        },
      },
    },
  });
  await server.listen(port!, '127.0.0.1');
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const follower = new ReplicaFollower({
    leader: 0,
    self: 1,
    dir: path.join(tmp, 'replica'),
    leaderUrl: `http://127.0.0.1:${port}`,
    key: 'k',
    logger: pino({ level: 'warn' }, sink),
    store: STORE,
    metrics,
    pollMs: 200,
    // Small fetches: many answers, each ending inside the log.
    maxBytes: 4000,
    fetchTimeoutMs: 5000,
    maxMessageBytes: 64 * 1024 * 1024,
  });
  await follower.start();
  return {
    tmp,
    leaderStore,
    leader,
    follower,
    seen,
    mode,
    logs,
    close: async () => {
      await follower.stop();
      leader.close();
      await server.close();
      await leaderStore.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

const copiedTo = (h: Harness, offset: number): Promise<void> =>
  until(async () => Number((await h.follower.state()).lastOffset) >= offset, 20_000, `the replica to copy up to offset ${offset}`);

test('a new replica copies the leader verbatim: answers carry frames, and its log files equal the leader\'s byte for byte', async () => {
  const h = await harness(600, { stripVerbatim: false, corruptOffset: 0 });
  try {
    await copiedTo(h, 600);
    // More while it follows the tail (served from the tail cache).
    for (let o = 601; o <= 900; o += 50) await h.leaderStore.append(events(o, 50), { fsync: true });
    await copiedTo(h, 900);
    assert.ok(h.seen.frames > 5, `answers with frames: ${h.seen.frames}`);
    assert.equal(h.seen.records, 0, 'no answer used the per-record shape');
    const state = await h.follower.state();
    await h.follower.stop();
    assert.equal(Number(state.lastOffset), 900);
    assert.equal(state.lastChecksum, (await h.leaderStore.readFrames(900, { maxEvents: 1 }))!.lastChecksum);
    await h.leaderStore.flush();
    const a = logBytes(path.join(h.tmp, 'leader'));
    const b = logBytes(path.join(h.tmp, 'replica'));
    assert.ok(a.length > 100_000, `leader log of ${a.length} bytes`);
    assert.ok(a.equals(b), `replica log (${b.length} bytes) equals the leader's (${a.length} bytes)`);
  } finally {
    await h.close();
  }
});

test('a frame damaged in transit is refused by the replica naming its offset; nothing of it is stored; copying resumes once the path is clean', async () => {
  const h = await harness(300, { stripVerbatim: false, corruptOffset: 150 });
  try {
    await until(() => h.logs.some((l) => l.includes('stored record 150 ')), 20_000, 'the replica to refuse offset 150');
    const line = h.logs.find((l) => l.includes('stored record 150 '))!;
    assert.match(line, /from the leader of partition 0 failed its check \(checksum mismatch\); nothing of this batch was stored/);
    const held = Number((await h.follower.state()).lastOffset);
    assert.ok(held < 150, `the replica holds up to ${held}, not the damaged record`);
    h.mode.corruptOffset = 0;
    await copiedTo(h, 300);
    await h.follower.stop();
    assert.ok(logBytes(path.join(h.tmp, 'leader')).equals(logBytes(path.join(h.tmp, 'replica'))), 'the copy equals the leader after the retry');
  } finally {
    await h.close();
  }
});

test('rolling upgrade: a leader answering with records (no frames) still replicates to a new replica, byte for byte', async () => {
  const h = await harness(400, { stripVerbatim: true, corruptOffset: 0 });
  try {
    await copiedTo(h, 400);
    assert.equal(h.seen.frames, 0);
    assert.ok(h.seen.records > 3, `answers with records: ${h.seen.records}`);
    await h.follower.stop();
    assert.ok(logBytes(path.join(h.tmp, 'leader')).equals(logBytes(path.join(h.tmp, 'replica'))));
  } finally {
    await h.close();
  }
});

test('rolling upgrade: a replica that does not ask verbatim gets the per-record shape; one that asks gets the stored frames', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-verbatim-'));
  const store = await FileStore.open(path.join(tmp, 'leader'), { ...STORE, logger: silentLogger, tailCacheBytes: 16 * 1024 });
  const leader = new ReplicationLeader({ store, partition: 0, podName: (n) => `events-${n}`, timeoutMs: 5000, logger: silentLogger, metrics: new ReplicationMetrics(new Registry()) });
  try {
    for (let o = 1; o <= 200; o += 50) await store.append(events(o, 50), { fsync: true });
    leader.setReplicas([1]);
    leader.serve();
    const signal = new AbortController().signal;
    const ask = async (verbatim: boolean, after: number) => {
      const afterChecksum = after ? (await store.readFrames(after, { maxEvents: 1 }))!.lastChecksum : 0;
      const res = await leader.fetch(create(ReplicaFetchRequestSchema, { partition: 0, replica: 1, afterOffset: BigInt(after), afterChecksum, maxBytes: 1 << 20, verbatim }), signal);
      assert.equal(res.diverged, false);
      return res;
    };
    for (const after of [0, 190]) {
      const old = await ask(false, after);
      assert.equal(old.frames.length, 0);
      // One read stops at a segment's end (50 records each here).
      const stored = await store.readFrom(after + 1, { maxEvents: 1000, maxBytes: 1 << 20 });
      assert.equal(old.records.length, stored.length);
      assert.ok(stored.length > 0 && stored[0]!.offset === after + 1);
      old.records.forEach((r, i) => {
        assert.equal(Number(r.offset), stored[i]!.offset);
        assert.ok(Buffer.from(r.payload).equals(stored[i]!.payload));
        assert.equal(r.checksum, recordChecksum(stored[i]!.offset, stored[i]!.timestamp, stored[i]!.payload));
      });
      const neu = await ask(true, after);
      assert.equal(neu.records.length, 0);
      const f = parseFrames(Buffer.from(neu.frames), 'test');
      assert.equal(f.first, after + 1);
      assert.equal(f.last, stored[stored.length - 1]!.offset);
      assert.deepEqual(f.crcs, old.records.map((r) => r.checksum));
    }
    // The whole answer from offset 1 (disk) is the leader's log file bytes.
    await store.flush();
    const all = await ask(true, 0);
    assert.ok(Buffer.from(all.frames).equals(logBytes(path.join(tmp, 'leader')).subarray(0, all.frames.length)));
  } finally {
    leader.close();
    await store.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('appendReplicatedFrames refuses a damaged or cut frame naming its offset and writes nothing; good frames land byte for byte', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-verbatim-'));
  const src = await FileStore.open(path.join(tmp, 'src'), { ...STORE, logger: silentLogger });
  const dst = await FileStore.open(path.join(tmp, 'dst'), { ...STORE, logger: silentLogger });
  try {
    await src.append(events(1, 40), { fsync: true });
    const good = (await src.readFrames(1, { maxEvents: 100 }))!;
    assert.equal(good.last, 40);
    const f = parseFrames(good.frames, 'test');
    const damaged = Buffer.from(good.frames);
    const at = f.payloads[17]!.byteOffset - good.frames.byteOffset;
    damaged.writeUInt8(damaged.readUInt8(at) ^ 1, at);
    const refused = (buf: Buffer, re: RegExp) =>
      assert.rejects(dst.appendReplicatedFrames(buf, { fsync: true, source: 'the leader of partition 0' }), (e: unknown) => e instanceof HadronError && e.code === 'DATA_CORRUPTION' && re.test(e.message));
    await refused(damaged, /^stored record 18 \(frame 18, byte \d+\) from the leader of partition 0 failed its check \(checksum mismatch\)/);
    await refused(good.frames.subarray(0, good.frames.length - 5), /^stored record 40 .* is cut short/);
    assert.equal(dst.lastOffset, 0, 'nothing written');
    const r = await dst.appendReplicatedFrames(good.frames, { fsync: true, source: 'the leader of partition 0' });
    assert.deepEqual(r, { first: 1, last: 40, lastChecksum: good.lastChecksum });
    // Frames that do not continue the log are refused like records that do not.
    await assert.rejects(dst.appendReplicatedFrames(good.frames, { fsync: true, source: 'x' }), (e: unknown) => e instanceof HadronError && e.code === 'INVALID_ARGUMENT');
    assert.ok((await dst.readFrames(1, { maxEvents: 100 }))!.frames.equals(good.frames), 'read back from the tail');
    await dst.flush();
    assert.ok(logBytes(path.join(tmp, 'dst')).equals(logBytes(path.join(tmp, 'src'))));
  } finally {
    await src.close();
    await dst.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
