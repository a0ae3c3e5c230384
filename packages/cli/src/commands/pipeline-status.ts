/**
 * `hadron pipeline status <pipeline>`: the pipeline's active instances on every partition, with
 * each stage's state (waiting, ready, delivered, done) and attempts, and the last source offset
 * scanned. Exits 1 when no partition knows the pipeline.
 */
import { UsageError, intOption, type CommandSpec } from '../args.js';
import { connect } from '../connect.js';

export const pipelineStatus: CommandSpec = {
  path: ['pipeline', 'status'],
  summary: 'Show a pipeline’s active instances and stage states on every partition.',
  description: 'Asks every partition through the stream.Inspection service.',
  positionals: [{ name: 'pipeline', help: 'the Pipeline name', required: true }],
  options: {
    output: { type: 'string', value: 'text|json', help: 'output format (default text)' },
    timeout: { type: 'string', value: 'MS', help: 'give up if the cluster cannot be reached within MS (default 10000)' },
    'root-id': { type: 'string', value: 'ID', help: 'only the instance (active or recently completed) whose root event has this id' },
    completed: { type: 'boolean', help: 'also list recently completed instances (at most 100 per partition)' },
  },
  async run(ctx) {
    const [pipeline] = ctx.positionals as [string];
    const output = (ctx.values.output as string | undefined) ?? 'text';
    if (output !== 'text' && output !== 'json') throw new UsageError(`--output must be text or json, got ${JSON.stringify(output)}`, this.path);
    const timeoutMs = intOption(ctx.values, 'timeout', this, { min: 1 }) ?? 10_000;
    const client = connect(ctx, { readyTimeoutMs: timeoutMs });
    try {
      await client.ready({ signal: ctx.signal });
      let parts = await client.pipelineStatus(pipeline, { timeoutMs });
      const rootId = ctx.values['root-id'] as string | undefined;
      if (rootId !== undefined) {
        parts = parts.map((p) => ('error' in p ? p : { ...p, instances: p.instances.filter((i) => i.rootEventId === rootId), completed: p.completed.filter((i) => i.rootEventId === rootId) }));
      } else if (!ctx.values.completed) {
        parts = parts.map((p) => ('error' in p ? p : { ...p, completed: [] }));
      }
      if (output === 'json') {
        // Stage outputs' data as base64 (a Uint8Array would become {"0": …}).
        for (const p of parts) ctx.out(`${JSON.stringify(p, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v))}\n`);
      } else {
        for (const p of parts) {
          if ('error' in p) {
            ctx.out(`partition ${p.partition}: ${p.error} [${p.code}]\n`);
            continue;
          }
          ctx.out(`partition ${p.partition}: last offset processed ${p.lastOffsetProcessed}, ${p.instances.length}/${p.maxParallel} active instances\n`);
          for (const i of p.instances) {
            ctx.out(`  offset ${i.offset} (root ${i.rootEventId}): ${i.stages.map((s) => `${s.name}=${s.state}${s.attempts > 1 ? `(${s.attempts} attempts)` : ''}`).join(' ')}\n`);
          }
          for (const i of p.completed) {
            ctx.out(`  offset ${i.offset} (root ${i.rootEventId}): completed ${new Date(i.completedAtMs).toISOString()} ${i.stages.map((s) => `${s.name}=${s.state}${s.attempts > 1 ? `(${s.attempts} attempts)` : ''}`).join(' ')}\n`);
          }
        }
      }
      if (parts.every((p) => 'error' in p)) {
        ctx.err(`hadron: error: pipeline ${pipeline} is not running on any partition\n`);
        return 1;
      }
      if (rootId !== undefined && parts.every((p) => 'error' in p || (p.instances.length === 0 && p.completed.length === 0))) {
        ctx.err(`hadron: error: no active or recently completed instance of pipeline ${pipeline} has root event id ${JSON.stringify(rootId)}\n`);
        return 1;
      }
      return 0;
    } finally {
      await client.close();
    }
  },
};
