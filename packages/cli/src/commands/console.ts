/**
 * `hadron console`: serves the web console (streams and partitions, groups with lag over time,
 * an event browser, pipelines drawn as their DAG with instances and stage outputs, tokens) on a
 * local port; prints its URL. The browser signs in with a token (docs/console.md). `hadron dev`
 * starts the same server (dev/console.ts); the chart can deploy it (console.enabled).
 */
import { UsageError, intOption, type CommandSpec } from '../args.js';
import { cliLogger } from '../connect.js';
import { ConsoleServer } from '../console/server.js';

export const consoleCommand: CommandSpec = {
  path: ['console'],
  summary: 'Serve the web console for the cluster at --url; prints its address.',
  description:
    'Assets are served from the CLI package (no internet access needed). The page asks for a token and\n' +
    'shows the stream, its groups, an event browser, its Pipelines drawn as DAGs with their instances,\n' +
    'and the Tokens (names and permissions; needs a token with all: true).',
  positionals: [],
  options: {
    host: { type: 'string', value: 'HOST', help: 'address to listen on (default 127.0.0.1)' },
    port: { type: 'string', value: 'PORT', help: 'port to listen on (default 7900; 0 = any free port)' },
  },
  async run(ctx) {
    const url = (ctx.values.url as string | undefined) ?? ctx.env.HADRON_URL;
    if (!url) throw new UsageError('the URL of the Hadron cluster must be provided via HADRON_URL env var or --url CLI option', this.path);
    const caFile = (ctx.values.ca as string | undefined) ?? (/^https:/i.test(url) ? ctx.env.HADRON_CA_FILE || undefined : undefined);
    const server = new ConsoleServer({ url, logger: cliLogger(ctx), client: caFile ? { caFile } : {} });
    const at = await server.listen((ctx.values.host as string | undefined) ?? '127.0.0.1', intOption(ctx.values, 'port', this, { max: 65535 }) ?? 7900);
    ctx.out(`hadron console: serving ${url} at ${at}\n`);
    try {
      await new Promise<void>((resolve) => {
        if (ctx.signal.aborted) resolve();
        else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    } finally {
      await server.close();
      ctx.out('hadron console: stopped\n');
    }
    return 0;
  },
};
