/**
 * `hadron stream info`: every partition (address, first/last offset, events, size, segments,
 * replicas and their lag, connection state), the totals, and the consumer groups with their lag summed over partitions.
 * Exits 1 when a partition did not answer (the others are still shown).
 */
import { intOption, type CommandSpec } from '../args.js';
import { connect } from '../connect.js';
import { OUTPUT_OPTION, TIMEOUT_OPTION, age, bytes, outputOf, table } from '../table.js';

export const streamInfo: CommandSpec = {
  path: ['stream', 'info'],
  summary: 'Show partitions (offsets, size, replicas, state), totals and consumer groups with their lag.',
  description: 'Asks every partition through the stream.Inspection service (needs `sub` on the stream).',
  positionals: [],
  options: { ...OUTPUT_OPTION, ...TIMEOUT_OPTION },
  async run(ctx) {
    const output = outputOf(ctx.values, this);
    const timeoutMs = intOption(ctx.values, 'timeout', this, { min: 1 }) ?? 10_000;
    const client = connect(ctx, { readyTimeoutMs: timeoutMs });
    try {
      await client.ready({ signal: ctx.signal });
      const info = await client.streamInfo({ timeoutMs });
      const health = new Map(client.partitions().map((p) => [p.partition, p.health]));
      if (output === 'json') {
        ctx.out(`${JSON.stringify({ ...info, partitions: info.partitions.map((p) => ({ ...p, state: health.get(p.partition) ?? 'unknown' })) })}\n`);
      } else {
        ctx.out(
          `stream ${info.stream}: ${client.partitionCount} partitions, ${info.totals.events} events, ${bytes(info.totals.sizeBytes)}, ${info.totals.segments} segments\n\n`,
        );
        const rows = info.partitions.map((p) => [
          String(p.partition),
          p.address,
          String(p.firstOffset),
          String(p.lastOffset),
          String(p.events),
          bytes(p.sizeBytes),
          String(p.segments),
          p.retention.strategy === 'time' ? `time ${p.retention.retentionSeconds}s` : p.retention.strategy,
          p.replicas.length === 0 ? '-' : p.replicas.map((x) => `${x.partition}:${x.inSync ? 'in-sync' : `lag ${x.lagEvents}`}`).join(' '),
          health.get(p.partition) ?? 'unknown',
        ]);
        for (const f of info.failures) rows.push([String(f.partition), '', '', '', '', '', '', '', '', `error: ${f.error} [${f.code}]`]);
        rows.sort((a, b) => Number(a[0]) - Number(b[0]));
        ctx.out(table(['PARTITION', 'ADDRESS', 'FIRST', 'LAST', 'EVENTS', 'SIZE', 'SEGMENTS', 'RETENTION', 'REPLICAS', 'STATE'], rows));
        ctx.out('\n');
        if (info.groups.length === 0) ctx.out('no consumer groups\n');
        else {
          ctx.out(
            table(
              ['GROUP', 'DURABLE', 'MEMBERS', 'LAG', 'OLDEST UNACKED'],
              info.groups.map((g) => [g.name, g.durable ? 'yes' : 'no', String(g.members), String(g.lag), age(g.oldestUnackedTimeMs)]),
            ),
          );
        }
      }
      for (const f of info.failures) ctx.err(`hadron: error: partition ${f.partition} did not answer: ${f.error} [${f.code}]\n`);
      return info.failures.length ? 1 : 0;
    } finally {
      await client.close();
    }
  },
};
