/**
 * `hadron group list|describe|delete|reset`: consumer groups over all partitions (like
 * `kafka-consumer-groups`). Reset and delete need a token with `all: true` and are refused while
 * members are connected unless `--force` (which disconnects them; they reconnect and continue
 * from the new position).
 */
import { UsageError, intOption, type CommandContext, type CommandSpec } from '../args.js';
import { connect } from '../connect.js';
import { OUTPUT_OPTION, TIMEOUT_OPTION, age, outputOf, table } from '../table.js';
import type { HadronClient, ResetTarget } from '@hadron/client';

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

const GROUP_ARG = [{ name: 'group', help: 'the consumer group name', required: true }];
const ADMIN_OPTIONS = {
  partition: { type: 'string', value: 'P', help: 'only this partition (default: all)' },
  force: { type: 'boolean', help: 'disconnect connected members instead of refusing' },
} as const;

export const groupList: CommandSpec = {
  path: ['group', 'list'],
  summary: 'List consumer groups with members and lag summed over partitions.',
  positionals: [],
  options: { ...OUTPUT_OPTION, ...TIMEOUT_OPTION },
  async run(ctx) {
    const output = outputOf(ctx.values, this);
    return withClient(ctx, this, async (client, timeoutMs) => {
      const info = await client.streamInfo({ timeoutMs });
      if (output === 'json') ctx.out(`${JSON.stringify(info.groups.map(({ partitions: _p, ...g }) => g))}\n`);
      else if (info.groups.length === 0) ctx.out('no consumer groups\n');
      else {
        ctx.out(
          table(
            ['GROUP', 'DURABLE', 'MEMBERS', 'LAG', 'OLDEST UNACKED', 'REDELIVERIES'],
            info.groups.map((g) => [g.name, g.durable ? 'yes' : 'no', String(g.members), String(g.lag), age(g.oldestUnackedTimeMs), String(g.redeliveries)]),
          ),
        );
      }
      for (const f of info.failures) ctx.err(`hadron: error: partition ${f.partition} did not answer: ${f.error} [${f.code}]\n`);
      return info.failures.length ? 1 : 0;
    });
  },
};

export const groupDescribe: CommandSpec = {
  path: ['group', 'describe'],
  summary: 'Show a consumer group per partition: acked offset, lag, members, batch in flight.',
  positionals: GROUP_ARG,
  options: { ...OUTPUT_OPTION, ...TIMEOUT_OPTION },
  async run(ctx) {
    const output = outputOf(ctx.values, this);
    const name = ctx.positionals[0]!;
    return withClient(ctx, this, async (client, timeoutMs) => {
      const info = await client.streamInfo({ timeoutMs });
      const g = info.groups.find((x) => x.name === name);
      if (!g) {
        ctx.err(`hadron: error: group '${name}' does not exist (groups: ${info.groups.map((x) => x.name).join(', ') || 'none'}) [NOT_FOUND]\n`);
        return 1;
      }
      const last = new Map(info.partitions.map((p) => [p.partition, p.lastOffset]));
      if (output === 'json') ctx.out(`${JSON.stringify(g)}\n`);
      else {
        ctx.out(`group ${g.name}: ${g.durable ? 'durable' : 'ephemeral'}, ${g.members} members, lag ${g.lag}, oldest unacked ${age(g.oldestUnackedTimeMs)}\n\n`);
        ctx.out(
          table(
            ['PARTITION', 'ACKED', 'LAST', 'LAG', 'MEMBERS', 'IN FLIGHT', 'REDELIVERIES', 'OLDEST UNACKED'],
            g.partitions.map((p) => [
              String(p.partition),
              String(p.ackedOffset),
              String(last.get(p.partition) ?? '?'),
              String(p.lag),
              String(p.members),
              p.inflight ? `…${p.inflight.lastOffset} (attempt ${p.inflight.attempt})` : '-',
              String(p.redeliveries),
              age(p.oldestUnackedTimeMs),
            ]),
          ),
        );
      }
      return 0;
    });
  },
};

export const groupDelete: CommandSpec = {
  path: ['group', 'delete'],
  summary: 'Delete a consumer group and its stored offsets (needs a token with all: true).',
  positionals: GROUP_ARG,
  options: { ...ADMIN_OPTIONS, ...OUTPUT_OPTION, ...TIMEOUT_OPTION },
  async run(ctx) {
    const output = outputOf(ctx.values, this);
    const name = ctx.positionals[0]!;
    const partition = intOption(ctx.values, 'partition', this);
    return withClient(ctx, this, async (client, timeoutMs) => {
      const res = await client.deleteGroup(name, { force: ctx.values.force === true, timeoutMs, ...(partition !== undefined ? { partition } : {}) });
      if (output === 'json') ctx.out(`${JSON.stringify(res)}\n`);
      else for (const r of res) ctx.out(`partition ${r.partition}: ${r.deleted ? 'deleted' : 'no such group'}${r.membersDisconnected ? ` (${r.membersDisconnected} members disconnected)` : ''}\n`);
      if (!res.some((r) => r.deleted)) {
        ctx.err(`hadron: error: group '${name}' does not exist [NOT_FOUND]\n`);
        return 1;
      }
      return 0;
    });
  },
};

export const groupReset: CommandSpec = {
  path: ['group', 'reset'],
  summary: 'Move a durable group’s position (needs a token with all: true).',
  description:
    'Exactly one of --to-beginning, --to-latest, --to-offset O (the next event delivered is O), or\n' +
    '--to-time T (ISO 8601 or Unix ms: the next event delivered is the first appended at or after T).',
  positionals: GROUP_ARG,
  options: {
    'to-beginning': { type: 'boolean', help: 'redeliver everything still stored' },
    'to-latest': { type: 'boolean', help: 'skip everything stored now' },
    'to-offset': { type: 'string', value: 'O', help: 'deliver from offset O (usually with --partition)' },
    'to-time': { type: 'string', value: 'T', help: 'deliver from the first event appended at or after T' },
    ...ADMIN_OPTIONS,
    ...OUTPUT_OPTION,
    ...TIMEOUT_OPTION,
  },
  async run(ctx) {
    const output = outputOf(ctx.values, this);
    const name = ctx.positionals[0]!;
    const v = ctx.values;
    const given = ['to-beginning', 'to-latest', 'to-offset', 'to-time'].filter((k) => v[k] !== undefined && v[k] !== false);
    if (given.length !== 1) throw new UsageError(`give exactly one of --to-beginning, --to-latest, --to-offset, --to-time${given.length ? ` (got ${given.map((g) => `--${g}`).join(', ')})` : ''}`, this.path);
    let target: ResetTarget;
    if (v['to-beginning']) target = { to: 'beginning' };
    else if (v['to-latest']) target = { to: 'latest' };
    else if (v['to-offset'] !== undefined) target = { to: 'offset', offset: intOption(v, 'to-offset', this, { min: 1 })! };
    else target = { to: 'time', time: parseTime(v['to-time'] as string, this) };
    const partition = intOption(v, 'partition', this);
    return withClient(ctx, this, async (client, timeoutMs) => {
      const res = await client.resetGroup(name, target, { force: v.force === true, timeoutMs, ...(partition !== undefined ? { partition } : {}) });
      if (output === 'json') ctx.out(`${JSON.stringify(res)}\n`);
      else {
        for (const r of res) {
          ctx.out(`partition ${r.partition}: acked offset ${r.previousAckedOffset} → ${r.ackedOffset} (next delivered: ${r.ackedOffset + 1})${r.membersDisconnected ? `, ${r.membersDisconnected} members disconnected` : ''}\n`);
        }
      }
      return 0;
    });
  },
};

function parseTime(raw: string, spec: CommandSpec): number {
  if (/^\d+$/.test(raw)) return Number(raw);
  // Only full ISO 8601 dates with a time zone: `Date.parse` would read "12/01" in local time.
  if (/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(raw)) {
    const ms = Date.parse(raw);
    if (Number.isFinite(ms)) return ms;
  }
  throw new UsageError(`--to-time must be an ISO 8601 time with a zone (2024-05-01T12:00:00Z) or Unix milliseconds, got ${JSON.stringify(raw)}`, spec.path);
}
