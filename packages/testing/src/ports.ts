import fs from 'node:fs';
import net from 'node:net';

/**
 * Finds `n` distinct free loopback TCP ports, below the ephemeral range (see `freePortRange`):
 * a port the kernel handed out for bind(0) is an ephemeral one, and between its release and the
 * test's server binding it, any outgoing connection on the machine could take it (EADDRINUSE
 * under load).
 */
export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) {
    const p = await freePortRange(1);
    if (!ports.includes(p)) ports.push(p);
  }
  return ports;
}

/**
 * The lowest port the kernel hands out as an ephemeral (source) port. Ports a test binds later
 * (restarts keep their port) are taken below it, so no outgoing connection on this machine can
 * occupy one in between (that made start-ups fail with EADDRINUSE under load).
 */
function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 12000 ? low : 32768;
  } catch {
    return 32768;
  }
}

/**
 * Finds a free base port such that base..base+n-1 are all free (below the ephemeral range), and
 * so are the windows at each extra offset (base+off..base+off+n-1): a `hadron dev` run also binds
 * its replication ports 6000 above its client ports.
 */
export async function freePortRange(n: number, offsets: readonly number[] = [0]): Promise<number> {
  const high = ephemeralLow() - n - Math.max(0, ...offsets);
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 10000 + Math.floor(Math.random() * (high - 10000));
    const servers: net.Server[] = [];
    let ok = true;
    for (const off of offsets) {
      for (let i = 0; i < n && ok; i++) {
        const s = net.createServer();
        ok = await new Promise<boolean>((resolve) => {
          s.once('error', () => resolve(false));
          s.listen(base + off + i, '127.0.0.1', () => resolve(true));
        });
        if (ok) servers.push(s);
      }
    }
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    if (ok) return base;
  }
  throw new Error('no free port range found');
}

/** `hadron dev`'s replication ports sit this far above its client ports (cli/dev/cluster.ts). */
const DEV_SERVER_PORT_OFFSET = 6000;

/**
 * Ports for one `hadron dev` run: `port` (--port) with its client/metrics window and its
 * replication window free, and a separate `httpPort` (--http-port) window. `n` ports per window
 * (100 = one stream slot).
 */
export async function freeDevPorts(n = 100): Promise<{ port: number; httpPort: number }> {
  return { port: await freePortRange(n, [0, DEV_SERVER_PORT_OFFSET]), httpPort: await freePortRange(n) };
}
