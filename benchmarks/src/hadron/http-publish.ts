/**
 * CloudEvents HTTP ingress throughput (docs/http.md), the HTTP counterpart of `hadron.publish`:
 * `events` events of `eventSize` bytes to one partition's HADRON_HTTP_PORT over HTTP/1.1
 * keep-alive connections (`window` requests in flight, one connection each), fsync on.
 *   - batched: `batch` events per `application/cloudevents-batch+json` request, data_base64;
 *   - single:  one binary-mode event per request (ce-* headers, raw body).
 * Bodies are built once into a small pool and reused, like the gRPC generator's requests.
 *
 * Check: every answer is 200 and names as many events as were sent, offsets are distinct, and
 * the highest offset equals the number of events sent (dense from 1).
 */
import http from 'node:http';
import { payload } from '../lib/events.js';
import { now } from '../lib/stats.js';
import { runWindowed } from '../lib/window.js';
import { check, throughputResult, type WorkloadResult, type WorkloadSpec } from '../types.js';
import { withHadron } from './cluster.js';

const POOL = 8;

interface Body {
  headers: Record<string, string>;
  body: Buffer;
}

function bodies(spec: WorkloadSpec, batched: boolean, per: number): Body[] {
  return Array.from({ length: POOL }, (_, k): Body => {
    const data = payload(spec.eventSize, k);
    if (!batched) {
      return {
        headers: { 'ce-specversion': '1.0', 'ce-id': `h${k}`, 'ce-source': '/bench', 'ce-type': 'bench.http', 'content-type': 'application/octet-stream' },
        body: data,
      };
    }
    const b64 = data.toString('base64');
    const events = Array.from({ length: per }, (_, i) => ({ specversion: '1.0', id: `h${k}-${i}`, source: '/bench', type: 'bench.http', datacontenttype: 'application/octet-stream', data_base64: b64 }));
    return { headers: { 'content-type': 'application/cloudevents-batch+json' }, body: Buffer.from(JSON.stringify(events)) };
  });
}

function post(agent: http.Agent, port: number, token: string, b: Body): Promise<{ status: number; offsets: number[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', method: 'POST', agent, headers: { ...b.headers, authorization: `bearer ${token}`, 'content-length': b.body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${text}`));
        const parsed = JSON.parse(text) as { events: Array<{ offset: number }> };
        resolve({ status: res.statusCode, offsets: parsed.events.map((e) => e.offset) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(b.body);
  });
}

export function hadronHttpPublish(spec: WorkloadSpec): Promise<WorkloadResult> {
  const batched = spec.batch > 1;
  return withHadron(spec, async (h) => {
    const port = Number(new URL(h.stream.httpUrl(0)).port);
    const requests = Math.ceil(spec.events / spec.batch);
    const total = requests * spec.batch;
    const pool = bodies(spec, batched, spec.batch);
    const agent = new http.Agent({ keepAlive: true, maxSockets: spec.window });
    const offsets = new Set<number>();
    let max = 0;
    const t0 = now();
    try {
      await runWindowed(requests, spec.window, async (i) => {
        const r = await post(agent, port, h.stream.tokens.full, pool[i % POOL]!);
        check(r.offsets.length === spec.batch, `an answer names ${spec.batch} events (got ${r.offsets.length})`);
        for (const o of r.offsets) {
          offsets.add(o);
          if (o > max) max = o;
        }
      });
    } finally {
      agent.destroy();
    }
    const seconds = (now() - t0) / 1000;
    check(offsets.size === total, `${total} distinct offsets (got ${offsets.size})`);
    check(max === total, `last offset ${max} = events sent ${total}`);
    return throughputResult(spec, total, seconds, {
      verified: [`${requests} requests answered 200, ${total} distinct offsets, last offset = ${total}`],
      params: { mode: batched ? 'batched' : 'binary', partitions: 1, eventSize: spec.eventSize, batch: spec.batch, connections: spec.window, fsync: true },
      notes: ['HTTP/1.1 keep-alive, one request in flight per connection; acked after fdatasync'],
    });
  });
}
