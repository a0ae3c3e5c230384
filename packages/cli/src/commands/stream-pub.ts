/**
 * `hadron stream pub`: publishes one event (reference §6) and prints where it was stored; with
 * `--lines` one event per input line, with `--count N` each N times (then prints a summary).
 * Input from stdin (`-`) is taken as bytes, byte-exact (only `--binary` and `--lines` look at it
 * as text). Attributes are checked before anything is sent (pub-checks.ts).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { WireEventInput } from '@hadron/client';
import { UsageError, intOption, type CommandSpec } from '../args.js';
import { connect } from '../connect.js';
import { attributeProblem, dataProblem, splitLines } from './pub-checks.js';

/** Most events one `stream pub` sends (lines × count): bounds memory. */
export const MAX_PUB_COUNT = 1_000_000;
/** Events per publish call. */
const PUB_CHUNK = 1000;

function readFile(file: string, spec: CommandSpec): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new UsageError(`--lines: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, spec.path);
  }
}

export const streamPub: CommandSpec = {
  path: ['stream', 'pub'],
  summary: 'Publish one event to a stream and print its partition and offset.',
  description:
    'The event goes to the partition of its key (the `partitionkey` attribute, else `subject`, else\n' +
    'id+source). It is acknowledged after it is on disk unless --no-fsync is given.',
  positionals: [{ name: 'data', help: 'the event data (UTF-8 text; base64 with --binary; `-` reads stdin byte-exact; a file with --lines)', required: true }],
  options: {
    id: { type: 'string', value: 'ID', help: 'event id (default: a random UUID)' },
    source: { type: 'string', value: 'SRC', help: 'event source (default: hadron-cli)' },
    type: { type: 'string', value: 'TYPE', help: 'event type (required)' },
    subject: { type: 'string', value: 'S', help: 'the `subject` attribute' },
    'partition-key': { type: 'string', value: 'K', help: 'the `partitionkey` attribute (chooses the partition)' },
    optattr: { type: 'string', short: 'o', multiple: true, value: 'KEY=VALUE', help: 'an optional or extension attribute' },
    binary: { type: 'boolean', help: 'the data argument is base64; publish the decoded bytes' },
    lines: { type: 'boolean', help: 'publish one event per line of the file named by <data> (`-`: stdin)' },
    count: { type: 'string', value: 'N', help: 'publish each event N times (default 1)' },
    'no-fsync': { type: 'boolean', help: 'acknowledge without waiting for the disk' },
    'strict-placement': { type: 'boolean', help: "fail instead of using another partition when the key's partition is down" },
    output: { type: 'string', value: 'text|json', help: 'output format (default text)' },
    timeout: { type: 'string', value: 'MS', help: 'give up after this long (default 10000)' },
  },
  async run(ctx) {
    const v = ctx.values;
    const type = v.type as string | undefined;
    if (!type) throw new UsageError('--type is required', this.path);
    const output = (v.output as string | undefined) ?? 'text';
    if (output !== 'text' && output !== 'json') throw new UsageError(`--output must be text or json, got ${JSON.stringify(output)}`, this.path);
    const timeoutMs = intOption(v, 'timeout', this, { min: 1 }) ?? 10_000;
    const count = intOption(v, 'count', this, { min: 1, max: MAX_PUB_COUNT }) ?? 1;
    const optattrs: Record<string, string> = {};
    for (const kv of (v.optattr as string[] | undefined) ?? []) {
      const eq = kv.indexOf('=');
      if (eq < 0) throw new UsageError(`invalid key=value pair: no \`=\` found in \`${kv}\``, this.path);
      const problem = attributeProblem(kv.slice(0, eq), kv.slice(eq + 1));
      if (problem) throw new UsageError(`invalid --optattr ${JSON.stringify(kv)}: ${problem}`, this.path);
      optattrs[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    if (typeof v.subject === 'string') optattrs.subject = v.subject;
    if (typeof v['partition-key'] === 'string') optattrs.partitionkey = v['partition-key'];
    const raw = ctx.positionals[0]!;
    // Bytes as given: stdin is never decoded as UTF-8 (that replaced invalid bytes: data loss).
    const input: Buffer = raw === '-' ? fs.readFileSync(0) : v.lines ? readFile(raw, this) : Buffer.from(raw, 'utf8');
    // Blank lines are skipped (a trailing newline or a blank separator is not an event).
    const payloads = v.lines ? splitLines(input).filter((l) => l.length > 0) : [input];
    if (payloads.length === 0) throw new UsageError(`--lines: ${raw === '-' ? 'stdin' : raw} has no lines to publish`, this.path);
    const datas = payloads.map((p, i) => {
      if (!v.binary) return p;
      const compact = p.toString('latin1').replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) {
        throw new UsageError(`error base64 decoding given payload${v.lines ? ` (line ${i + 1})` : ''}, controlled by --binary`, this.path);
      }
      return Buffer.from(compact, 'base64');
    });
    const jsonProblem = datas.map((d, i) => [i, dataProblem(optattrs.datacontenttype, d)] as const).find(([, p]) => p !== undefined);
    if (jsonProblem) throw new UsageError(`${v.lines ? `line ${jsonProblem[0] + 1}: ` : ''}${jsonProblem[1]}`, this.path);
    const id = v.id as string | undefined;
    const total = datas.length * count;
    const events: WireEventInput[] = [];
    for (let r = 0; r < count; r++) {
      for (const data of datas) {
        const n = events.length;
        events.push({
          id: id === undefined ? randomUUID() : total === 1 ? id : `${id}-${n + 1}`,
          source: (v.source as string | undefined) ?? 'hadron-cli',
          specversion: '1.0',
          type,
          optattrs,
          data,
        });
      }
    }
    const client = connect(ctx, { readyTimeoutMs: timeoutMs, publish: { timeoutMs } });
    try {
      // Wait for the cluster first: when nothing answers, this fails with the reason
      // (connect ECONNREFUSED, …) instead of the publish timing out without one.
      await client.ready({ signal: ctx.signal, timeoutMs });
      const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
      const opts = { fsync: !v['no-fsync'], signal, ...(v['strict-placement'] ? { strictPlacement: true } : {}) };
      if (events.length === 1) {
        const ack = await client.publish(events[0]!, opts);
        if (output === 'json') ctx.out(`${JSON.stringify({ partition: ack.partition, offset: ack.offset, id: events[0]!.id })}\n`);
        else ctx.out(`partition=${ack.partition} offset=${ack.offset} id=${events[0]!.id}\n`);
        return 0;
      }
      const ranges = new Map<number, { first: number; last: number; events: number }>();
      for (let i = 0; i < events.length; i += PUB_CHUNK) {
        const acks = await client.publish(events.slice(i, i + PUB_CHUNK), { ...opts, signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]) });
        for (const a of acks) {
          const r = ranges.get(a.partition);
          if (!r) ranges.set(a.partition, { first: a.offset, last: a.offset, events: 1 });
          else (r.first = Math.min(r.first, a.offset)), (r.last = Math.max(r.last, a.offset)), r.events++;
        }
      }
      const parts = [...ranges].sort((a, b) => a[0] - b[0]);
      if (output === 'json') ctx.out(`${JSON.stringify({ published: events.length, partitions: parts.map(([partition, r]) => ({ partition, ...r })) })}\n`);
      else ctx.out(`published ${events.length} events: ${parts.map(([p, r]) => `partition=${p} offsets=${r.first}-${r.last}`).join(' ')}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
