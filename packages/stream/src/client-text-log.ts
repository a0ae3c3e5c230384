/**
 * Logging of client-provided text (nack reasons, mismatched acks) under a budget (issue 14
 * item 9): a member that nacked forever with 1 MiB reasons wrote 5 MB of server log in 15 s.
 *
 * - Text is cut to `maxChars` characters (default 256) with the number of characters dropped,
 *   and control characters are escaped by the JSON logger anyway.
 * - Per key (a group, or a pipeline stage) at most `perSecond` lines are written in any
 *   one-second window; the rest are counted (metric + `suppressed` on the next line written).
 * - At most `maxKeys` keys are tracked; the oldest is forgotten first, so the table is bounded
 *   however many groups come and go.
 */
import type { Logger } from '@hadron/core';

export interface ClientTextLogOptions {
  logger: Logger;
  /** Called for every line dropped by the rate limit. */
  onSuppressed: () => void;
  maxChars?: number;
  perSecond?: number;
  maxKeys?: number;
  /** Clock, for tests. */
  now?: () => number;
}

interface Window {
  start: number;
  written: number;
  suppressed: number;
}

/** Cuts `text` to `max` characters, saying how much was cut. */
export function truncateClientText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

export class ClientTextLog {
  private readonly windows = new Map<string, Window>();
  private readonly maxChars: number;
  private readonly perSecond: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(private readonly o: ClientTextLogOptions) {
    this.maxChars = o.maxChars ?? 256;
    this.perSecond = o.perSecond ?? 5;
    this.maxKeys = o.maxKeys ?? 1000;
    this.now = o.now ?? Date.now;
  }

  /**
   * Logs `msg` at `level` with `fields`, plus `text` (client-provided) under `textField`, if
   * the key's budget allows; otherwise counts it.
   */
  log(level: 'info' | 'warn', key: string, fields: Record<string, unknown>, textField: string, text: string | undefined, msg: string): void {
    const now = this.now();
    let w = this.windows.get(key);
    if (!w) {
      if (this.windows.size >= this.maxKeys) {
        const oldest = this.windows.keys().next().value;
        if (oldest !== undefined) this.windows.delete(oldest);
      }
      w = { start: now, written: 0, suppressed: 0 };
      this.windows.set(key, w);
    }
    if (now - w.start >= 1000) {
      w.start = now;
      w.written = 0;
    }
    if (w.written >= this.perSecond) {
      w.suppressed++;
      this.o.onSuppressed();
      return;
    }
    w.written++;
    const out: Record<string, unknown> = { ...fields };
    if (text !== undefined) out[textField] = truncateClientText(text, this.maxChars);
    if (w.suppressed > 0) {
      out.suppressed = w.suppressed;
      w.suppressed = 0;
    }
    this.o.logger[level](out, msg);
  }

  /** Forgets a key (its group or stage is gone). */
  forget(key: string): void {
    this.windows.delete(key);
  }
}
