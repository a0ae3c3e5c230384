/**
 * Environment parsing helpers. Configs are parsed once at start into frozen objects; a bad or
 * missing variable fails start-up with a `CONFIG_INVALID` error that names the variable.
 */
import { HadronError } from './errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

function fail(name: string, problem: string): never {
  throw new HadronError('CONFIG_INVALID', `invalid configuration: ${name} ${problem}`, { context: { variable: name } });
}

export function envString(env: Env, name: string, def?: string): string {
  const v = env[name];
  if (v === undefined || v === '') {
    if (def !== undefined) return def;
    fail(name, 'is required but not set');
  }
  return v;
}

export function envInt(env: Env, name: string, opts: { def?: number; min?: number; max?: number } = {}): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    if (opts.def !== undefined) return opts.def;
    fail(name, 'is required but not set');
  }
  if (!/^-?\d+$/.test(raw.trim())) fail(name, `must be an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) fail(name, `is out of range: ${raw}`);
  if (opts.min !== undefined && n < opts.min) fail(name, `must be ≥ ${opts.min}, got ${n}`);
  if (opts.max !== undefined && n > opts.max) fail(name, `must be ≤ ${opts.max}, got ${n}`);
  return n;
}

export function envPort(env: Env, name: string, def?: number): number {
  return envInt(env, name, { ...(def === undefined ? {} : { def }), min: 0, max: 65535 });
}

export function envEnum<T extends string>(env: Env, name: string, values: readonly T[], def?: T): T {
  const v = env[name];
  if (v === undefined || v === '') {
    if (def !== undefined) return def;
    fail(name, `is required but not set (one of ${values.join(', ')})`);
  }
  if (!(values as readonly string[]).includes(v)) fail(name, `must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

export function envBool(env: Env, name: string, def: boolean): boolean {
  const v = env[name];
  if (v === undefined || v === '') return def;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  fail(name, `must be true or false, got ${JSON.stringify(v)}`);
}
