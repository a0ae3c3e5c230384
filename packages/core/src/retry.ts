/**
 * The one retry helper: exponential backoff with full jitter, only for retriable errors.
 */
import { isRetriable } from './errors.js';

export interface BackoffOptions {
  /** First delay in ms (default 100). */
  baseMs?: number;
  /** Largest delay in ms (default 5000). */
  maxMs?: number;
}

/** Delay before retry number `attempt` (1-based): full jitter over base·2^(attempt-1), capped. */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = opts.baseMs ?? 100;
  const cap = opts.maxMs ?? 5000;
  const ceiling = Math.min(cap, base * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Deterministic exponential delay without jitter (used where tests assert exact schedules). */
export function exponentialDelay(attempt: number, opts: BackoffOptions = {}): number {
  const base = opts.baseMs ?? 100;
  const cap = opts.maxMs ?? 5000;
  return Math.min(cap, base * 2 ** Math.min(30, Math.max(0, attempt - 1)));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryOptions extends BackoffOptions {
  /** Attempts in total, the first included (default 5). */
  attempts?: number;
  signal?: AbortSignal;
  retriable?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 5;
  const retriable = opts.retriable ?? isRetriable;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || !retriable(err) || opts.signal?.aborted) throw err;
      const d = backoffDelay(attempt, opts);
      opts.onRetry?.(err, attempt, d);
      await sleep(d, opts.signal);
    }
  }
}
