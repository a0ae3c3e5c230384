import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocument, parseStream, parseTrigger } from './validate.js';

const doc = (spec: Record<string, unknown>): Record<string, unknown> => ({ apiVersion: 'hadron.rs/v1beta1', kind: 'Trigger', metadata: { name: 'orders' }, spec });

test('a Trigger gets its defaults and parses through parseDocument', () => {
  const r = parseDocument(doc({ sourceStream: 'events', sink: { uri: 'http://sink.example:8080/in' } }));
  assert.ok(r?.ok);
  assert.equal(r.value.kind, 'Trigger');
  const t = r.value.kind === 'Trigger' ? r.value.value : undefined;
  assert.deepEqual(t?.spec, {
    sourceStream: 'events',
    filter: { types: [] },
    sink: { uri: 'http://sink.example:8080/in', ref: null },
    startPoint: { location: 'latest', offset: null },
    parallelism: 1,
    timeoutMs: 10_000,
    retry: { maxAttempts: 5, backoffMs: 500, maxBackoffMs: 30_000 },
    deadLetter: null,
    reply: null,
  });
  const withReply = parseTrigger(doc({ sourceStream: 'events', sink: { uri: 'http://s/' }, reply: { stream: 'answers', token: 't-reply' } }));
  assert.ok(withReply.ok);
  assert.deepEqual(withReply.value.spec.reply, { stream: 'answers', token: 't-reply' });
  const ref = parseTrigger(doc({ sourceStream: 'events', sink: { ref: { name: 'billing' } } }));
  assert.ok(ref.ok);
  assert.deepEqual(ref.value.spec.sink, { uri: null, ref: { name: 'billing', port: 80, path: '/' } });
});

test('an invalid Trigger is refused with every problem named', () => {
  const r = parseTrigger(
    doc({
      sourceStream: '',
      filter: { types: ['a.>.b'] },
      sink: { uri: 'ftp://x', ref: { name: 'y' } },
      parallelism: 0,
      timeoutMs: 'soon',
      retry: { maxAttempts: -1 },
      deadLetter: { stream: 'Bad_Name' },
      reply: { stream: 'answers' },
      startPoint: { location: 'offset' },
    }),
  );
  assert.ok(!r.ok);
  const all = r.errors.join('\n');
  for (const m of [/spec.sourceStream/, /spec.filter.types pattern 'a.>.b'/, /spec.sink needs exactly one of uri and ref/, /spec.parallelism/, /spec.timeoutMs/, /spec.retry.maxAttempts/, /spec.deadLetter.stream/, /spec.deadLetter.token/, /spec.reply.token must be the name of a Token/, /spec.startPoint.offset/]) {
    assert.match(all, m);
  }
  const uri = parseTrigger(doc({ sourceStream: 'events', sink: { uri: 'ftp://x' } }));
  assert.ok(!uri.ok);
  assert.match(uri.errors.join(), /spec.sink.uri must be an absolute http:\/\/ or https:\/\/ URL/);
});

test('Stream.spec.deadLetter is validated: another Stream, maxAttempts ≥ 1, a Token', () => {
  const s = (deadLetter: unknown) => parseStream({ apiVersion: 'hadron.rs/v1beta1', kind: 'Stream', metadata: { name: 'events' }, spec: { partitions: 1, image: 'x', deadLetter } });
  const ok = s({ stream: 'dlq', maxAttempts: 3, token: 't-dl' });
  assert.ok(ok.ok);
  assert.deepEqual(ok.value.spec.deadLetter, { stream: 'dlq', maxAttempts: 3, token: 't-dl' });
  const bad = s({ stream: 'events', maxAttempts: 0 });
  assert.ok(!bad.ok);
  assert.match(bad.errors.join('\n'), /spec.deadLetter.stream must be another Stream/);
  assert.match(bad.errors.join('\n'), /spec.deadLetter.maxAttempts must be an integer ≥ 1/);
  assert.match(bad.errors.join('\n'), /spec.deadLetter.token/);
});
