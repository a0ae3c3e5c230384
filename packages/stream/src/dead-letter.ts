/**
 * Dead-lettering (docs/http.md, "Dead-lettering"): the Stream's `spec.deadLetter` policy
 * `{stream, maxAttempts, token}` applies to every durable subscription group and pipeline stage
 * of the Stream. When a batch has been delivered `maxAttempts` times and every delivery was
 * nacked, timed out or lost with its member, its events are published to the dead-letter Stream
 * and the batch is acked; nothing is dropped: until the publish succeeds, the batch stays put
 * (retried with backoff).
 *
 * A dead-lettered event keeps all its attributes and data and gains extension attributes:
 *   deadletterstream     the Stream it came from        deadletterpartition  its partition
 *   deadletteroffset     its offset there               deadlettergroup / deadletterstage
 *   deadletterattempts   deliveries made                deadlettererror      the last failure
 * Its `partitionkey`/`subject` are kept, so the dead-letter Stream keeps per-key order.
 *
 * Transport: our own client (topology-aware, retries) bootstrapped from the dead-letter Stream's
 * address — HADRON_STREAM_URLS (`name=url,…`) or else HADRON_STREAM_URL_TEMPLATE (default
 * `http://{stream}.{namespace}.svc.cluster.local:7000`, the Stream's Service) — authenticated as
 * the policy's Token, whose JWT the server signs with that Token's Secret (which it already holds
 * to verify callers), so no extra credential has to be mounted. Over https:// it trusts and
 * presents what outbound-tls.ts says (a private CA, the pod's client certificate).
 */
import { randomUUID } from 'node:crypto';
import { HadronError, signJwt, type ControlPlaneView, type DeadLetterPolicy, type Logger } from '@hadron/core';
import { createClient, type HadronClient } from '@hadron/client';
import { decodeEvent, type WireEvent } from '@hadron/proto';
import { Counter, type Registry } from 'prom-client';
import type { StoredEvent } from './storage/partition-store.js';
import type { VersionedTls } from './outbound-tls.js';

export const DEAD_LETTER_METRIC = {
  events: 'hadron_stream_dead_lettered_events_total',
  failures: 'hadron_stream_dead_letter_failures_total',
} as const;

/** Where a batch came from, for the deadletter* attributes. */
export interface DeadLetterOrigin {
  kind: 'group' | 'stage';
  /** Group name, or `pipeline/stage`. */
  consumer: string;
  attempts: number;
  lastError: string;
}

/**
 * The log fields naming the origin as every other line about it does (docs/operations.md,
 * "Logs"): `group` for a group (a Trigger's is `trigger:<name>`), `pipeline` and `stage` for a
 * pipeline stage, so `jq 'select(.group == "billing")'` also finds its dead-lettered batches.
 */
export function originLogFields(origin: Pick<DeadLetterOrigin, 'kind' | 'consumer'>): { group: string } | { pipeline: string; stage: string } {
  if (origin.kind === 'group') return { group: origin.consumer };
  // `pipeline/stage`: a pipeline name is a Kubernetes name, so the first "/" ends it.
  const slash = origin.consumer.indexOf('/');
  return { pipeline: origin.consumer.slice(0, slash), stage: origin.consumer.slice(slash + 1) };
}

/** What consumers (subscriptions, pipeline controllers) need. */
export interface DeadLetterHook {
  /** The policy's maxAttempts, or undefined when the Stream has no dead-letter policy. */
  maxAttempts(): number | undefined;
  /**
   * Publishes the events to the dead-letter Stream and resolves with them as published (with
   * the deadletter* attributes); rejects when that fails (the caller retries).
   */
  send(events: ReadonlyArray<Pick<StoredEvent, 'offset' | 'payload'>>, origin: DeadLetterOrigin): Promise<WireEvent[]>;
}

export interface DeadLetterOptions {
  stream: string;
  namespace: string;
  partition: number;
  view: () => ControlPlaneView;
  /** Explicit bootstrap URLs per Stream name (HADRON_STREAM_URLS). */
  urls: ReadonlyMap<string, string>;
  /** HADRON_STREAM_URL_TEMPLATE: `{stream}` and `{namespace}` are replaced. */
  urlTemplate: string;
  /** CA and client certificate for https:// Streams (outbound-tls.ts). */
  tls?: VersionedTls;
  registry: Registry;
  logger: Logger;
}

export const DEFAULT_STREAM_URL_TEMPLATE = 'http://{stream}.{namespace}.svc.cluster.local:7000';

/** Parses HADRON_STREAM_URLS (`name=url,name2=url2`). */
export function parseStreamUrls(v: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (v ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = part.indexOf('=');
    if (eq <= 0 || eq === part.length - 1) {
      throw new HadronError('CONFIG_INVALID', `invalid configuration: HADRON_STREAM_URLS entry ${JSON.stringify(part)} must be name=url`, { context: { variable: 'HADRON_STREAM_URLS' } });
    }
    out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

export class DeadLetters implements DeadLetterHook {
  /** One client per target Stream and Token, re-made when its URL, Token or key changes. */
  private readonly clients = new Map<string, { key: string; client: HadronClient }>();
  private readonly events: Counter<'consumer'>;
  private readonly failures: Counter<'consumer'>;

  constructor(private readonly o: DeadLetterOptions) {
    this.events = new Counter({ name: DEAD_LETTER_METRIC.events, help: 'Events published to the dead-letter Stream after maxAttempts failed deliveries, by consumer (group or pipeline/stage).', labelNames: ['consumer'], registers: [o.registry] });
    this.failures = new Counter({ name: DEAD_LETTER_METRIC.failures, help: 'Attempts to publish to the dead-letter Stream that failed (retried).', labelNames: ['consumer'], registers: [o.registry] });
  }

  private policy(): DeadLetterPolicy | undefined {
    return this.o.view().streams.get(this.o.stream)?.spec.deadLetter ?? undefined;
  }

  maxAttempts(): number | undefined {
    return this.policy()?.maxAttempts;
  }

  async send(events: ReadonlyArray<Pick<StoredEvent, 'offset' | 'payload'>>, origin: DeadLetterOrigin): Promise<WireEvent[]> {
    const policy = this.policy();
    if (!policy) throw new HadronError('UNAVAILABLE', 'the dead-letter policy was removed');
    return this.sendTo(policy, events, origin);
  }

  /** Like `send`, to an explicit dead-letter Stream and Token (a Trigger's own policy). */
  async sendTo(policy: { stream: string; token: string }, events: ReadonlyArray<Pick<StoredEvent, 'offset' | 'payload'>>, origin: DeadLetterOrigin): Promise<WireEvent[]> {
    try {
      const client = this.clientFor(policy);
      const out = events.map((e) => this.annotate(e, origin));
      await client.publish(out, { fsync: true });
      this.events.inc({ consumer: origin.consumer }, events.length);
      this.o.logger.warn({ ...originLogFields(origin), consumer: origin.consumer, from: events[0]?.offset, to: events[events.length - 1]?.offset, attempts: origin.attempts, lastError: origin.lastError, deadLetterStream: policy.stream }, 'batch dead-lettered');
      return out;
    } catch (err) {
      this.failures.inc({ consumer: origin.consumer });
      throw err;
    }
  }

  /**
   * Publishes `events` unchanged to `target.stream` as the Token `target.token` (a Trigger's
   * reply Stream), with the same client, bootstrap and credentials as dead-lettering.
   */
  async publishAs(target: { stream: string; token: string }, events: WireEvent[]): Promise<void> {
    await this.clientFor(target).publish(events, { fsync: true });
  }

  private annotate(e: Pick<StoredEvent, 'offset' | 'payload'>, origin: DeadLetterOrigin): WireEvent {
    const ev = decodeEvent(e.payload);
    const optattrs: Record<string, string> = {
      ...ev.optattrs,
      deadletterstream: this.o.stream,
      deadletterpartition: String(this.o.partition),
      deadletteroffset: String(e.offset),
      deadletterattempts: String(origin.attempts),
      // Attribute values are strings of any length; keep the reason readable but bounded.
      deadlettererror: origin.lastError.slice(0, 1024) || 'unknown',
    };
    optattrs[origin.kind === 'group' ? 'deadlettergroup' : 'deadletterstage'] = origin.consumer;
    return { ...ev, optattrs };
  }

  private clientFor(policy: Pick<DeadLetterPolicy, 'stream' | 'token'>): HadronClient {
    const v = this.o.view();
    const secret = v.secrets.get(policy.token);
    if (!secret || !v.tokens.has(policy.token)) {
      throw new HadronError('UNAUTHENTICATED', `dead-letter Token ${policy.token} (spec.deadLetter.token) or its Secret is not known`);
    }
    const url = this.o.urls.get(policy.stream) ?? this.o.urlTemplate.replaceAll('{stream}', policy.stream).replaceAll('{namespace}', this.o.namespace);
    const tls = url.startsWith('https://') ? this.o.tls?.() : undefined;
    const key = `${url}\n${policy.token}\n${Buffer.from(secret.hmacKey).toString('base64')}\n${tls?.version ?? 0}`;
    // One client per Stream and Token: a Trigger's dead-letter and reply targets may share a Stream.
    const slot = `${policy.stream}\n${policy.token}`;
    let c = this.clients.get(slot);
    if (c?.key !== key) {
      void c?.client.close();
      const token = signJwt({ jti: randomUUID(), sub: policy.token }, secret.hmacKey);
      // TLS material only for https:// (the client refuses it for http://, rightly).
      c = { key, client: createClient({ url, token, ...(tls?.material ?? {}), publish: { retry: { attempts: 3, baseMs: 100, maxMs: 1000 } } }) };
      this.clients.set(slot, c);
    }
    return c.client;
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.client.close()));
    this.clients.clear();
  }
}
