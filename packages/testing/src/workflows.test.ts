/**
 * The GitHub Actions workflows (.github/workflows) pass actionlint (with shellcheck on every `run:`
 * script), and the release workflow does what docs/helm.md says: on a tag, push the three images
 * and the chart, rewriting a values line that must exist. actionlint is built from Go modules by
 * `scripts/go-tool.sh actionlint` (.ci/run runs it); when it is missing this test fails and says how to build it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from './cluster.js';

const WORKFLOWS = path.join(REPO_ROOT, '.github', 'workflows');

function tools(): { actionlint: string; shellcheck: string } {
  const a = spawnSync('bash', [path.join(REPO_ROOT, 'scripts', 'go-tool.sh'), 'actionlint', '--where'], { encoding: 'utf8' });
  assert.equal(a.status, 0, a.stderr);
  const s = spawnSync('bash', ['-c', 'command -v shellcheck'], { encoding: 'utf8' });
  assert.equal(s.status, 0, 'shellcheck is not installed: apt-get install -y --no-install-recommends shellcheck (.ci/run does it)');
  return { actionlint: a.stdout.trim().split('\n').pop()!, shellcheck: s.stdout.trim() };
}

function lint(files: string[], cwd: string): { status: number | null; out: string } {
  const { actionlint, shellcheck } = tools();
  const r = spawnSync(actionlint, ['-color=false', `-shellcheck=${shellcheck}`, ...files], { cwd, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('actionlint: every workflow in .github/workflows is clean', () => {
  const files = fs.readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f)).map((f) => path.join('.github', 'workflows', f));
  assert.ok(files.includes(path.join('.github', 'workflows', 'release.yml')));
  const r = lint(files, REPO_ROOT);
  assert.equal(r.status, 0, r.out);
});

test('actionlint really checks: a broken copy of the release workflow is rejected', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-actionlint-'));
  try {
    const broken = fs
      .readFileSync(path.join(WORKFLOWS, 'release.yml'), 'utf8')
      .replace('${{ steps.meta.outputs.version }}', '${{ steps.nope.outputs.version }}')
      .replace('helm lint --strict charts/hadron-operator', 'helm lint --strict charts/hadron-operator $VERSION');
    fs.writeFileSync(path.join(dir, 'release.yml'), broken);
    const r = lint(['release.yml'], dir);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /property "nope" is not defined/);
    assert.match(r.out, /SC2086/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('release workflow: on a v* tag it pushes the three images and the chart with their registry', () => {
  const text = fs.readFileSync(path.join(WORKFLOWS, 'release.yml'), 'utf8');
  const wf = parse(text) as { on: { push: { tags: string[] } }; jobs: Record<string, { steps: Array<{ run?: string }> }> };
  assert.deepEqual(wf.on.push.tags, ['v*']);
  const runs = Object.values(wf.jobs).flatMap((j) => j.steps.map((s) => s.run ?? '')).join('\n');
  assert.match(runs, /scripts\/images\.mjs/);
  assert.match(runs, /for name in hadron-stream hadron-operator hadron; do\n\s*skopeo copy "oci-archive:build\/images\/\$name\.tar" "docker:\/\/\$REGISTRY\/\$name:\$VERSION"/);
  assert.match(runs, /helm push "build\/chart\/hadron-operator-\$VERSION\.tgz" "oci:\/\/\$REGISTRY\/charts"/);
  // The chart is packaged with image.registry rewritten from this exact line of values.yaml.
  const values = fs.readFileSync(path.join(REPO_ROOT, 'charts', 'hadron-operator', 'values.yaml'), 'utf8');
  assert.match(runs, /s\|\^ {2}registry: localhost\\\$\|/);
  assert.equal(values.match(/^ {2}registry: localhost$/gm)?.length, 1, 'values.yaml has exactly one "  registry: localhost" line (image.registry)');
  assert.equal((parse(values) as { image: { registry: string } }).image.registry, 'localhost');
});
