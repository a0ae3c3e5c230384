/**
 * Validating admission webhooks (reference §3.6), served over HTTPS:
 *
 *   POST /k8s/admissions/vaw/pipelines | /streams | /tokens | /triggers   body: AdmissionReview
 *
 * `admission.k8s.io/v1` (and v1beta1): the response echoes the request's apiVersion and `uid`
 * in every answer (the original left it empty on rejection, which only v1beta1 tolerates).
 * Only CREATE and UPDATE are validated; other operations are allowed.
 *
 * The rules are those of `@hadron/core` (the same code that validates local manifests):
 * - Pipelines: `parsePipeline` (the exact messages of the original plus duplicate stage names),
 *   and on UPDATE `validatePipelineUpdate` (stage removal needs `hadron.rs/allow-destructive-update`).
 *   All messages are joined with "; ".
 * - Streams: `parseStream`, a name usable for the StatefulSet's pods and Services (a DNS-1035 label
 *   of at most 52 characters), and on UPDATE the volume settings, which the StatefulSet cannot change.
 * - Tokens: `parseToken`.
 * - Triggers: `parseTrigger` (docs/http.md).
 * - Streams, UPDATE that lowers `spec.partitions` (also through the `scale` subresource, when the
 *   webhook rule includes `streams/scale`): the partitions that would go away are asked what they
 *   still hold (partition-loss.ts); undelivered events or a partition that cannot be asked refuse
 *   the change unless the Stream carries `hadron.rs/allow-partition-loss`.
 */
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  allowsPartitionLoss,
  parsePipeline,
  parseStream,
  parseToken,
  parseTrigger,
  partitionLossRefusal,
  validatePipelineUpdate,
  type Logger,
  type Stream,
} from '@hadron/core';
import type { KubeObject } from '@hadron/k8s';
import type { OperatorMetrics } from './metrics.js';
import type { PartitionLossProbe } from './partition-loss.js';

export const WEBHOOK_PATHS = {
  pipelines: '/k8s/admissions/vaw/pipelines',
  streams: '/k8s/admissions/vaw/streams',
  tokens: '/k8s/admissions/vaw/tokens',
  triggers: '/k8s/admissions/vaw/triggers',
} as const;

type Resource = keyof typeof WEBHOOK_PATHS;
type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string; status?: 'Failure' };
}

const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** StatefulSet pods get `controller-revision-hash={name}-{10 chars}`, a 63-character label value. */
export const MAX_STREAM_NAME = 52;

/** Validation messages for one object; empty = allowed. Pure, used by the HTTP handler. */
export function validateAdmission(resource: Resource, operation: string, object: unknown, oldObject: unknown): string[] {
  if (operation !== 'CREATE' && operation !== 'UPDATE') return [];
  const what = resource === 'pipelines' ? 'pipeline' : resource === 'streams' ? 'stream' : resource === 'triggers' ? 'trigger' : 'token';
  if (!isObj(object)) return [`no ${what} object found in the \`object\` field, can not validate`];
  const old = operation === 'UPDATE' && isObj(oldObject) ? oldObject : undefined;
  switch (resource) {
    case 'pipelines': {
      const r = parsePipeline(object);
      if (!r.ok) return r.errors;
      if (!old) return [];
      const o = parsePipeline(old);
      return o.ok ? validatePipelineUpdate(o.value, r.value) : [];
    }
    case 'streams': {
      // The `scale` subresource sends an autoscaling/v1 Scale, not a Stream: only the partition
      // check applies to it (scaleDownOf).
      if (object.kind === 'Scale') return [];
      const r = parseStream(object);
      const errors = r.ok ? [] : [...r.errors];
      const name = isObj(object.metadata) ? String(object.metadata.name) : '';
      if (name && (!DNS1035.test(name) || name.length > MAX_STREAM_NAME)) {
        errors.push(`stream name '${name}' must be a DNS-1035 label (lower case alphanumerics and '-', starting with a letter) of at most ${MAX_STREAM_NAME} characters, as it names the StatefulSet, its pods and Services`);
      }
      if (r.ok && old) {
        const o = parseStream(old);
        if (o.ok) {
          for (const f of ['pvcVolumeSize', 'pvcAccessModes', 'pvcStorageClass'] as const) {
            if (JSON.stringify(o.value.spec[f]) !== JSON.stringify(r.value.spec[f])) {
              errors.push(`spec.${f} of stream ${name} cannot be changed (the StatefulSet's volume claim template is immutable); delete and recreate the Stream to change it`);
            }
          }
        }
      }
      return errors;
    }
    case 'tokens': {
      const r = parseToken(object);
      return r.ok ? [] : r.errors;
    }
    case 'triggers': {
      const r = parseTrigger(object);
      return r.ok ? [] : r.errors;
    }
  }
}

/** Builds the AdmissionReview answer for a request body. */
export function review(resource: Resource, body: unknown): { apiVersion: string; kind: 'AdmissionReview'; response: AdmissionResponse } {
  const apiVersion = isObj(body) && typeof body.apiVersion === 'string' ? body.apiVersion : 'admission.k8s.io/v1';
  const reply = (uid: string, errors: string[]) => ({
    apiVersion,
    kind: 'AdmissionReview' as const,
    response:
      errors.length === 0
        ? { uid, allowed: true }
        : { uid, allowed: false, status: { code: 400, status: 'Failure' as const, reason: 'Invalid', message: errors.join('; ') } },
  });
  if (!isObj(body) || !isObj(body.request)) return reply('', ['malformed webhook request received, no `request` field']);
  const req = body.request;
  const uid = typeof req.uid === 'string' ? req.uid : '';
  return reply(uid, validateAdmission(resource, String(req.operation ?? ''), req.object, req.oldObject));
}

/**
 * A Stream UPDATE that removes partitions: the Stream after the change and the partition counts,
 * or undefined. A `Scale` (the `scale` subresource) carries only replicas; the Stream itself
 * comes from `streamOf`.
 */
export function scaleDownOf(body: unknown, streamOf: (name: string) => KubeObject | undefined): { stream: Stream; from: number; to: number } | undefined {
  const req = isObj(body) && isObj(body.request) ? body.request : undefined;
  if (!req || req.operation !== 'UPDATE' || !isObj(req.object) || !isObj(req.oldObject)) return undefined;
  const replicas = (o: Raw): number | undefined => (isObj(o.spec) && typeof o.spec.replicas === 'number' ? o.spec.replicas : undefined);
  if (req.subResource === 'scale' || req.object.kind === 'Scale') {
    const to = replicas(req.object);
    const from = replicas(req.oldObject);
    const raw = streamOf(String(req.name ?? (isObj(req.object.metadata) ? req.object.metadata.name : '')));
    const s = raw ? parseStream(raw as unknown as Raw) : undefined;
    return s?.ok && to !== undefined && from !== undefined && to < from ? { stream: s.value, from, to } : undefined;
  }
  const next = parseStream(req.object);
  const old = parseStream(req.oldObject);
  if (!next.ok || !old.ok || next.value.spec.partitions >= old.value.spec.partitions) return undefined;
  return { stream: next.value, from: old.value.spec.partitions, to: next.value.spec.partitions };
}

export interface WebhookServerOptions {
  cert: string;
  key: string;
  logger: Logger;
  metrics?: OperatorMetrics;
  /** Scale-down safety; without it removing partitions is not checked. */
  partitionLoss?: { probe: PartitionLossProbe; streamOf: (name: string) => KubeObject | undefined };
}

const MAX_BODY = 8 * 1024 * 1024;

export class WebhookServer {
  private readonly server: https.Server;

  constructor(private readonly o: WebhookServerOptions) {
    this.server = https.createServer({ cert: o.cert, key: o.key, ALPNProtocols: ['http/1.1'] }, (req, res) => {
      const path = (req.url ?? '').split('?')[0];
      const resource = (Object.keys(WEBHOOK_PATHS) as Resource[]).find((r) => WEBHOOK_PATHS[r] === path);
      if (req.method !== 'POST' || !resource) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy();
        else chunks.push(c);
      });
      req.on('end', () => void this.answer(resource, Buffer.concat(chunks), res));
    });
  }

  /** Validates one AdmissionReview body and writes the answer (always 200 with a review). */
  private async answer(resource: Resource, bytes: Buffer, res: http.ServerResponse): Promise<void> {
    const o = this.o;
    let body: unknown;
    try {
      body = JSON.parse(bytes.toString('utf8'));
    } catch {
      body = undefined;
    }
    const answer = review(resource, body);
    const down = resource === 'streams' && answer.response.allowed && o.partitionLoss ? scaleDownOf(body, o.partitionLoss.streamOf) : undefined;
    if (down && o.partitionLoss) {
      const report = await o.partitionLoss.probe.check(down.stream, down.from, down.to);
      const refusal = partitionLossRefusal(report, allowsPartitionLoss(down.stream));
      if (refusal !== undefined) answer.response = { uid: answer.response.uid, allowed: false, status: { code: 400, status: 'Failure', reason: 'Invalid', message: refusal } };
    }
    o.metrics?.admissions.inc({ resource, allowed: String(answer.response.allowed) });
    if (!answer.response.allowed) o.logger.info({ resource, uid: answer.response.uid, message: answer.response.status?.message }, 'admission rejected');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
  }

  async listen(port: number, host: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
