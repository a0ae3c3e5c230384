/**
 * Plain-text tables and human units for the inspection commands (`stream info`, `group …`).
 */
import { UsageError, type CommandSpec, type Values } from './args.js';

/** Left-aligned columns separated by two spaces; the header row first. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}

/** 1536 → "1.5 KiB". */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) (v /= 1024), u++;
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Age of a Unix-ms time as "3s", "5m", "2h", "4d"; "-" when absent. */
export function age(ms: number | undefined, now = Date.now()): string {
  if (ms === undefined) return '-';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

export const OUTPUT_OPTION = { output: { type: 'string', value: 'text|json', help: 'output format (default text)' } } as const;
export const TIMEOUT_OPTION = { timeout: { type: 'string', value: 'MS', help: 'give up if the cluster cannot be reached within MS (default 10000)' } } as const;

/** `--output` checked: text or json. */
export function outputOf(values: Values, spec: CommandSpec): 'text' | 'json' {
  const output = (values.output as string | undefined) ?? 'text';
  if (output !== 'text' && output !== 'json') throw new UsageError(`--output must be text or json, got ${JSON.stringify(output)}`, spec.path);
  return output;
}
