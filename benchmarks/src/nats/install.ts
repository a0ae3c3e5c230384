/**
 * Makes sure the peer's server binary exists: Debian's `nats-server` (2.9.10), installed with
 * apt-get when missing and we run as root (the only registry-sanctioned way to get it here).
 */
import { spawnSync } from 'node:child_process';
import { natsServerVersion } from '../lib/machine.js';

export function ensureNatsServer(install: boolean, log: (s: string) => void): string | { missing: string } {
  const have = natsServerVersion();
  if (have) return have;
  if (!install) return { missing: 'nats-server not installed (run: apt-get install -y nats-server, or drop --no-install)' };
  if (process.getuid?.() !== 0) return { missing: 'nats-server not installed and not root: install it with apt-get install -y nats-server' };
  log('nats-server missing: apt-get update && apt-get install -y nats-server');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', 'nats-server']]) {
    const r = spawnSync('apt-get', args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) return { missing: `apt-get ${args.join(' ')} failed (exit ${r.status})` };
  }
  return natsServerVersion() ?? { missing: 'nats-server still missing after apt-get install' };
}
