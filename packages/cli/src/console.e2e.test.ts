/// <reference lib="dom" />
/**
 * The web console in a real headless browser (Debian's chromium driven by playwright-core, no
 * browser download) against `hadron console` (the real bin) and real partition processes:
 * sign-in with a token, partitions and groups, live updates, the event browser (JSON, text,
 * hex), pipelines drawn as their DAG with per-stage counts, an instance's detail with a stage's
 * output, the token list (names and permissions only), pipeline errors. Screenshots go to test-artifacts/console/ (gitignored); their paths are
 * printed as test diagnostics.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { createClient, partitionOf } from '@hadron/client';
import { startStream, until } from '@hadron/testing';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '..', 'bin', 'hadron.js');
const ARTIFACTS = path.resolve(here, '..', '..', '..', 'test-artifacts', 'console');
const CHROMIUM = process.env.HADRON_CHROMIUM ?? '/usr/bin/chromium';

const PIPELINE = `apiVersion: hadron.rs/v1beta1
kind: Pipeline
metadata: {name: orders}
spec:
  sourceStream: events
  triggers: [order.created]
  maxParallel: 5
  startPoint: {location: beginning}
  stages:
    - {name: reserve}
    - {name: charge, dependencies: [reserve]}
    - {name: notify, after: [reserve]}
    - {name: ship, dependencies: [charge], after: [notify]}
`;

function keyFor(p: number, n: number): string {
  for (let i = 0; ; i++) if (partitionOf({ id: '', source: '', optattrs: { partitionkey: `k${i}` } }, n) === p) return `k${i}`;
}

test('web console in headless chromium', { skip: fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} not installed (.ci/run installs Debian's chromium)` }, async (t) => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const cluster = await startStream({ partitions: 2, manifests: { 'pipeline.yaml': PIPELINE } });
  t.after(() => cluster[Symbol.asyncDispose]());
  const client = createClient({ url: cluster.url(0), token: cluster.tokens.full });
  t.after(() => client.close());
  const k0 = keyFor(0, 2);
  await client.publish([
    { id: 'order-1', source: 'shop', type: 'order.created', partitionkey: k0, datacontenttype: 'application/json', data: Buffer.from('{"id":42,"items":["a"]}') },
    { id: 'blob-1', source: 'shop', type: 'blob', partitionkey: k0, data: Buffer.from([0x00, 0xff, 0x10]) },
    { id: 'note-1', source: 'shop', type: 'note', partitionkey: keyFor(1, 2), data: 'hello console' },
  ]);
  // A durable group with lag 2 and no members.
  const sub = client.subscribe({ group: 'billing', durable: true, startPoint: 'latest' }, () => undefined);
  await until(async () => (await client.groups()).some((g) => g.name === 'billing' && g.members === 2), 10_000, 'billing joined');
  await sub.close();
  await until(async () => (await client.groups()).find((g) => g.name === 'billing')?.members === 0, 10_000, 'billing left');
  await client.publish([
    { id: 'late-1', source: 'shop', type: 't', partitionkey: k0, data: 'x' },
    { id: 'late-2', source: 'shop', type: 't', partitionkey: k0, data: 'y' },
  ]);

  const proc = spawn(process.execPath, [BIN, 'console', '--port', '0', '--url', cluster.url(0)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HADRON_TOKEN: undefined } });
  t.after(async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
  });
  let stdout = '';
  proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  await until(() => /at http:\/\/127\.0\.0\.1:\d+\//.test(stdout), 10_000, 'console URL printed');
  const url = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout)![1]!;

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.after(() => browser.close());
  const page: Page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  // Nothing may come from outside the console (no CDN).
  const foreign: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(url)) foreign.push(r.url());
  });
  const shot = async (name: string): Promise<void> => {
    const file = path.join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    t.diagnostic(`screenshot: ${file}`);
  };

  await page.goto(url);
  assert.equal(await page.isVisible('#signin'), true);
  await page.fill('#token', 'not-a-token');
  await page.click('#signin-form button');
  await page.waitForFunction(() => document.getElementById('signin-error')!.textContent !== '');
  assert.match((await page.textContent('#signin-error'))!, /malformed or invalid.*\[UNAUTHENTICATED\]/);
  await shot('1-signin-refused');

  await page.fill('#token', cluster.tokens.full);
  await page.click('#signin-form button');
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForFunction(() => document.querySelectorAll('#partitions tbody tr').length === 2);
  assert.equal(await page.textContent('#stream-title'), 'Stream events');
  assert.match((await page.textContent('#totals'))!, /^2 partitions, 5 events, \d+ B, 2 segments$/);
  const rows = await page.$$eval('#partitions tbody tr', (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent)));
  assert.deepEqual(rows.map((r) => [r[0], r[2], r[3], r[4], r[7]]), [
    ['0', '1', '4', '4', 'ready'],
    ['1', '1', '1', '1', 'ready'],
  ]);
  const group = await page.$$eval('#groups tbody tr', (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent)));
  assert.deepEqual(group.map((r) => [r[0], r[1], r[2], r[3]]), [['billing', 'yes', '0', '2']]);
  assert.equal(await page.$$eval('#groups svg.spark polyline', (l) => l.length), 1, 'lag over time drawn');
  await shot('2-stream');

  // Live: new events show up without a reload.
  await client.publish([{ id: 'live-1', source: 'shop', type: 't', partitionkey: k0, data: 'z' }]);
  await page.waitForFunction(() => /^2 partitions, 6 events/.test(document.getElementById('totals')!.textContent ?? ''), undefined, { timeout: 15_000 });
  await page.waitForFunction(() => document.querySelector('#groups tbody tr')?.children[3]?.textContent === '3', undefined, { timeout: 15_000 });

  // Event browser: attributes, data as JSON, then hex.
  await page.fill('#b-partition', '0');
  await page.fill('#b-offset', '1');
  await page.fill('#b-count', '2');
  await page.selectOption('#b-format', 'json');
  await page.click('#browse button');
  await page.waitForFunction(() => document.querySelectorAll('#events tbody tr').length === 2);
  const events = await page.$$eval('#events tbody tr', (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent)));
  assert.equal(events[0]![0], '1');
  assert.match(events[0]![2]!, /id=order-1\nsource=shop\ntype=order.created\nspecversion=1.0\npartitionkey=k\d+\ndatacontenttype=application\/json$/);
  assert.equal(events[0]![3], '{\n  "id": 42,\n  "items": [\n    "a"\n  ]\n}');
  assert.equal(events[1]![3], '(binary) 00 ff 10');
  await shot('3-events-json');
  await page.selectOption('#b-format', 'hex');
  await page.click('#browse button');
  await page.waitForFunction(() => document.querySelector('#events tbody tr td:nth-child(4)')?.textContent?.startsWith('7b 22 69 64'));
  await page.fill('#b-offset', '99');
  await page.click('#browse button');
  await page.waitForFunction(() => (document.getElementById('browse-error')!.textContent ?? '') !== '');
  assert.equal(await page.textContent('#browse-error'), 'no events there (readable: 1–5)');

  // Pipelines as their DAG: one instance (order-1), its first stage done by a worker.
  const stage = client.pipelineStage('orders', 'reserve', () => ({ id: 'reservation-1', source: 'stock', type: 'stock.reserved', datacontenttype: 'application/json', data: '{"sku":"a1","qty":1}' }));
  t.after(() => stage.close());
  await page.waitForFunction(() => document.querySelector('.pipeline-card[data-pipeline="orders"] svg.dag g[data-stage="reserve"] text.counts')?.textContent === '1 done', undefined, { timeout: 15_000 });
  const card = '.pipeline-card[data-pipeline="orders"]';
  assert.equal(await page.textContent(`${card} h3`), 'orders');
  assert.match((await page.textContent(`${card} p.summary`))!, /^1 active instance\(s\), oldest at offset 1; triggers: order\.created; max parallel 5; start: beginning$/);
  const nodes = await page.$$eval(`${card} svg.dag g.stage`, (gs) => gs.map((g) => [g.getAttribute('data-stage'), g.querySelector('text.counts')!.textContent]));
  assert.deepEqual(nodes, [
    ['reserve', '1 done'],
    ['charge', '1 ready'],
    ['notify', '1 ready'],
    ['ship', '1 waiting'],
  ]);
  const edges = await page.$$eval(`${card} svg.dag path.edge`, (ps) => ps.map((p) => `${p.getAttribute('data-from')}->${p.getAttribute('data-to')}:${p.classList.contains('after') ? 'after' : 'dependency'}`));
  assert.deepEqual(edges.sort(), ['charge->ship:dependency', 'notify->ship:after', 'reserve->charge:dependency', 'reserve->notify:after']);
  // Stages of a later layer are drawn to the right of their parents.
  const xOf = (name: string): Promise<number> => page.$eval(`${card} g[data-stage="${name}"] rect`, (r) => Number(r.getAttribute('x')));
  assert.ok((await xOf('reserve')) < (await xOf('charge')) && (await xOf('charge')) < (await xOf('ship')));
  await shot('5-pipelines-dag');
  await page.click(`${card} tr.instance`);
  await page.waitForSelector('#instance:not([hidden])');
  assert.match((await page.textContent('#instance-title'))!, /^Instance of orders: partition 0, offset 1, root event order-1$/);
  const detail = await page.$$eval('#instance-stages tbody tr', (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent)));
  assert.deepEqual(detail.map((r) => [r[0], r[1], r[2]]), [
    ['reserve', 'done', '1'],
    ['charge', 'ready', '0'],
    ['notify', 'ready', '0'],
    ['ship', 'waiting', '0'],
  ]);
  assert.match(detail[0]![3]!, /^id=reservation-1\nsource=stock\ntype=stock\.reserved\ndatacontenttype=application\/json$/);
  assert.equal(detail[0]![4], '{\n  "sku": "a1",\n  "qty": 1\n}');
  await shot('6-pipeline-instance');

  // Tokens: names and permissions, never a key or a JWT.
  await page.waitForFunction(() => document.querySelectorAll('#tokens tbody tr').length === 4);
  const tokens = await page.$$eval('#tokens tbody tr', (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent)));
  assert.deepEqual(tokens, [
    ['t-full', 'yes', '-', '-', '- / -', '- / -'],
    ['t-none', 'no', '-', '-', '- / -', '- / -'],
    ['t-reader', 'no', '-', 'events', '- / -', '- / -'],
    ['t-writer', 'no', 'events', 'events', '- / -', '- / -'],
  ]);
  const html = await page.content();
  for (const jwt of Object.values(cluster.tokens)) assert.ok(!html.includes(jwt.split('.')[2]!), 'no JWT signature on the page');
  await shot('7-tokens');

  await page.fill('#p-name', 'no-such-pipeline');
  await page.click('#pipeline-form button');
  await page.waitForFunction(() => (document.getElementById('pipeline-error')!.textContent ?? '') !== '');
  assert.match((await page.textContent('#pipeline-error'))!, /partition 0: pipeline no-such-pipeline is not running on stream events/);
  await shot('4-pipeline-error');

  assert.deepEqual(foreign, [], 'no request leaves the console');
  await page.click('#signout');
  assert.equal(await page.isVisible('#signin'), true);

  // A token without all: true sees the stream and pipelines, and is told why Tokens are not shown.
  await page.fill('#token', cluster.tokens.reader);
  await page.click('#signin-form button');
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForFunction(() => (document.getElementById('tokens-note')!.textContent ?? '').startsWith('Tokens are not shown'));
  assert.match((await page.textContent('#tokens-note'))!, /token 't-reader' may not list Tokens \(needs all: true\)/);
  assert.equal(await page.$$eval('#tokens tbody tr', (trs) => trs.length), 0);
  assert.equal(await page.isVisible('.pipeline-card[data-pipeline="orders"] svg.dag'), true);
});
