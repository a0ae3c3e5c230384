/**
 * The web console of `hadron dev` (docs/console.md): the same server as `hadron console`, in the
 * dev process, for the first Stream of the manifests. A console that cannot start (its port is
 * taken) does not stop the cluster: the line printed says why and how to choose another port.
 */
import type { Logger } from '@hadron/core';
import { ConsoleServer } from '../console/server.js';
import type { DevCluster } from './cluster.js';

export interface DevConsoleOptions {
  port: number;
  logger: Logger;
  /** With `hadron dev --tls`: the local CA the console's client trusts. */
  caFile?: string;
}

/** Starts the console; resolves with the server (if it started) and the line to print. */
export async function startDevConsole(c: DevCluster, o: DevConsoleOptions): Promise<{ server: ConsoleServer | undefined; line: string }> {
  const stream = c.firstStream();
  const url = stream ? c.url(stream) : undefined;
  if (!stream || !url) return { server: undefined, line: 'console not started: no Stream in the manifests' };
  const server = new ConsoleServer({ url, logger: o.logger, client: o.caFile ? { caFile: o.caFile } : {} });
  try {
    const at = await server.listen('127.0.0.1', o.port);
    return { server, line: `console of stream ${stream} at ${at} (sign in with one of the tokens above)` };
  } catch (err) {
    await server.close().catch(() => undefined);
    return { server: undefined, line: `console not started: 127.0.0.1:${o.port}: ${(err as Error).message}; choose another port with --console-port, or --no-console` };
  }
}
