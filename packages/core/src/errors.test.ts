import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, GrpcStatusError, HadronError, Status, grpcStatusOf } from './errors.js';

const root = process.env.HADRON_REPO_ROOT ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('docs/errors.md lists exactly the error codes of ERROR_CODES, with their gRPC status', () => {
  const doc = fs.readFileSync(path.join(root, 'docs', 'errors.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| ([A-Z_]+) \|/gm)].map((m) => [m[1], m[2]]);
  const expected = Object.entries(ERROR_CODES).map(([code, info]) => [code, Object.entries(Status).find(([, v]) => v === info.status)![0]]);
  assert.deepEqual(rows.sort(), expected.sort());
});

test('domain errors map to their status; unknown errors become INTERNAL without leaking text', () => {
  assert.deepEqual(grpcStatusOf(new HadronError('DISK_FULL', 'full')), { status: Status.RESOURCE_EXHAUSTED, message: 'full', code: 'DISK_FULL' });
  assert.deepEqual(grpcStatusOf(new Error('secret detail')), { status: Status.INTERNAL, message: 'internal server error', code: 'INTERNAL' });
});

test('a remote status keeps the Hadron code and retriability sent by the server', () => {
  const e = new GrpcStatusError(Status.RESOURCE_EXHAUSTED, 'disk full', 'DISK_FULL');
  assert.equal(e.code, 'DISK_FULL');
  assert.equal(e.retriable, true);
  const foreign = new GrpcStatusError(Status.UNAVAILABLE, 'x');
  assert.equal(foreign.code, 'UNAVAILABLE');
  assert.equal(foreign.retriable, true);
});

test('a peer-supplied hadron-error-code never resolves through the prototype (issue 14 item 6)', () => {
  for (const code of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
    const e = new GrpcStatusError(Status.INTERNAL, 'x', code);
    assert.equal(e.code, 'INTERNAL', code);
    assert.equal(e.retriable, false);
  }
});
