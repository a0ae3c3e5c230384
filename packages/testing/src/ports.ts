import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * Ports handed out here are also reserved across processes: test files run in parallel processes,
 * and a range that was free when one process checked it could be picked by another before either
 * bound it (EADDRINUSE under load). Each block of BLOCK ports is claimed by creating a file named
 * after it (O_EXCL) holding the claiming pid; claims are dropped when the process exits, and a
 * claim whose process is gone (kill -9) is taken over.
 */
const BLOCK = 10;
const CLAIMS_DIR = path.join(os.tmpdir(), 'hadron-test-ports');
const claimed = new Set<string>();
let exitHook = false;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function claimBlock(block: number): boolean {
  const file = path.join(CLAIMS_DIR, String(block));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      claimed.add(file);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(fs.readFileSync(file, 'utf8').trim());
      if (owner === process.pid || (Number.isInteger(owner) && owner > 0 && alive(owner))) return false;
      fs.rmSync(file, { force: true });
    }
  }
  return false;
}

/** Claims every block that base+off..base+off+n-1 touches, for each offset; all or nothing. */
function claimRange(base: number, n: number, offsets: readonly number[]): boolean {
  fs.mkdirSync(CLAIMS_DIR, { recursive: true });
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const f of claimed) fs.rmSync(f, { force: true });
    });
  }
  const got: number[] = [];
  for (const off of offsets) {
    for (let b = Math.floor((base + off) / BLOCK); b <= Math.floor((base + off + n - 1) / BLOCK); b++) {
      if (got.includes(b)) continue;
      if (!claimBlock(b)) {
        for (const g of got) {
          const f = path.join(CLAIMS_DIR, String(g));
          claimed.delete(f);
          fs.rmSync(f, { force: true });
        }
        return false;
      }
      got.push(b);
    }
  }
  return true;
}

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
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 10000 + Math.floor(Math.random() * (high - 10000));
    if (!claimRange(base, n, offsets)) continue;
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
