/**
 * docs/cli.md quotes error texts; each one here is (1) found verbatim in docs/cli.md and (2)
 * triggered for real through the `hadron` bin against `hadron dev` running the reference
 * example (with 2 partitions), and must match what the command prints on stderr. In a quote,
 * `…` and `<reason>`-style placeholders stand for any text; names in `subs` are replaced by those
 * of this run (ports). So a changed message fails here until the docs say the same (issue 10).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, partitionOf } from '@hadron/client';
import { freeDevPorts, freePortRange, until } from '@hadron/testing';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '..', 'bin', 'hadron.js');
const REPO = path.join(here, '..', '..', '..');
const DOC = fs.readFileSync(path.join(REPO, 'docs', 'cli.md'), 'utf8');
const flat = (s: string): string => s.replace(/\s+/g, ' ').trim();

function run(args: string[], env: Record<string, string | undefined>): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, HADRON_URL: undefined, HADRON_TOKEN: undefined, HADRON_CA_FILE: undefined, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out, err })));
}

/** The quote as a pattern: `…` and `<placeholder>` match any text. */
function pattern(quote: string): RegExp {
  const parts = flat(quote).split(/(…|<[a-z]+>)/);
  return new RegExp(parts.map((p, i) => (i % 2 ? '.+' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join(''));
}

interface Case {
  quote: string;
  args: string[];
  env?: 'none' | 'url' | 'reader' | 'full';
  code: number;
  /** Replacements in the quote for this run (doc text → actual). */
  subs?: Record<string, string>;
}

test('every error text quoted in docs/cli.md is what the CLI prints', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-doc-errors-'));
  const manifests = path.join(root, 'full.yaml');
  fs.writeFileSync(manifests, fs.readFileSync(path.join(REPO, 'examples', 'full.yaml'), 'utf8').replace('partitions: 3', 'partitions: 2'));
  const data = path.join(root, 'data');
  const { port: base, httpPort } = await freeDevPorts();
  const dev = spawn(process.execPath, [BIN, 'dev', '-f', manifests, '--data', data, '--port', String(base), '--http-port', String(httpPort), '--no-console'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let devOut = '';
  dev.stdout.on('data', (c: Buffer) => (devOut += c.toString()));
  const exited = new Promise((r) => dev.once('exit', r));
  t.after(async () => {
    if (dev.exitCode === null) dev.kill('SIGINT');
    await exited;
    fs.rmSync(root, { recursive: true, force: true });
  });
  await until(() => devOut.includes('hadron dev: ready;') || dev.exitCode !== null, 30_000, 'hadron dev ready');
  const url = `http://127.0.0.1:${base}`;
  const token = (name: string): string => fs.readFileSync(path.join(data, 'tokens', name), 'utf8');
  const envs = {
    none: {},
    url: { HADRON_URL: url },
    reader: { HADRON_URL: url, HADRON_TOKEN: token('hadron-read-only') },
    full: { HADRON_URL: url, HADRON_TOKEN: token('hadron-full-access') },
  };
  // Partition 0 holds exactly 2 events; group billing is durable with 2 members (one per partition).
  const client = createClient({ url, token: token('hadron-full-access') });
  t.after(() => client.close());
  const key0 = (i: number): string => {
    for (let n = 0; ; n++) if (partitionOf({ id: '', source: '', optattrs: { partitionkey: `k${i}-${n}` } }, 2) === 0) return `k${i}-${n}`;
  };
  await client.publish([0, 1].map((i) => ({ id: `e${i}`, source: 'doc', type: 'doc.test', partitionkey: key0(i) })));
  const sub = client.subscribe({ group: 'billing', durable: true, startPoint: 'beginning' }, () => undefined);
  t.after(() => sub.close());
  await until(async () => (await client.groups()).find((g) => g.name === 'billing')?.members === 2, 15_000, 'billing with 2 members');
  const dead = await freePortRange(1);

  const cases: Case[] = [
    { quote: "hadron: error: unauthorized to perform the requested action: token 'hadron-read-only' may not publish to stream 'events' [PERMISSION_DENIED]", args: ['stream', 'pub', '--type', 't', 'x'], env: 'reader', code: 1 },
    { quote: 'the URL of the Hadron cluster must be provided via HADRON_URL env var or --url CLI option', args: ['stream', 'pub', '--type', 't', 'x'], env: 'none', code: 2 },
    { quote: 'no credentials provided; set credentials via HADRON_TOKEN env var or --token CLI option', args: ['stream', 'pub', '--type', 't', 'x'], env: 'url', code: 2 },
    { quote: 'invalid key=value pair: no `=` found in `…`', args: ['stream', 'pub', '--type', 't', '-o', 'novalue', 'x'], env: 'full', code: 2 },
    {
      quote: 'hadron: error: no partition list from http://127.0.0.1:7000 within 10000 ms: http://127.0.0.1:7000: connect ECONNREFUSED 127.0.0.1:7000 [NO_PARTITIONS]',
      args: ['stream', 'pub', '--type', 't', '--timeout', '1500', '--url', `http://127.0.0.1:${dead}`, 'x'],
      env: 'full',
      code: 1,
      subs: { '127.0.0.1:7000': `127.0.0.1:${dead}`, '10000 ms': '1500 ms' },
    },
    { quote: 'invalid --optattr "Bad-Key=1": attribute name "Bad-Key" must consist of lower-case letters a-z and digits 0-9 (CloudEvents 1.0)', args: ['stream', 'pub', '--type', 't', '-o', 'Bad-Key=1', 'x'], env: 'full', code: 2 },
    { quote: 'specversion cannot be set as an optional attribute: Hadron events are CloudEvents 1.0; specversion is always 1.0', args: ['stream', 'pub', '--type', 't', '-o', 'specversion=0.3', 'x'], env: 'full', code: 2 },
    { quote: 'datacontenttype is application/json but the data is not valid JSON: …', args: ['stream', 'pub', '--type', 't', '-o', 'datacontenttype=application/json', '{"a":'], env: 'full', code: 2 },
    {
      quote: "pipeline 'NAME' not found: the target pipeline controller was not found (is the Pipeline applied, with sourceStream set to this stream?) [NOT_FOUND]",
      args: ['pipeline', 'sub', 'nope', 'stage1', '--timeout', '5000'],
      env: 'full',
      code: 1,
      subs: { NAME: 'nope' },
    },
    {
      quote: 'no active or recently completed instance of pipeline P has root event id "ID"',
      args: ['pipeline', 'status', 'service-creation', '--root-id', 'nothing-here'],
      env: 'full',
      code: 1,
      subs: { 'pipeline P': 'pipeline service-creation', '"ID"': '"nothing-here"' },
    },
    { quote: 'hadron: no events at offset 999 of partition 0 (readable: 1–2)', args: ['stream', 'get', '--partition', '0', '--offset', '999'], env: 'full', code: 1 },
    { quote: "group 'nope' does not exist (groups: billing) [NOT_FOUND]", args: ['group', 'describe', 'nope'], env: 'full', code: 1 },
    { quote: "hadron: error: cannot reset group 'billing': 2 member(s) connected; stop them first or use --force [GROUP_BUSY]", args: ['group', 'reset', 'billing', '--to-beginning'], env: 'full', code: 1 },
    {
      quote: 'port 7000 on 127.0.0.1 (stream events, partition 0) is in use; …',
      args: ['dev', '-f', manifests, '--data', path.join(root, 'other'), '--port', String(base), '--no-console'],
      env: 'none',
      code: 1,
      subs: { 'port 7000': `port ${base}` },
    },
  ];
  for (const c of cases) {
    await t.test(c.quote.slice(0, 70), async () => {
      assert.ok(flat(DOC).includes(flat(c.quote)), `not quoted in docs/cli.md: ${c.quote}`);
      let expected = c.quote;
      for (const [from, to] of Object.entries(c.subs ?? {})) expected = expected.replaceAll(from, to);
      const r = await run(c.args, envs[c.env ?? 'full']);
      assert.equal(r.code, c.code, r.err);
      assert.match(flat(r.err), pattern(expected), `docs/cli.md says: ${c.quote}`);
    });
  }
});
