/**
 * `hadron trigger list|describe`: Triggers (docs/http.md) as their delivery shows in the
 * inspection API. A Trigger is the durable group `trigger:<name>` of every partition of its
 * source Stream, joined by the partition's own delivery loop: the group's members say where it
 * delivers (1 per partition while the Trigger exists), its acked offset and lag how far it is,
 * the batch in flight which event is at the sink and its attempt. A Trigger whose partitions
 * have not started it yet has no group and is not listed.
 */
import { intOption, type CommandContext, type CommandSpec } from '../args.js';
import { connect } from '../connect.js';
import { OUTPUT_OPTION, TIMEOUT_OPTION, age, outputOf, table } from '../table.js';
import type { GroupInfo, HadronClient } from '@hadron/client';

/** The group name prefix of Triggers (packages/stream/src/sinks/trigger-runner.ts). */
export const TRIGGER_GROUP_PREFIX = 'trigger:';

/** The Trigger's name when `group` is a Trigger's group. */
export function triggerOf(group: string): string | undefined {
  return group.startsWith(TRIGGER_GROUP_PREFIX) ? group.slice(TRIGGER_GROUP_PREFIX.length) : undefined;
}

async function withClient(ctx: CommandContext, spec: CommandSpec, fn: (c: HadronClient, timeoutMs: number) => Promise<number>): Promise<number> {
  const timeoutMs = intOption(ctx.values, 'timeout', spec, { min: 1 }) ?? 10_000;
  const client = connect(ctx, { readyTimeoutMs: timeoutMs });
  try {
    await client.ready({ signal: ctx.signal });
    return await fn(client, timeoutMs);
  } finally {
    await client.close();
  }
}

/** One Trigger summed over partitions. */
function summary(g: GroupInfo): Record<string, unknown> {
  return {
    name: triggerOf(g.name),
    group: g.name,
    partitions: g.partitions.length,
    delivering: g.partitions.filter((p) => p.members > 0).length,
    lag: g.lag,
    atSink: g.partitions.filter((p) => p.inflight).length,
    oldestUnackedTimeMs: g.oldestUnackedTimeMs ?? null,
    redeliveries: g.redeliveries,
  };
}

export const triggerList: CommandSpec = {
  path: ['trigger', 'list'],
  summary: 'List Triggers (push delivery to HTTP sinks) with lag and delivery state over partitions.',
  description:
    'A Trigger is the durable group trigger:<name> of each partition of its source Stream (docs/http.md).\n' +
    'DELIVERING: partitions running its delivery (of those that have its group); AT SINK: partitions\n' +
    'with an event at the sink now; LAG: events not yet acknowledged by the sink (or dead-lettered).',
  positionals: [],
  options: { ...OUTPUT_OPTION, ...TIMEOUT_OPTION },
  async run(ctx) {
    const output = outputOf(ctx.values, this);
    return withClient(ctx, this, async (client, timeoutMs) => {
      const info = await client.streamInfo({ timeoutMs });
      const triggers = info.groups.filter((g) => triggerOf(g.name) !== undefined);
      if (output === 'json') ctx.out(`${JSON.stringify(triggers.map(summary))}\n`);
      else if (triggers.length === 0) ctx.out(`no Triggers deliver from stream ${info.stream}\n`);
      else {
        ctx.out(
          table(
            ['TRIGGER', 'DELIVERING', 'LAG', 'AT SINK', 'OLDEST UNACKED', 'REDELIVERIES'],
            triggers.map((g) => {
              const s = summary(g);
              return [String(s.name), `${String(s.delivering)}/${String(s.partitions)}`, String(g.lag), String(s.atSink), age(g.oldestUnackedTimeMs), String(g.redeliveries)];
            }),
          ),
        );
      }
      for (const f of info.failures) ctx.err(`hadron: error: partition ${f.partition} did not answer: ${f.error} [${f.code}]\n`);
      return info.failures.length ? 1 : 0;
    });
  },
};

export const triggerDescribe: CommandSpec = {
  path: ['trigger', 'describe'],
  summary: 'Show a Trigger per partition: acked offset, lag, the event at the sink and its attempt.',
  positionals: [{ name: 'trigger', help: 'the Trigger name', required: true }],
  options: { ...OUTPUT_OPTION, ...TIMEOUT_OPTION },
  async run(ctx) {
    const output = outputOf(ctx.values, this);
    const name = ctx.positionals[0]!;
    return withClient(ctx, this, async (client, timeoutMs) => {
      const info = await client.streamInfo({ timeoutMs });
      const g = info.groups.find((x) => x.name === `${TRIGGER_GROUP_PREFIX}${name}`);
      if (!g) {
        const known = info.groups.map((x) => triggerOf(x.name)).filter((x) => x !== undefined);
        ctx.err(`hadron: error: no Trigger '${name}' delivers from stream ${info.stream} (Triggers: ${known.join(', ') || 'none'}) [NOT_FOUND]\n`);
        return 1;
      }
      const last = new Map(info.partitions.map((p) => [p.partition, p.lastOffset]));
      if (output === 'json') ctx.out(`${JSON.stringify({ ...summary(g), perPartition: g.partitions })}\n`);
      else {
        const s = summary(g);
        ctx.out(`trigger ${name} (group ${g.name}): delivering on ${String(s.delivering)}/${String(s.partitions)} partitions, lag ${g.lag}, oldest unacked ${age(g.oldestUnackedTimeMs)}\n\n`);
        ctx.out(
          table(
            ['PARTITION', 'ACKED', 'LAST', 'LAG', 'DELIVERING', 'AT SINK', 'OLDEST UNACKED'],
            g.partitions.map((p) => [
              String(p.partition),
              String(p.ackedOffset),
              String(last.get(p.partition) ?? '?'),
              String(p.lag),
              p.members > 0 ? 'yes' : 'no',
              p.inflight ? `…${p.inflight.lastOffset}` : '-',
              age(p.oldestUnackedTimeMs),
            ]),
          ),
        );
      }
      for (const f of info.failures) ctx.err(`hadron: error: partition ${f.partition} did not answer: ${f.error} [${f.code}]\n`);
      return info.failures.length ? 1 : 0;
    });
  },
};
