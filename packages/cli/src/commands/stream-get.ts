/**
 * `hadron stream get --partition P [--offset O] [--count N]`: events by offset, without joining
 * a consumer group (nothing is acknowledged or moved).
 */
import { UsageError, intOption, type CommandSpec } from '../args.js';
import { connect } from '../connect.js';
import { eventJson, eventText } from '../format.js';
import { OUTPUT_OPTION, TIMEOUT_OPTION, outputOf } from '../table.js';

export const streamGet: CommandSpec = {
  path: ['stream', 'get'],
  summary: 'Print events of one partition by offset, without a consumer group.',
  description: 'Uses stream.Inspection/ReadEvents (needs `sub` on the stream). Offsets start at 1.',
  positionals: [],
  options: {
    partition: { type: 'string', value: 'P', help: 'the partition (required)' },
    offset: { type: 'string', value: 'O', help: 'first offset (default: the first readable one)' },
    count: { type: 'string', value: 'N', help: 'how many events, 1–1000 (default 1)' },
    ...OUTPUT_OPTION,
    ...TIMEOUT_OPTION,
  },
  async run(ctx) {
    const output = outputOf(ctx.values, this);
    const partition = intOption(ctx.values, 'partition', this);
    if (partition === undefined) throw new UsageError('--partition is required', this.path);
    const offset = intOption(ctx.values, 'offset', this, { min: 1 });
    const count = intOption(ctx.values, 'count', this, { min: 1, max: 1000 }) ?? 1;
    const timeoutMs = intOption(ctx.values, 'timeout', this, { min: 1 }) ?? 10_000;
    const client = connect(ctx, { readyTimeoutMs: timeoutMs });
    try {
      await client.ready({ signal: ctx.signal });
      const r = await client.read({ partition, ...(offset !== undefined ? { offset } : {}), count, timeoutMs });
      for (const e of r.events) {
        const time = new Date(e.timeMs).toISOString();
        if (!e.event) {
          const raw = Buffer.from(e.undecodable ?? []).toString('base64');
          ctx.out(output === 'json' ? `${JSON.stringify({ partition: e.partition, offset: e.offset, time, undecodable: raw })}\n` : `partition=${e.partition} offset=${e.offset} time=${time} undecodable=base64:${raw}\n`);
          continue;
        }
        ctx.out(output === 'json' ? `${JSON.stringify({ ...eventJson(e.event), time })}\n` : `${eventText(e.event).replace(/^(partition=\d+ offset=\d+)/, `$1 time=${time}`)}\n`);
      }
      if (r.events.length === 0) {
        const from = offset ?? r.firstOffset;
        ctx.err(`hadron: no events at offset ${from} of partition ${partition} (readable: ${r.firstOffset <= r.lastOffset ? `${r.firstOffset}–${r.lastOffset}` : 'none'})\n`);
        return 1;
      }
      return 0;
    } finally {
      await client.close();
    }
  },
};
