/**
 * What every client command shares: the URL and token from flags or the environment (with the
 * original's error texts, reference §6), a logger on stderr, and a connected client.
 */
import { createLogger, type Logger } from '@hadron/core';
import { HadronError, createClient, type ClientOptions, type HadronClient } from '@hadron/client';
import { UsageError, type CommandContext } from './args.js';

export const NO_URL = 'the URL of the Hadron cluster must be provided via HADRON_URL env var or --url CLI option';
export const NO_TOKEN = 'no credentials provided; set credentials via HADRON_TOKEN env var or --token CLI option';

export function cliLogger(ctx: Pick<CommandContext, 'values'>): Logger {
  return createLogger({ level: ctx.values.verbose ? 'debug' : 'warn', name: 'hadron', fd: 2 });
}

/**
 * Creates a client from `--url`/`HADRON_URL`, `--token`/`HADRON_TOKEN` and, for https:// URLs,
 * `--ca`/`HADRON_CA_FILE` (+ `--cert`/`--key` for client certificates). A flag given with an
 * http:// URL is an error (the client says so); the environment variables only apply to https://,
 * so a profile exporting HADRON_CA_FILE does not break cleartext dev clusters.
 */
export function connect(ctx: CommandContext, extra: Partial<ClientOptions> = {}): HadronClient {
  const url = (ctx.values.url as string | undefined) ?? ctx.env.HADRON_URL;
  const token = (ctx.values.token as string | undefined) ?? ctx.env.HADRON_TOKEN;
  if (!url) throw new UsageError(NO_URL);
  if (!token) throw new UsageError(NO_TOKEN);
  const https = /^https:\/\//i.test(url);
  const file = (flag: string, env: string): string | undefined => (ctx.values[flag] as string | undefined) ?? (https ? ctx.env[env] || undefined : undefined);
  const caFile = file('ca', 'HADRON_CA_FILE');
  const certFile = file('cert', 'HADRON_CERT_FILE');
  const keyFile = file('key', 'HADRON_KEY_FILE');
  const external = ctx.values.external === true || ctx.env.HADRON_EXTERNAL === '1';
  return createClient({
    url,
    token,
    logger: cliLogger(ctx),
    ...(external ? { mode: 'external' as const } : {}),
    ...(caFile ? { caFile } : {}),
    ...(certFile ? { certFile } : {}),
    ...(keyFile ? { keyFile } : {}),
    ...extra,
  });
}

/**
 * Serves a subscription until `countReached` resolves (`--count`), Ctrl-C, or the subscription
 * ends by itself; then closes it, letting a handler in flight finish and send its ack.
 */
export async function serveUntilDone(ctx: CommandContext, sub: { close(): Promise<void>; done: Promise<unknown> }, countReached: Promise<void>): Promise<void> {
  const stopped = new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await Promise.race([countReached, stopped, sub.done]);
  await sub.close();
  await sub.done;
}

/** True when `err` only reflects the user's Ctrl-C, which is a clean exit (0). */
export function stoppedByUser(ctx: CommandContext, err: unknown): boolean {
  return ctx.signal.aborted && !(err instanceof HadronError && err.code !== 'CANCELLED');
}
