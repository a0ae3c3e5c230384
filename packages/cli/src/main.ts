/**
 * `hadron`: the command line (reference §6, DESIGN.md). Exit codes: 0 success, 1 failure,
 * 2 usage error. Results go to stdout, diagnostics to stderr.
 */
import { HadronError } from '@hadron/core';
import { GLOBAL_OPTIONS, UsageError, commandHelp, findCommand, groupHelp, parseCommand, type CommandSpec, type Output } from './args.js';
import { dev } from './commands/dev.js';
import { pipelineStatus } from './commands/pipeline-status.js';
import { pipelineSub } from './commands/pipeline-sub.js';
import { streamPub } from './commands/stream-pub.js';
import { streamSub } from './commands/stream-sub.js';
import { streamInfo } from './commands/stream-info.js';
import { streamGet } from './commands/stream-get.js';
import { groupDelete, groupDescribe, groupList, groupReset } from './commands/group.js';
import { version } from './commands/version.js';
import { triggerDescribe, triggerList } from './commands/trigger.js';
import { benchPub, benchSub } from './commands/bench.js';
import { consoleCommand } from './commands/console.js';

export const COMMANDS: readonly CommandSpec[] = [
  streamPub,
  streamSub,
  streamInfo,
  streamGet,
  groupList,
  groupDescribe,
  groupDelete,
  groupReset,
  triggerList,
  triggerDescribe,
  pipelineSub,
  pipelineStatus,
  benchPub,
  benchSub,
  consoleCommand,
  dev,
  version,
];

export interface MainOptions extends Partial<Output> {
  env?: NodeJS.ProcessEnv;
  /** Aborts long-running commands (the bin wires SIGINT/SIGTERM to it). */
  signal?: AbortSignal;
}

export async function main(argv: readonly string[], o: MainOptions = {}): Promise<number> {
  const out = o.out ?? ((s: string) => void process.stdout.write(s));
  const err = o.err ?? ((s: string) => void process.stderr.write(s));
  const env = o.env ?? process.env;
  // `hadron --version` / `-V`, as every CLI has; the same as `hadron version`.
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) argv = ['version'];
  const { path, rest } = findCommand(argv, COMMANDS);
  const spec = COMMANDS.find((c) => c.path.length === path.length && c.path.every((w, i) => path[i] === w));
  try {
    if (!spec) {
      // A group (`hadron`, `hadron stream`) or an unknown word.
      const unknown = rest.find((a) => !a.startsWith('-'));
      const wantsHelp = rest.some((a) => a === '--help' || a === '-h' || a === 'help');
      if (unknown !== undefined && unknown !== 'help') throw new UsageError(`unknown command \`${[...path, unknown].join(' ')}\``, path);
      if (wantsHelp || unknown === 'help') {
        out(groupHelp(path, COMMANDS));
        return 0;
      }
      const flag = rest.find((a) => a.startsWith('-') && !Object.keys(GLOBAL_OPTIONS).some((g) => a === `--${g}` || a.startsWith(`--${g}=`)));
      err(groupHelp(path, COMMANDS));
      if (flag !== undefined) err(`\nhadron: unknown option ${flag}\n`);
      return 2;
    }
    const { values, positionals } = parseCommand(spec, rest);
    if (values.help) {
      out(commandHelp(spec));
      return 0;
    }
    return await spec.run({ values, positionals, env, out, err, signal: o.signal ?? new AbortController().signal });
  } catch (e) {
    if (e instanceof UsageError) {
      const where = e.command.length ? e.command : path;
      err(`hadron: ${e.message}\nRun \`hadron ${where.length ? `${where.join(' ')} ` : ''}--help\` for usage.\n`);
      return 2;
    }
    err(`hadron: error: ${describe(e)}\n`);
    return 1;
  }
}

function describe(e: unknown): string {
  if (e instanceof HadronError) return `${e.message} [${e.code}]`;
  if (e instanceof Error) return e.message;
  return String(e);
}
