/**
 * `hadron stream pub`: publishes one event (reference §6) and prints where it was stored.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { WireEventInput } from '@hadron/client';
import { UsageError, intOption, type CommandSpec } from '../args.js';
import { connect } from '../connect.js';

export const streamPub: CommandSpec = {
  path: ['stream', 'pub'],
  summary: 'Publish one event to a stream and print its partition and offset.',
  description:
    'The event goes to the partition of its key (the `partitionkey` attribute, else `subject`, else\n' +
    'id+source). It is acknowledged after it is on disk unless --no-fsync is given.',
  positionals: [{ name: 'data', help: 'the event data (UTF-8 text; base64 with --binary; `-` reads stdin)', required: true }],
  options: {
    id: { type: 'string', value: 'ID', help: 'event id (default: a random UUID)' },
    source: { type: 'string', value: 'SRC', help: 'event source (default: hadron-cli)' },
    type: { type: 'string', value: 'TYPE', help: 'event type (required)' },
    subject: { type: 'string', value: 'S', help: 'the `subject` attribute' },
    'partition-key': { type: 'string', value: 'K', help: 'the `partitionkey` attribute (chooses the partition)' },
    optattr: { type: 'string', short: 'o', multiple: true, value: 'KEY=VALUE', help: 'an optional or extension attribute' },
    binary: { type: 'boolean', help: 'the data argument is base64; publish the decoded bytes' },
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
    const optattrs: Record<string, string> = {};
    for (const kv of (v.optattr as string[] | undefined) ?? []) {
      const eq = kv.indexOf('=');
      if (eq < 0) throw new UsageError(`invalid key=value pair: no \`=\` found in \`${kv}\``, this.path);
      optattrs[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    if (typeof v.subject === 'string') optattrs.subject = v.subject;
    if (typeof v['partition-key'] === 'string') optattrs.partitionkey = v['partition-key'];
    const raw = ctx.positionals[0]!;
    const text = raw === '-' ? fs.readFileSync(0, 'utf8') : raw;
    let data: Uint8Array = Buffer.from(text, 'utf8');
    if (v.binary) {
      const compact = text.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) {
        throw new UsageError('error base64 decoding given payload, controlled by --binary', this.path);
      }
      data = Buffer.from(compact, 'base64');
    }
    const event: WireEventInput = {
      id: (v.id as string | undefined) ?? randomUUID(),
      source: (v.source as string | undefined) ?? 'hadron-cli',
      specversion: '1.0',
      type,
      optattrs,
      data,
    };
    const client = connect(ctx, { readyTimeoutMs: timeoutMs, publish: { timeoutMs } });
    try {
      const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
      const ack = await client.publish(event, { fsync: !v['no-fsync'], signal, ...(v['strict-placement'] ? { strictPlacement: true } : {}) });
      if (output === 'json') ctx.out(`${JSON.stringify({ partition: ack.partition, offset: ack.offset, id: event.id })}\n`);
      else ctx.out(`partition=${ack.partition} offset=${ack.offset} id=${event.id}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
