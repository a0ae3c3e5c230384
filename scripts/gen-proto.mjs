#!/usr/bin/env node
// Regenerates packages/proto/src/gen from packages/proto/proto with buf + protoc-gen-es
// (both installed from npm). `--check` generates into a temp dir and fails if the committed
// code differs, so generated code can never drift from the .proto files.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const pkg = path.join(root, 'packages', 'proto');
const check = process.argv.includes('--check');
const out = check ? fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-gen-')) : path.join(pkg, 'src', 'gen');
const template = JSON.stringify({
  version: 'v2',
  plugins: [{ local: path.join(root, 'node_modules', '.bin', 'protoc-gen-es'), out, opt: ['target=ts', 'import_extension=js'] }],
});
const buf = path.join(root, 'node_modules', '.bin', 'buf');
const r = spawnSync(buf, ['generate', '--template', template], { cwd: pkg, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
if (check) {
  const committed = path.join(pkg, 'src', 'gen');
  const files = fs.readdirSync(out).sort();
  const mine = fs.readdirSync(committed).sort();
  let diff = JSON.stringify(files) !== JSON.stringify(mine) ? [`file lists differ: ${files} vs ${mine}`] : [];
  for (const f of files) {
    if (fs.existsSync(path.join(committed, f)) && fs.readFileSync(path.join(out, f), 'utf8') !== fs.readFileSync(path.join(committed, f), 'utf8')) diff.push(f);
  }
  fs.rmSync(out, { recursive: true, force: true });
  if (diff.length) {
    console.error(`generated code is stale (${diff.join(', ')}); run \`npm run gen\` and commit`);
    process.exit(1);
  }
  console.log('generated code is up to date');
}
