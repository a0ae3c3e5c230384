/**
 * `hadron stream sub`: joins a consumer group on every partition and prints one line per event
 * (reference §6), acking each delivery after printing it. With `--count N` it exits after N
 * events; a delivery that would go past N is printed up to N and then nacked, so the rest of it
 * goes to the group's next reader rather than being lost (those printed are redelivered too:
 * delivery is at-least-once).
 */
import type { StartPoint } from '@hadron/client';
import { UsageError, intOption, type CommandSpec } from '../args.js';
import { connect, serveUntilDone, stoppedByUser } from '../connect.js';
import { eventJson, eventText } from '../format.js';

export const streamSub: CommandSpec = {
  path: ['stream', 'sub'],
  summary: 'Subscribe to a stream as a member of a group and print each event.',
  description: 'Runs until Ctrl-C (or --count events). Each delivery is acked after its events are printed.',
  positionals: [],
  options: {
    group: { type: 'string', short: 'g', value: 'G', help: 'consumer group name (required)' },
    durable: { type: 'boolean', short: 'd', help: "keep the group's progress across restarts" },
    'batch-size': { type: 'string', short: 'b', value: 'N', help: 'most events per delivery (default 1)' },
    'start-beginning': { type: 'boolean', help: 'a new group starts at the first event' },
    'start-latest': { type: 'boolean', help: 'a new group starts after the last event (default)' },
    'start-offset': { type: 'string', value: 'N', help: 'a new group starts at offset N' },
    count: { type: 'string', value: 'N', help: 'exit after N events' },
    output: { type: 'string', value: 'text|json', help: 'output format (default text)' },
    timeout: { type: 'string', value: 'MS', help: 'give up if the cluster cannot be reached within MS (default 10000)' },
  },
  async run(ctx) {
    const v = ctx.values;
    const group = v.group as string | undefined;
    if (!group) throw new UsageError('--group is required', this.path);
    const starts = ['start-beginning', 'start-latest', 'start-offset'].filter((s) => v[s] !== undefined);
    if (starts.length > 1) throw new UsageError(`--${starts.join(', --')} are mutually exclusive`, this.path);
    const output = (v.output as string | undefined) ?? 'text';
    if (output !== 'text' && output !== 'json') throw new UsageError(`--output must be text or json, got ${JSON.stringify(output)}`, this.path);
    const batchSize = intOption(v, 'batch-size', this, { min: 1 }) ?? 1;
    const count = intOption(v, 'count', this, { min: 1 });
    const offset = intOption(v, 'start-offset', this);
    const timeoutMs = intOption(v, 'timeout', this, { min: 1 }) ?? 10_000;
    const startPoint: StartPoint = offset !== undefined ? { offset } : v['start-beginning'] ? 'beginning' : 'latest';

    const client = connect(ctx, { readyTimeoutMs: timeoutMs });
    try {
      await client.ready({ signal: ctx.signal });
      let printed = 0;
      let reached!: () => void;
      const countReached = new Promise<void>((r) => (reached = r));
      const sub = client.subscribe({ group, durable: Boolean(v.durable), batchSize, startPoint }, (d) => {
        const room = count === undefined ? d.events.length : Math.min(d.events.length, count - printed);
        for (const e of d.events.slice(0, room)) ctx.out(`${output === 'json' ? JSON.stringify(eventJson(e)) : eventText(e)}\n`);
        printed += room;
        if (count !== undefined && printed >= count) reached();
        if (room < d.events.length) throw new Error(`hadron stream sub: --count ${count} reached; ${d.events.length - room} event(s) of this delivery left for the group`);
      });
      await serveUntilDone(ctx, sub, countReached);
      return 0;
    } catch (err) {
      if (stoppedByUser(ctx, err)) return 0;
      throw err;
    } finally {
      await client.close();
    }
  },
};
