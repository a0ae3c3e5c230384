/**
 * Command-line parsing on `node:util` `parseArgs`: a command tree (`stream pub`, `dev`, …),
 * global options accepted anywhere on the line (the original required them before the
 * subcommand, reference §6), generated `--help` for every command, and usage errors that say
 * what is wrong and how to get help.
 */
import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Placeholder shown in help, e.g. `TYPE`. */
  value?: string;
  help: string;
}

export interface PositionalSpec {
  name: string;
  help: string;
  required: boolean;
}

export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface Output {
  out: (text: string) => void;
  err: (text: string) => void;
}

export interface CommandContext extends Output {
  values: Values;
  positionals: string[];
  env: NodeJS.ProcessEnv;
  /** Aborted on SIGINT/SIGTERM. */
  signal: AbortSignal;
}

export interface CommandSpec {
  /** Words after `hadron`, e.g. ['stream', 'pub']. */
  path: string[];
  summary: string;
  description?: string;
  options: Record<string, OptionSpec>;
  positionals: PositionalSpec[];
  run: (ctx: CommandContext) => Promise<number>;
}

/** A usage problem: printed with a pointer to `--help`, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly command: string[] = [],
  ) {
    super(message);
  }
}

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string', value: 'URL', help: 'bootstrap URL of the cluster (env HADRON_URL), e.g. http://127.0.0.1:7000' },
  token: { type: 'string', value: 'TOKEN', help: 'JWT of a Hadron Token (env HADRON_TOKEN)' },
  ca: { type: 'string', value: 'FILE', help: 'PEM CA certificate(s) to verify an https:// cluster with (env HADRON_CA_FILE)' },
  cert: { type: 'string', value: 'FILE', help: 'PEM client certificate for servers that verify clients (env HADRON_CERT_FILE; with --key)' },
  key: { type: 'string', value: 'FILE', help: 'PEM private key of --cert (env HADRON_KEY_FILE)' },
  external: { type: 'boolean', help: 'connect to the partitions\' external addresses (a Stream with spec.external, from outside the cluster; env HADRON_EXTERNAL=1)' },
  verbose: { type: 'boolean', short: 'v', help: 'debug logging on stderr' },
  help: { type: 'boolean', short: 'h', help: 'show help' },
};

/** Splits argv into the command path (words naming a known command or group) and the rest. */
export function findCommand(argv: readonly string[], commands: readonly CommandSpec[]): { path: string[]; rest: string[] } {
  const takesValue = new Set<string>();
  for (const [name, o] of Object.entries(GLOBAL_OPTIONS)) {
    if (o.type === 'string') {
      takesValue.add(`--${name}`);
      if (o.short) takesValue.add(`-${o.short}`);
    }
  }
  const path: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a.startsWith('-')) {
      rest.push(a);
      if (takesValue.has(a) && i + 1 < argv.length) rest.push(argv[++i]!);
      continue;
    }
    const candidate = [...path, a];
    if (commands.some((c) => candidate.every((w, k) => c.path[k] === w))) path.push(a);
    else {
      rest.push(...argv.slice(i));
      break;
    }
  }
  return { path, rest };
}

export function parseCommand(spec: CommandSpec, args: string[]): { values: Values; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...GLOBAL_OPTIONS, ...spec.options } as never,
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    const msg = (err as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new UsageError(msg, spec.path);
  }
  const values = parsed.values as Values;
  if (values.help) return { values, positionals: parsed.positionals };
  const required = spec.positionals.filter((p) => p.required).length;
  if (parsed.positionals.length < required) {
    throw new UsageError(`missing ${spec.positionals.slice(parsed.positionals.length).filter((p) => p.required).map((p) => `<${p.name}>`).join(' ')}`, spec.path);
  }
  if (parsed.positionals.length > spec.positionals.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[spec.positionals.length])}`, spec.path);
  }
  return { values, positionals: parsed.positionals };
}

function optionLines(options: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    return [flag, o.help + (o.multiple ? ' (repeatable)' : '')] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  return rows.map(([f, h]) => `  ${f.padEnd(width)}${h}`);
}

export function commandHelp(spec: CommandSpec): string {
  const pos = spec.positionals.map((p) => (p.required ? `<${p.name}>` : `[${p.name}]`)).join(' ');
  const lines = [`Usage: hadron ${spec.path.join(' ')} [options]${pos ? ` ${pos}` : ''}`, '', spec.summary];
  if (spec.description) lines.push('', spec.description);
  if (spec.positionals.length) {
    lines.push('', 'Arguments:');
    const width = Math.max(...spec.positionals.map((p) => p.name.length)) + 4;
    for (const p of spec.positionals) lines.push(`  ${`<${p.name}>`.padEnd(width)}${p.help}`);
  }
  if (Object.keys(spec.options).length) lines.push('', 'Options:', ...optionLines(spec.options));
  lines.push('', 'Global options:', ...optionLines(GLOBAL_OPTIONS));
  return `${lines.join('\n')}\n`;
}

export function groupHelp(path: string[], commands: readonly CommandSpec[]): string {
  const below = commands.filter((c) => path.every((w, k) => c.path[k] === w));
  const width = Math.max(...below.map((c) => c.path.join(' ').length)) + 4;
  const lines = [
    `Usage: hadron ${path.length ? `${path.join(' ')} ` : ''}<command> [options]`,
    '',
    path.length === 0 ? 'hadron — publish, subscribe and run a local Hadron cluster.' : `Commands of \`hadron ${path.join(' ')}\`:`,
    '',
    'Commands:',
    ...below.map((c) => `  ${c.path.join(' ').padEnd(width)}${c.summary}`),
    '',
    'Global options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    `Run \`hadron <command> --help\` for a command's options.`,
  ];
  return `${lines.join('\n')}\n`;
}

/** Parses a non-negative integer flag value, or throws a usage error naming the flag. */
export function intOption(values: Values, name: string, spec: CommandSpec, opts: { min?: number; max?: number } = {}): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !/^\d+$/.test(raw)) throw new UsageError(`--${name} must be a non-negative integer, got ${JSON.stringify(raw)}`, spec.path);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
    throw new UsageError(`--${name} must be ${opts.min !== undefined ? `≥ ${opts.min}` : ''}${opts.max !== undefined ? ` and ≤ ${opts.max}` : ''}, got ${raw}`, spec.path);
  }
  return n;
}
