/**
 * Preloaded into Hadron server processes when profiling (`NODE_OPTIONS=--import <this file>`,
 * because Node 20 refuses `--cpu-prof` in NODE_OPTIONS): starts the V8 sampling profiler at
 * start-up and, when the process exits, writes into BENCH_CPU_PROF_DIR
 *   <pid>.cpuprofile  — what `--cpu-prof` would write (an in-thread inspector session answers
 *                       synchronously, so this works inside the 'exit' handler);
 *   <pid>.gc.json     — every GC pause (kind, ms) seen by a PerformanceObserver, because tail
 *                       latency on a Node server is usually GC.
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 }); // µs, as --cpu-prof
  session.post('Profiler.start');
  const KINDS: Record<number, string> = {
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
  };
  const gcs: Array<[string, number, number]> = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = ((e as { detail?: unknown }).detail as { kind?: number } | undefined)?.kind ?? -1;
      gcs.push([KINDS[kind] ?? String(kind), Math.round(e.duration * 1000) / 1000, Math.round(e.startTime)]);
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  process.once('exit', () => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `${process.pid}.gc.json`), JSON.stringify(gcs));
    session.post('Profiler.stop', (err, res) => {
      if (err) return;
      fs.writeFileSync(path.join(dir, `${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
