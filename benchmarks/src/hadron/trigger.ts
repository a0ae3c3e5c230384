/**
 * Trigger (push delivery) rate (docs/http.md, "Triggers"): `events` events are pre-filled into
 * one partition (not timed), then a Trigger with `parallelism = maxBatch` is created (live, in
 * the local manifests) pointing at an HTTP sink in this process that answers 204 at once.
 * Timed from the first POST the sink receives to the last.
 *
 * Checks: the sink receives exactly `events` POSTs, each a binary-mode CloudEvent of the bench
 * type with a `eventSize`-byte body, and the Trigger's durable group reaches offset `events`
 * (`hadron_stream_subscriber_last_offset_processed{group="trigger:bench"}`).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodePublishResponse } from '@hadron/proto';
import { EVENT_TYPE, publishRequestPool } from '../lib/events.js';
import { now } from '../lib/stats.js';
import { runWindowed } from '../lib/window.js';
import { check, throughputResult, type WorkloadResult, type WorkloadSpec } from '../types.js';
import { PUBLISH, withHadron } from './cluster.js';

export function hadronTrigger(spec: WorkloadSpec): Promise<WorkloadResult> {
  return withHadron(spec, async (h) => {
    const n = spec.events;
    const batch = Math.min(1000, n);
    const pool = publishRequestPool({ size: spec.eventSize, batch, count: 4, fsync: false, tag: 'trg' });
    const requests = Math.ceil(n / batch);
    check(requests * batch === n, `events (${n}) is a multiple of ${batch}`);
    await runWindowed(requests, 4, async (i) => {
      decodePublishResponse(await h.channels[0]!.unary(PUBLISH, pool[i % pool.length]!, { metadata: h.metadata }));
    });

    let received = 0;
    let bad = 0;
    let first = 0;
    let last = 0;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const sink = http.createServer((req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => {
        if (received === 0) first = now();
        received++;
        if (req.headers['ce-type'] !== EVENT_TYPE || bytes !== spec.eventSize) bad++;
        res.writeHead(204).end();
        if (received === n) {
          last = now();
          resolveDone();
        }
      });
    });
    sink.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
    const port = (sink.address() as AddressInfo).port;
    try {
      h.stream.writeManifest(
        'trigger.yaml',
        `apiVersion: hadron.rs/v1beta1
kind: Trigger
metadata: {name: bench}
spec:
  sourceStream: ${h.stream.stream}
  sink: {uri: 'http://127.0.0.1:${port}/'}
  startPoint: {location: beginning}
  parallelism: ${spec.maxBatch}
`,
      );
      await done;
    } finally {
      sink.closeAllConnections();
      await new Promise<void>((r) => sink.close(() => r()));
    }
    const seconds = (last - first) / 1000;
    check(bad === 0, `every POST is a ${spec.eventSize}-byte ${EVENT_TYPE} event (${bad} were not)`);
    const metrics = await (await fetch(`${h.stream.metricsUrl(0)}/metrics`)).text();
    const line = metrics.split('\n').find((l) => l.startsWith('hadron_stream_subscriber_last_offset_processed{') && l.includes('group="trigger:bench"'));
    check(line !== undefined && Number(line.split(' ').pop()) === n, `the Trigger's group acked offset ${n} (${line ?? 'no series'})`);
    return throughputResult(spec, n, seconds, {
      verified: [`${n} POSTs received (binary mode, ${spec.eventSize}-byte bodies), group trigger:bench at offset ${n}`],
      params: { partitions: 1, eventSize: spec.eventSize, parallelism: spec.maxBatch, sinkAnswers: 204 },
      notes: ['sink in the load-generator process answers at once; timed from the first POST to the last'],
    });
  });
}
