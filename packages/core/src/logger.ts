/**
 * Structured logging through pino. Components receive a `Logger` (never a global); libraries
 * never write to the console themselves.
 */
import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export function isLogLevel(s: string): s is LevelWithSilent {
  return LEVELS.has(s);
}

/** A JSON logger writing to stdout (servers) or a given file descriptor (2 for CLIs). */
export function createLogger(opts: { level?: string; name?: string; fd?: number; base?: Record<string, unknown> } = {}): Logger {
  const level = opts.level && isLogLevel(opts.level) ? opts.level : 'info';
  return pino(
    { level, name: opts.name, base: opts.base ?? {}, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd: opts.fd ?? 1, sync: false }),
  );
}

/** A logger that discards everything (tests, library defaults). */
export const silentLogger: Logger = pino({ level: 'silent' });
