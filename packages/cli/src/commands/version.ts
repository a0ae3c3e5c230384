/**
 * `hadron version` (also `hadron --version`): the CLI's package version and the Node.js running it.
 */
import fs from 'node:fs';
import { type CommandSpec } from '../args.js';
import { OUTPUT_OPTION, outputOf } from '../table.js';

/** The version in packages/cli/package.json (dist/commands → ../../package.json). */
export function cliVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export const version: CommandSpec = {
  path: ['version'],
  summary: 'Print the hadron CLI version.',
  positionals: [],
  options: { ...OUTPUT_OPTION },
  async run(ctx) {
    const output = outputOf(ctx.values, this);
    const v = cliVersion();
    ctx.out(output === 'json' ? `${JSON.stringify({ version: v, node: process.version })}\n` : `hadron ${v}\n`);
    return 0;
  },
};
