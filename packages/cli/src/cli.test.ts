/**
 * The CLI surface in-process: help on every command, usage errors, argument checks that happen
 * before any connection. (Against a cluster: cli.e2e.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findCommand } from './args.js';
import { COMMANDS, main } from './main.js';

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (s) => (out += s), err: (s) => (err += s), env });
  return { code, out, err };
}

test('--help on every command and group', async () => {
  for (const c of COMMANDS) {
    const r = await cli([...c.path, '--help']);
    assert.equal(r.code, 0, c.path.join(' '));
    assert.match(r.out, new RegExp(`^Usage: hadron ${c.path.join(' ')} \\[options\\]`));
    assert.match(r.out, /Global options:\n.*--url URL/s);
  }
  for (const g of [[], ['stream'], ['pipeline']]) {
    const r = await cli([...g, '--help']);
    assert.equal(r.code, 0);
    assert.match(r.out, /Commands:/);
  }
  assert.equal((await cli(['help'])).code, 0);
  const bare = await cli([]);
  assert.equal(bare.code, 2);
  assert.match(bare.err, /Usage: hadron <command>/);
});

test('global options are accepted before and after the command', () => {
  assert.deepEqual(findCommand(['--url', 'http://x', 'stream', '-v', 'pub', '--type', 't', 'd'], COMMANDS), {
    path: ['stream', 'pub'],
    rest: ['--url', 'http://x', '-v', '--type', 't', 'd'],
  });
  assert.deepEqual(findCommand(['stream', 'pub', 'stream'], COMMANDS), { path: ['stream', 'pub'], rest: ['stream'] });
});

test('usage errors: exit 2, say what is wrong and where help is', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['bogus'], /unknown command `bogus`/],
    [['stream', 'pub', 'data'], /--type is required/],
    [['stream', 'pub', '--type', 't'], /missing <data>/],
    [['stream', 'pub', '--type', 't', '-o', 'novalue', 'd'], /invalid key=value pair: no `=` found in `novalue`/],
    [['stream', 'pub', '--type', 't', '--binary', '!!!'], /error base64 decoding given payload, controlled by --binary/],
    [['stream', 'pub', '--type', 't', '--bogus', 'd'], /Unknown option '--bogus'/],
    [['stream', 'sub'], /--group is required/],
    [['stream', 'sub', '-g', 'g', '--start-beginning', '--start-offset', '3'], /mutually exclusive/],
    [['stream', 'sub', '-g', 'g', '--batch-size', 'x'], /--batch-size must be a non-negative integer/],
    [['stream', 'sub', '-g', 'g', '--output', 'xml'], /--output must be text or json/],
    [['pipeline', 'sub', 'p'], /missing <stage>/],
    [['stream', 'pub', '--type', 't', 'd'], /URL of the Hadron cluster must be provided via HADRON_URL env var or --url CLI option/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, re, args.join(' '));
    assert.match(r.err, /Run `hadron .*--help` for usage\./);
  }
  const noToken = await cli(['stream', 'pub', '--type', 't', 'd'], { HADRON_URL: 'http://127.0.0.1:1' });
  assert.match(noToken.err, /no credentials provided/);
});

test('an unreachable cluster is a clear failure (exit 1), not a hang', async () => {
  const r = await cli(['stream', 'pub', '--type', 't', '--timeout', '300', 'd'], { HADRON_URL: 'http://127.0.0.1:1', HADRON_TOKEN: 'a.b.c' });
  assert.equal(r.code, 1);
  assert.match(r.err, /^hadron: error: .*(no partition list from http:\/\/127\.0\.0\.1:1|aborted|timeout)/i);
});

test('bench percentiles: nearest rank', async () => {
  const { percentiles } = await import('./commands/bench.js');
  assert.deepEqual(percentiles([]), { p50: 0, p90: 0, p99: 0, max: 0 });
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.deepEqual(percentiles(hundred), { p50: 50, p90: 90, p99: 99, max: 100 });
  assert.deepEqual(percentiles([7]), { p50: 7, p90: 7, p99: 7, max: 7 });
});
