import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocument, parsePipeline, parseStream, parseToken, validatePipelineUpdate } from './validate.js';
import type { Pipeline } from './types.js';

const pipelineDoc = (stages: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'hadron.rs/v1beta1',
  kind: 'Pipeline',
  metadata: { name: 'p1' },
  spec: { sourceStream: 'events', triggers: ['a.b'], maxParallel: 5, startPoint: { location: 'beginning' }, stages, ...extra },
});

test('the reference service-creation pipeline is valid', () => {
  const r = parsePipeline(
    pipelineDoc([
      { name: 'deploy-service' },
      { name: 'setup-billing', dependencies: ['deploy-service'] },
      { name: 'setup-monitoring', dependencies: ['deploy-service'] },
      { name: 'notify-user', dependencies: ['deploy-service'] },
      { name: 'cleanup', dependencies: ['deploy-service', 'setup-billing', 'setup-monitoring', 'notify-user'] },
    ]),
  );
  assert.ok(r.ok, JSON.stringify(r));
});

test('pipeline rules produce the original webhook messages', () => {
  const r = parsePipeline(
    pipelineDoc(
      [
        { name: 'a', dependencies: ['b'] },
        { name: 'b', dependencies: ['a'] },
        { name: 'my_stage', after: ['ghost'], dependencies: ['missing'] },
        { name: 'a' },
      ],
      { triggers: ['x', 'x'], maxParallel: 0 },
    ),
  );
  assert.equal(r.ok, false);
  const errors = (r as { errors: string[] }).errors;
  assert.deepEqual(errors, [
    "trigger 'x' of pipeline 'p1' is a duplicate and must be removed",
    "stage 'my_stage' of pipeline p1 must be a RFC 1123 label consisting of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
    "stage 'a' of pipeline p1 is defined more than once",
    "stage 'my_stage' depends upon stage 'missing' which does not exist in pipeline p1",
    "stage 'my_stage' must execute after stage 'ghost' which does not exist in pipeline p1",
    "stage 'a' of pipeline p1 creates a cycle and pipelines must be acyclic",
    "stage 'b' of pipeline p1 creates a cycle and pipelines must be acyclic",
    'max_parallel of pipeline p1 must be > 0',
  ]);
});

test('a self-loop is a cycle and a pipeline needs an entrypoint', () => {
  const r = parsePipeline(pipelineDoc([{ name: 'a', after: ['a'] }]));
  assert.deepEqual((r as { errors: string[] }).errors, [
    "stage 'a' of pipeline p1 creates a cycle and pipelines must be acyclic",
    'pipeline p1 has no entrypoint stage with no `dependencies` and no `after` stages',
  ]);
});

test('a cycle names exactly its stages: not those that only depend on it, and every stage of it', () => {
  const cycleOf = (stages: unknown): string[] =>
    ((parsePipeline(pipelineDoc(stages)) as { errors?: string[] }).errors ?? [])
      .map((e) => /^stage '([^']+)' of pipeline p1 creates a cycle/.exec(e)?.[1])
      .filter((x): x is string => x !== undefined);
  // 'late' depends on the cycle b ↔ c, 'start' leads into it: neither is on it.
  assert.deepEqual(
    cycleOf([{ name: 'start' }, { name: 'b', dependencies: ['start', 'c'] }, { name: 'c', after: ['b'] }, { name: 'late', dependencies: ['b', 'c'] }]),
    ['b', 'c'],
  );
  // d is on the cycle a → d → c → a as well as a → b → c → a (a depth-first back-edge walk
  // reaches c through b first and then missed d).
  assert.deepEqual(
    cycleOf([{ name: 'entry' }, { name: 'a', dependencies: ['b', 'd'] }, { name: 'b', dependencies: ['c'] }, { name: 'c', dependencies: ['a'], after: ['entry'] }, { name: 'd', dependencies: ['c'] }]),
    ['a', 'b', 'c', 'd'],
  );
  // Two separate cycles, and the stages between them that are on neither.
  assert.deepEqual(
    cycleOf([
      { name: 'entry' },
      { name: 'x', dependencies: ['entry', 'y'] },
      { name: 'y', dependencies: ['x'] },
      { name: 'between', dependencies: ['y'] },
      { name: 'p', dependencies: ['between', 'q'] },
      { name: 'q', after: ['p'] },
    ]),
    ['x', 'y', 'p', 'q'],
  );
});

test('stage names longer than 63 characters are rejected', () => {
  const long = 'a'.repeat(64);
  const r = parsePipeline(pipelineDoc([{ name: long }]));
  assert.deepEqual((r as { errors: string[] }).errors, [`stage name '${long}' of pipeline p1 may not exceed 63 characters`]);
});

test('removing stages needs the allow-destructive-update annotation', () => {
  const old = (parsePipeline(pipelineDoc([{ name: 'a' }, { name: 'b' }, { name: 'c' }])) as { value: Pipeline }).value;
  const next = (parsePipeline(pipelineDoc([{ name: 'a' }])) as { value: Pipeline }).value;
  assert.deepEqual(validatePipelineUpdate(old, next), [
    'pipeline p1 would incur data loss if stages ["b", "c"] are removed, set annotation hadron.rs/allow-destructive-update to allow this change',
  ]);
  next.metadata.annotations = { 'hadron.rs/allow-destructive-update': '' };
  assert.deepEqual(validatePipelineUpdate(old, next), []);
});

test('streams are validated and defaulted', () => {
  const ok = parseStream({ metadata: { name: 'events' }, spec: { partitions: 3, pvcVolumeSize: '5Gi' } });
  assert.ok(ok.ok);
  assert.deepEqual(ok.value.spec.retentionPolicy, { strategy: 'time', retentionSeconds: 604800 });
  const bad = parseStream({ metadata: { name: 'Events!' }, spec: { partitions: 0, pvcVolumeSize: 'lots', retentionPolicy: { strategy: 'forever' } } });
  assert.equal(bad.ok, false);
  const errs = (bad as { errors: string[] }).errors.join('\n');
  assert.match(errs, /metadata.name 'Events!' must be a RFC 1123 label/);
  assert.match(errs, /spec.partitions must be an integer ≥ 1, got 0/);
  assert.match(errs, /spec.retentionPolicy.strategy must be 'time' or 'retain', got "forever"/);
  assert.match(errs, /spec.pvcVolumeSize must be a quantity/);
});

test('spec.replicationFactor: default min(2, partitions), 1 ≤ r ≤ partitions', () => {
  const r = (spec: Record<string, unknown>): ReturnType<typeof parseStream> => parseStream({ metadata: { name: 'events' }, spec: { pvcVolumeSize: '1Gi', ...spec } });
  const factor = (spec: Record<string, unknown>): number | undefined => {
    const p = r(spec);
    return p.ok ? p.value.spec.replicationFactor : undefined;
  };
  assert.equal(factor({ partitions: 1 }), 1);
  assert.equal(factor({ partitions: 3 }), 2);
  assert.equal(factor({ partitions: 3, replicationFactor: 3 }), 3);
  assert.equal(factor({ partitions: 3, replicationFactor: 1 }), 1);
  const errs = (spec: Record<string, unknown>): string => {
    const p = r(spec);
    assert.equal(p.ok, false, JSON.stringify(spec));
    return (p as { errors: string[] }).errors.join('\n');
  };
  assert.match(errs({ partitions: 2, replicationFactor: 3 }), /spec.replicationFactor must be ≤ spec.partitions \(2\)/);
  assert.match(errs({ partitions: 2, replicationFactor: 0 }), /spec.replicationFactor must be an integer ≥ 1, got 0/);
  assert.match(errs({ partitions: 2, replicationFactor: 1.5 }), /spec.replicationFactor must be an integer ≥ 1, got 1.5/);
  assert.match(errs({ partitions: 2, replicationFactor: 'two' }), /spec.replicationFactor must be an integer ≥ 1, got "two"/);
});

test('tokens are validated', () => {
  assert.ok(parseToken({ metadata: { name: 't' }, spec: { streams: { pub: ['events'], sub: [] } } }).ok);
  const bad = parseToken({ metadata: { name: 't' }, spec: { all: 'yes', streams: { pub: 'events' } } });
  assert.deepEqual((bad as { errors: string[] }).errors, ['Token t: spec.all must be a boolean', 'Token t: spec.streams.pub must be a list of strings']);
});

test('documents of other kinds and unlabelled Secrets are ignored; unknown hadron kinds are errors', () => {
  assert.equal(parseDocument({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }), null);
  assert.equal(parseDocument({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' }, data: { hmac_key: 'AA==' } }), null);
  const r = parseDocument({ apiVersion: 'hadron.rs/v1beta1', kind: 'Streamm', metadata: { name: 'x' } });
  assert.deepEqual(r, { ok: false, errors: ['unknown kind "Streamm" for hadron.rs/v1beta1'] });
});
