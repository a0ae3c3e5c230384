import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { LocalManifests, type ControlPlaneView } from './control-plane.js';
import { silentLogger } from './logger.js';

const stream = (partitions: unknown) => `apiVersion: hadron.rs/v1beta1
kind: Stream
metadata: {name: events}
spec: {partitions: ${partitions}, pvcVolumeSize: 1Gi}
`;
const pipeline = (stages: string) => `apiVersion: hadron.rs/v1beta1
kind: Pipeline
metadata: {name: p}
spec: {sourceStream: events, maxParallel: 2, startPoint: {location: beginning}, stages: ${stages}}
`;

function setup(): { dir: string; cp: LocalManifests; write: (f: string, s: string) => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-cp-'));
  const cp = new LocalManifests({ paths: [dir], namespace: 'default', logger: silentLogger, pollMs: 50 });
  const write = (f: string, s: string): void => {
    fs.writeFileSync(path.join(dir, `${f}.tmp`), s);
    fs.renameSync(path.join(dir, `${f}.tmp`), path.join(dir, f));
  };
  return { dir, cp, write };
}

test('loads streams, pipelines, tokens and labelled secrets; ignores other namespaces', async () => {
  const { dir, cp, write } = setup();
  write('a.yaml', `${stream(3)}---\n${pipeline('[{name: a}]')}---
apiVersion: hadron.rs/v1beta1
kind: Token
metadata: {name: t}
spec: {all: true}
---
apiVersion: v1
kind: Secret
metadata: {name: t, labels: {app: hadron, hadron.rs/controlled-by: hadron-operator}}
data: {hmac_key: ${Buffer.from('k').toString('base64')}}
---
apiVersion: hadron.rs/v1beta1
kind: Token
metadata: {name: other, namespace: elsewhere}
spec: {all: true}
`);
  await cp.start();
  const v = cp.view();
  assert.equal(v.streams.get('events')?.spec.partitions, 3);
  assert.deepEqual([...v.pipelines.keys()], ['p']);
  assert.deepEqual([...v.tokens.keys()], ['t']);
  assert.equal(v.secrets.get('t')?.hmacKey.toString(), 'k');
  await cp.close();
  fs.rmSync(dir, { recursive: true });
});

test('changes take effect live and an invalid edit keeps the last valid version', async () => {
  const { dir, cp, write } = setup();
  write('s.yaml', stream(3));
  await cp.start();
  let changed = once(cp, 'change') as Promise<[ControlPlaneView]>;
  write('s.yaml', stream(5));
  assert.equal((await changed)[0].streams.get('events')?.spec.partitions, 5);

  write('s.yaml', stream(0));
  await cp.reload();
  assert.equal(cp.view().streams.get('events')?.spec.partitions, 5, 'invalid partitions keep the previous version');
  assert.match(cp.lastErrors.join('\n'), /spec.partitions must be an integer ≥ 1, got 0; keeping the previous valid version/);

  write('s.yaml', 'kind: [unclosed');
  await cp.reload();
  assert.equal(cp.view().streams.get('events')?.spec.partitions, 5, 'a YAML error keeps the file’s objects');
  assert.match(cp.lastErrors.join('\n'), /YAML error/);

  changed = once(cp, 'change') as Promise<[ControlPlaneView]>;
  fs.rmSync(path.join(dir, 's.yaml'));
  assert.equal((await changed)[0].streams.size, 0, 'removing the file removes the stream');
  await cp.close();
  fs.rmSync(dir, { recursive: true });
});

test('a pipeline update that drops stages without the annotation is rejected', async () => {
  const { dir, cp, write } = setup();
  write('p.yaml', `${stream(1)}---\n${pipeline('[{name: a}, {name: b, dependencies: [a]}]')}`);
  await cp.start();
  write('p.yaml', `${stream(1)}---\n${pipeline('[{name: a}]')}`);
  await cp.reload();
  assert.equal(cp.view().pipelines.get('p')?.spec.stages.length, 2);
  assert.match(cp.lastErrors.join('\n'), /would incur data loss if stages \["b"\] are removed/);
  await cp.close();
  fs.rmSync(dir, { recursive: true });
});
