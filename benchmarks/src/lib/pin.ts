/**
 * CPU pinning for the bench (issue 11 item 4): the load generator (the workload's child process)
 * runs on one set of CPUs and the servers it starts on the others, so that the generator's GC
 * pauses and stalls do not land in the servers' percentiles and the two do not steal each
 * other's core. Linux `taskset` only; without it (or with fewer than 2 CPUs, or `--no-pin`)
 * nothing is pinned and the results header says so.
 *
 * How: the child is started under `taskset -c <generator CPUs>` (so it never runs elsewhere);
 * a watcher then scans its process group every `intervalMs` and moves every *server* process
 * (matched by command line: hadron-stream, nats-server, the Kafka broker) with all its threads
 * to the server CPUs (`taskset -a -p`). Threads a server creates later inherit its affinity.
 * Helper tools a workload starts (Kafka's ProducerPerformance, which is the load generator
 * there) stay with the generator.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export interface CpuPlan {
  /** CPUs for the load generator, e.g. "1". */
  generator: string;
  /** CPUs for the servers, e.g. "0". */
  servers: string;
}

/** Command lines of server processes (everything else in the group counts as load generator). */
const SERVER_CMDLINE = [/hadron-stream\.js/, /(^|\/)nats-server(\0|$)/, /\bkafka\.Kafka\b/];

/** The CPUs this process may run on (from /proc), or undefined when unknown. */
function allowedCpus(): number[] | undefined {
  try {
    const m = /^Cpus_allowed_list:\s*(.+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (!m) return undefined;
    const out: number[] = [];
    for (const part of m[1]!.trim().split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let c = a!; c <= (b ?? a!); c++) out.push(c);
    }
    return out;
  } catch {
    return undefined;
  }
}

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * The split to use, or a reason why there is none. The generator gets the last allowed CPU,
 * the servers the others (on the 2-CPU machine: generator on CPU 1, servers on CPU 0).
 */
export function planCpus(enabled: boolean): CpuPlan | { none: string } {
  if (!enabled) return { none: 'not pinned (the default; --pin pins)' };
  if (process.platform !== 'linux') return { none: `not pinned (${process.platform})` };
  const cpus = allowedCpus();
  if (!cpus || cpus.length < 2) return { none: `not pinned (${cpus?.length ?? '?'} CPU available)` };
  if (!hasTaskset()) return { none: 'not pinned (no taskset)' };
  return { generator: String(cpus[cpus.length - 1]), servers: cpus.slice(0, -1).join(',') };
}

/** Human-readable line for the results header. */
export function describePlan(plan: CpuPlan | { none: string }): string {
  return 'none' in plan ? `CPU pinning: ${plan.none}; load generator and servers share every CPU` : `CPU pinning (taskset): load generator on CPU ${plan.generator}, servers on CPU ${plan.servers}`;
}

function pgrpOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid pgrp …; comm may contain spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[2]);
  } catch {
    return undefined;
  }
}

/**
 * Watches process group `pgid` and pins each server process in it to `plan.servers` once.
 * Returns a stop function and the pids pinned so far (for the record).
 */
export function pinServersOf(pgid: number, plan: CpuPlan, intervalMs = 100): { stop(): void; pinned: number[] } {
  const pinnedSet = new Set<number>();
  /** Processes of other groups (a pid's group does not change to ours after the fact). */
  const foreign = new Set<number>();
  const pinned: number[] = [];
  const scan = (): void => {
    let pids: string[];
    try {
      pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n));
    } catch {
      return;
    }
    for (const p of pids) {
      const pid = Number(p);
      if (pid === pgid || pinnedSet.has(pid) || foreign.has(pid)) continue;
      if (pgrpOf(pid) !== pgid) {
        foreign.add(pid);
        continue;
      }
      let cmd: string;
      try {
        cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      // Not a server (yet: between fork and exec a process still shows its parent's command).
      if (!SERVER_CMDLINE.some((re) => re.test(cmd))) continue;
      pinnedSet.add(pid);
      try {
        execFileSync('taskset', ['-a', '-p', '-c', plan.servers, String(pid)], { stdio: 'ignore' });
        pinned.push(pid);
      } catch {
        // exited in between
      }
    }
  };
  const timer = setInterval(scan, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), pinned };
}
