/**
 * `hadron pipeline sub <pipeline> <stage>`: serves one pipeline stage (reference §6), printing
 * each delivery and acking it with the output event `{id: root id, source: <stage>, type:
 * "empty"}` (or the --output-type/--output-data given).
 */
import { UsageError, intOption, type CommandSpec } from '../args.js';
import { connect, serveUntilDone, stoppedByUser } from '../connect.js';
import { stageDeliveryLine } from '../format.js';
import { HadronError } from '@hadron/client';

export const pipelineSub: CommandSpec = {
  path: ['pipeline', 'sub'],
  summary: 'Serve a pipeline stage: print each delivery and ack it with an output event.',
  description: 'Runs until Ctrl-C (or --count deliveries).',
  positionals: [
    { name: 'pipeline', help: 'the Pipeline name', required: true },
    { name: 'stage', help: 'the stage of the pipeline to serve', required: true },
  ],
  options: {
    'output-type': { type: 'string', value: 'TYPE', help: 'type of the output event (default "empty")' },
    'output-data': { type: 'string', value: 'DATA', help: 'data of the output event (default none)' },
    count: { type: 'string', value: 'N', help: 'exit after N deliveries' },
    output: { type: 'string', value: 'text|json', help: 'output format (default text)' },
    timeout: { type: 'string', value: 'MS', help: 'give up if the cluster cannot be reached within MS (default 10000)' },
  },
  async run(ctx) {
    const v = ctx.values;
    const [pipeline, stage] = ctx.positionals as [string, string];
    const output = (v.output as string | undefined) ?? 'text';
    if (output !== 'text' && output !== 'json') throw new UsageError(`--output must be text or json, got ${JSON.stringify(output)}`, this.path);
    const count = intOption(v, 'count', this, { min: 1 });
    const timeoutMs = intOption(v, 'timeout', this, { min: 1 }) ?? 10_000;
    const outType = (v['output-type'] as string | undefined) ?? 'empty';
    const outData = (v['output-data'] as string | undefined) ?? '';
    const client = connect(ctx, { readyTimeoutMs: timeoutMs });
    try {
      await client.ready({ signal: ctx.signal });
      let handled = 0;
      let reached!: () => void;
      const countReached = new Promise<void>((r) => (reached = r));
      const sub = client.pipelineStage(pipeline, stage, (d) => {
        if (count !== undefined && handled >= count) throw new Error(`hadron pipeline sub: --count ${count} reached`);
        ctx.out(`${stageDeliveryLine(d, output)}\n`);
        if (++handled === count) reached();
        return { id: d.rootEvent.id, source: stage, specversion: '1.0', type: outType, optattrs: {}, data: outData };
      });
      await serveUntilDone(ctx, sub, countReached);
      return 0;
    } catch (err) {
      if (stoppedByUser(ctx, err)) return 0;
      // The server keeps the original's text, which does not name the pipeline: add it.
      if (err instanceof HadronError && err.code === 'NOT_FOUND') {
        throw new HadronError('NOT_FOUND', `pipeline '${pipeline}' not found: ${err.message} (is the Pipeline applied, with sourceStream set to this stream?)`, { cause: err });
      }
      throw err;
    } finally {
      await client.close();
    }
  },
};
