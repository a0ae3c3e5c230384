/**
 * Integration: real `hadron-stream` processes on loopback, real storage in temp dirs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, readAll, startStream, streamManifest, testEvent } from '@hadron/testing';

test('publish → subscribe round trip; per-partition order holds under concurrent publishers', async () => {
  await using c = await startStream({ partitions: 1 });
  const cl = new RawClient(c.url(0), c.tokens.writer);
  const first = await cl.publish([testEvent(0, { optattrs: { subject: 'x' } })]);
  assert.deepEqual(first, { offset: 1, partition: 0 });
  // 8 publishers × 50 batches of 10, all in flight together
  const acks = await Promise.all(
    Array.from({ length: 8 }, (_, p) =>
      (async () => {
        const out: Array<{ last: number; ids: string[] }> = [];
        for (let b = 0; b < 50; b++) {
          const evs = Array.from({ length: 10 }, (_, i) => testEvent(0, { id: `p${p}-b${b}-${i}` }));
          const r = await cl.publish(evs, { fsync: b % 2 === 0 });
          out.push({ last: r.offset, ids: evs.map((e) => e.id) });
        }
        return out;
      })(),
    ),
  );
  const all = await readAll(cl, 4001);
  assert.deepEqual(
    all.map((e) => e.offset),
    Array.from({ length: 4001 }, (_, i) => i + 1),
    'offsets are dense from 1',
  );
  assert.equal(all[0]!.event.optattrs.subject, 'x');
  for (const perPublisher of acks) {
    let prev = 0;
    for (const { last, ids } of perPublisher) {
      assert.ok(last > prev, 'a publisher’s acks increase');
      prev = last;
      // each batch is contiguous and in order, ending at the acknowledged offset
      assert.deepEqual(
        all.slice(last - 10, last).map((e) => e.event.id),
        ids,
      );
    }
  }
  await cl.close();
  const results = await c.stop();
  assert.deepEqual(results.map((r) => r.code), [0], 'SIGTERM exits 0');
});

test('two members of one group share the work; no acked batch is delivered twice', async () => {
  await using c = await startStream({ partitions: 1 });
  const cl = new RawClient(c.url(0), c.tokens.full);
  for (let b = 0; b < 20; b++) await cl.publish(Array.from({ length: 10 }, (_, i) => testEvent(b * 10 + i)), { fsync: false });
  const a = cl.subscribe({ group: 'workers', maxBatchSize: 7, start: { beginning: true } });
  const b = cl.subscribe({ group: 'workers', maxBatchSize: 7, start: { beginning: true } });
  const seen = new Map<number, string>();
  const per = { a: 0, b: 0 };
  const consume = async (name: 'a' | 'b', s: typeof a): Promise<void> => {
    while (seen.size < 200) {
      const d = await s.next();
      const firstOffset = d.lastIncludedOffset - d.events.length + 1;
      d.events.forEach((_, i) => {
        assert.ok(!seen.has(firstOffset + i), `offset ${firstOffset + i} delivered twice after an ack`);
        seen.set(firstOffset + i, name);
      });
      per[name] += d.events.length;
      s.ack();
    }
  };
  await Promise.race([consume('a', a), consume('b', b)]);
  assert.equal(seen.size, 200);
  assert.ok(per.a > 0 && per.b > 0, `both members got work (a=${per.a}, b=${per.b})`);
  a.close();
  b.close();
  await cl.close();
});

test('a durable group resumes after a server restart; an ephemeral group is forgotten', async () => {
  await using c = await startStream({ partitions: 1 });
  const cl = new RawClient(c.url(0), c.tokens.full);
  await cl.publish(Array.from({ length: 30 }, (_, i) => testEvent(i)));
  const d = cl.subscribe({ group: 'durable', durable: true, maxBatchSize: 10, start: { beginning: true } });
  assert.equal((await d.next()).lastIncludedOffset, 10);
  d.ack();
  assert.equal((await d.next()).lastIncludedOffset, 20); // delivered, never acked
  const e = cl.subscribe({ group: 'eph', maxBatchSize: 10, start: { beginning: true } });
  assert.equal((await e.next()).lastIncludedOffset, 10);
  e.ack();
  assert.equal((await e.next()).lastIncludedOffset, 20);
  e.ack();
  await e.next();
  d.close();
  e.close();
  await cl.close();
  await c.restart(0);
  const cl2 = new RawClient(c.url(0), c.tokens.full);
  const d2 = cl2.subscribe({ group: 'durable', durable: true, maxBatchSize: 10, start: { latest: true } });
  const again = await d2.next();
  assert.equal(again.lastIncludedOffset - again.events.length + 1, 11, 'resumes after the last acked offset');
  assert.equal(again.events[0]!.id, 'id-10');
  const e2 = cl2.subscribe({ group: 'eph', maxBatchSize: 10, start: { beginning: true } });
  assert.equal((await e2.next()).lastIncludedOffset, 10, 'the ephemeral group starts over from its start point');
  d2.close();
  e2.close();
  await cl2.close();
});

test('nack backoff and ack deadline, with attempt counts on redeliveries', async () => {
  // The deadline leaves room for the nack to arrive on a loaded machine: with 400 ms, a slow nack
  // came after the deadline, so the batch was redelivered as a timeout and the nack discarded.
  await using c = await startStream({ partitions: 1, env: { HADRON_NACK_BACKOFF_BASE_MS: '150', HADRON_ACK_DEADLINE_MS: '2000' } });
  const cl = new RawClient(c.url(0), c.tokens.full);
  await cl.publish([testEvent(1), testEvent(2)]);
  const s = cl.subscribe({ group: 'g', maxBatchSize: 2, start: { beginning: true } });
  const t0 = Date.now();
  const d1 = await s.next();
  assert.equal(d1.attempt, 1);
  s.nack('handler failed');
  const d2 = await s.next();
  const waited = Date.now() - t0;
  assert.equal(d2.attempt, 2);
  assert.deepEqual(d2.events.map((e) => e.id), ['id-1', 'id-2']);
  assert.ok(waited >= 150, `redelivered after ${waited} ms (backoff 150 ms)`);
  // Now stay silent: after the deadline a second member gets the batch.
  const other = cl.subscribe({ group: 'g', maxBatchSize: 2 });
  const t1 = Date.now();
  const d3 = await other.next();
  assert.equal(d3.attempt, 3);
  // t1 is taken after d2 arrived, so at least the deadline minus that delivery's transit time.
  assert.ok(Date.now() - t1 >= 1000, 'handed over only after the ack deadline');
  other.ack();
  const metrics = await (await fetch(`${c.metricsUrl(0)}/metrics`)).text();
  assert.match(metrics, /hadron_stream_subscriber_ack_timeouts_total\{group="g".*\} 1/);
  assert.match(metrics, /hadron_stream_subscriber_nacks_total\{group="g".*\} 1/);
  s.close();
  other.close();
  await cl.close();
});

test('metadata announces template addresses and follows a live partition change', async () => {
  await using c = await startStream({ partitions: 2 });
  const cl = new RawClient(c.url(1), c.tokens.reader);
  const md = cl.metadataStream();
  assert.deepEqual(await md.next(), [
    { partition: 0, internal: `127.0.0.1:${c.clientBase}` },
    { partition: 1, internal: `127.0.0.1:${c.clientBase + 1}` },
  ]);
  c.writeManifest('stream.yaml', streamManifest('events', 3));
  const next = await md.next();
  assert.equal(next.length, 3);
  assert.equal(next[2]!.internal, `127.0.0.1:${c.clientBase + 2}`);
  md.call.cancel();
  await cl.close();
});

test('metrics, health and readiness endpoints', async () => {
  await using c = await startStream({ partitions: 1 });
  const cl = new RawClient(c.url(0), c.tokens.full);
  await cl.publish(Array.from({ length: 5 }, (_, i) => testEvent(i)));
  assert.equal((await fetch(`${c.metricsUrl(0)}/health`)).status, 200);
  assert.equal((await fetch(`${c.metricsUrl(0)}/ready`)).status, 200);
  const text = await (await fetch(`${c.metricsUrl(0)}/metrics`)).text();
  assert.match(text, /hadron_stream_current_offset\{namespace="default",stream="events",statefulset="events",pod="events-0",partition="0"\} 5/);
  assert.match(text, /hadron_stream_published_events_total\{[^}]*\} 5/);
  assert.match(text, /hadron_stream_publish_duration_seconds_bucket\{[^}]*fsync="true"/);
  assert.match(text, /hadron_stream_publish_batch_size_count\{[^}]*\} 1/);
  // a partition beyond the Stream's partition count is alive but not ready
  await c.startPartition(1);
  assert.equal((await fetch(`${c.metricsUrl(1)}/health`)).status, 200);
  const notReady = await fetch(`${c.metricsUrl(1)}/ready`);
  assert.equal(notReady.status, 503);
  assert.match(await notReady.text(), /partition 1 is beyond the Stream's 1 partitions/);
  await cl.close();
});

test('SIGTERM lets in-flight publishes finish; everything acknowledged is there after restart', async () => {
  await using c = await startStream({ partitions: 1 });
  const cl = new RawClient(c.url(0), c.tokens.full);
  const acked: number[] = [];
  const failures: unknown[] = [];
  let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; ; i++) {
        try {
          acked.push((await cl.publish([testEvent(i, { id: `w${w}-${i}` })], { fsync: true })).offset);
        } catch (err) {
          failures.push(err);
          return;
        }
        if (acked.length >= 100 && !exit) exit = c.kill(0, 'SIGTERM');
      }
    }),
  );
  assert.deepEqual(await exit, { code: 0, signal: null }, 'SIGTERM exits 0');
  // A publish the server had received was completed; later ones were refused cleanly.
  for (const f of failures) assert.equal((f as { code?: string }).code, 'UNAVAILABLE', String(f));
  await cl.close();
  await c.startPartition(0);
  const cl2 = new RawClient(c.url(0), c.tokens.full);
  const max = Math.max(...acked);
  const all = await readAll(cl2, max);
  assert.deepEqual(all.slice(0, max).map((e) => e.offset), Array.from({ length: max }, (_, i) => i + 1));
  await cl2.close();
});
