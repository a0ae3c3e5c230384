/**
 * A loopback TCP proxy that behaves like a Kubernetes Service address in front of a pod: new
 * connections go to the current target (`retarget` = the pod was replaced and got a new IP),
 * and `blackholeExisting()` makes the connections already open behave like conntrack entries
 * pointing at a deleted pod's IP — bytes sent into them vanish and nothing ever comes back: no
 * data, no FIN, no RST. This is what a client sees when a pod disappears without closing its
 * connections (SIGKILL, node loss, network torn down before the process exited).
 */
import net from 'node:net';

export interface TcpProxy {
  /** The port clients connect to (127.0.0.1). */
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Where new connections go from now on. */
  retarget(port: number): void;
  /** Existing connections stop carrying anything in either direction, and are never closed. */
  blackholeExisting(): void;
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 (a free port unless `port` is given) forwarding to `target`. */
export async function startTcpProxy(opts: { target: number; port?: number }): Promise<TcpProxy> {
  let target = opts.target;
  let accepted = 0;
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  const held: net.Socket[] = [];
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect({ host: '127.0.0.1', port: target });
    const pair = { client, upstream };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (): void => {
      if (!pairs.delete(pair)) return;
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get accepted() {
      return accepted;
    },
    retarget(p) {
      target = p;
    },
    blackholeExisting() {
      for (const pair of pairs) {
        pairs.delete(pair);
        const { client, upstream } = pair;
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.removeAllListeners('close').removeAllListeners('error').on('error', () => undefined);
        // Whatever the client sends is read and dropped (a black hole, not a full buffer that
        // would stall its writes and give it a hint); the socket stays open until close().
        client.on('data', () => undefined);
        client.resume();
        held.push(client);
        upstream.removeAllListeners('close').removeAllListeners('error').on('error', () => undefined);
        upstream.destroy();
      }
    },
    async close() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      for (const s of held) s.destroy();
      held.length = 0;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
