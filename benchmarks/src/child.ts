/**
 * One workload in its own process (forked by run.ts as a process-group leader, so a timeout
 * can kill it together with every server it started). Reads the spec from BENCH_SPEC, runs
 * it, sends the `WorkloadResult` to the parent and exits.
 */
import { hadronHttpPublish } from './hadron/http-publish.js';
import { hadronTrigger } from './hadron/trigger.js';
import { hadronClientPublish } from './hadron/client-publish.js';
import { hadronDrain } from './hadron/drain.js';
import { hadronPipeline } from './hadron/pipeline.js';
import { hadronLatency } from './hadron/latency.js';
import { hadronPublish } from './hadron/publish.js';
import { natsDrain } from './nats/drain.js';
import { natsLatency } from './nats/latency.js';
import { natsCorePublish, natsJsPublish } from './nats/publish.js';
import { natsReplLatency, natsReplPublish } from './nats/repl.js';
import { kafkaJavaDrain, kafkaJavaLatency, kafkaJavaPublish } from './kafka/java-perf.js';
import { kafkaJsPublish } from './kafka/js-publish.js';
import type { WorkloadResult, WorkloadSpec } from './types.js';

const RUNNERS: Record<string, (s: WorkloadSpec) => Promise<WorkloadResult>> = {
  'hadron.publish': hadronPublish,
  'hadron.http-publish': hadronHttpPublish,
  'hadron.trigger': hadronTrigger,
  'hadron.client-publish': hadronClientPublish,
  'hadron.latency': hadronLatency,
  'hadron.drain': hadronDrain,
  'hadron.pipeline': hadronPipeline,
  'nats.js-publish': natsJsPublish,
  'nats.core-publish': natsCorePublish,
  'nats.js-latency': (s) => natsLatency(s, 'js'),
  'nats.core-latency': (s) => natsLatency(s, 'core'),
  'nats.drain': natsDrain,
  'nats.repl-js-publish': (s) => natsReplPublish(s, 'js'),
  'nats.repl-core-publish': (s) => natsReplPublish(s, 'core'),
  'nats.repl-js-latency': (s) => natsReplLatency(s, 'js'),
  'nats.repl-core-latency': (s) => natsReplLatency(s, 'core'),
  'kafka.java-publish': (s) => kafkaJavaPublish(s, 'default'),
  'kafka.java-publish-fsync': (s) => kafkaJavaPublish(s, 'fsync'),
  'kafka.js-publish': (s) => kafkaJsPublish(s, 'default'),
  'kafka.js-publish-fsync': (s) => kafkaJsPublish(s, 'fsync'),
  'kafka.java-latency': (s) => kafkaJavaLatency(s, 'default'),
  'kafka.java-latency-fsync': (s) => kafkaJavaLatency(s, 'fsync'),
  'kafka.java-drain': (s) => kafkaJavaDrain(s, 'default'),
};

async function main(): Promise<void> {
  const spec = JSON.parse(process.env.BENCH_SPEC ?? 'null') as WorkloadSpec | null;
  if (!spec || !process.send) throw new Error('child.js is started by run.js (needs BENCH_SPEC and an IPC channel)');
  const runner = RUNNERS[spec.runner];
  if (!runner) throw new Error(`no runner ${spec.runner}`);
  const result = await runner(spec);
  await new Promise<void>((resolve, reject) => process.send!(result, (err: Error | null) => (err ? reject(err) : resolve())));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${err instanceof Error ? (err.stack ?? message) : message}\n`);
    // Tell the parent why, so the report names the failed check instead of an exit code.
    if (process.send) process.send({ failed: message }, () => process.exit(1));
    else process.exit(1);
  },
);
