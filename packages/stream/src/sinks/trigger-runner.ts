/**
 * Push delivery of one Trigger on one partition (docs/http.md, "Triggers"). The Trigger is a
 * durable subscription group `trigger:{name}` of this partition's Subscriptions, joined by this
 * in-process member, so its position survives restarts (at-least-once) and its lag and offset
 * show in the group metrics and inspection like any other group.
 *
 *   delivery (≤ parallelism events) ──for each event──▶ type matches filter?
 *        no  → nothing to do
 *        yes → POST in binary mode ──2xx──▶ done
 *                   └─other status / network error / timeout──▶ backoff with jitter, POST again
 *                      … after retry.maxAttempts POSTs → dead-letter Stream (if configured),
 *                        else keep retrying (capped backoff) — never dropped
 *   2xx with a CloudEvent reply and spec.reply set ──▶ publish it to the reply Stream (retried
 *        with backoff until stored; a reply that is not a valid CloudEvent is counted as
 *        `reply_invalid`, logged, and the delivery still counts as done: the sink has processed
 *        the event, and POSTing it again would not make its answer valid)
 *   all events done ──▶ ack the delivery (the group moves on)
 *
 * parallelism 1 (default) keeps one event in flight per partition: events reach the sink in
 * offset order. With parallelism N a delivery holds up to N events, POSTed concurrently.
 * Binary mode (CloudEvents HTTP binding §3.1): every attribute as a `ce-` header, percent-encoded
 * where §3.1.3.2 requires; `datacontenttype` as Content-Type; `data` as the body.
 */
import http from 'node:http';
import https from 'node:https';
import { HadronError, backoffDelay, matchesTriggers, sleep, type Logger, type Trigger } from '@hadron/core';
import { decodeEvent, type WireEvent } from '@hadron/proto';
import type { Counter } from 'prom-client';
import type { DeadLetters } from '../dead-letter.js';
import type { DeliveryAttempts } from '../delivery-attempts.js';
import type { VersionedTls } from '../outbound-tls.js';
import type { StoredEvent } from '../storage/partition-store.js';
import type { Delivery, MemberHandle, Subscriptions } from '../subscriptions.js';
import { parseSinkReply } from './sink-reply.js';

export interface TriggerRunnerOptions {
  trigger: Trigger;
  namespace: string;
  subscriptions: Subscriptions;
  deadLetters: DeadLetters;
  logger: Logger;
  /** hadron_stream_trigger_deliveries_total{trigger, outcome}. */
  deliveries: Counter<'trigger' | 'outcome'>;
  /** Largest sink answer body read (HADRON_MAX_MESSAGE_BYTES): a larger one is an invalid reply. */
  maxReplyBytes: number;
  /** Failed POSTs per event, stored so that maxAttempts counts across restarts (key t/{trigger}). */
  attempts: DeliveryAttempts;
  /** CA and client certificate for an https:// sink (outbound-tls.ts). */
  tls?: VersionedTls;
}

/** One POST's result: '' on 2xx, else what went wrong; the 2xx answer's headers and body. */
interface PostResult {
  problem: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The answer's body exceeded maxReplyBytes (it was drained, not kept). */
  truncated: boolean;
}

/** Group name of a Trigger's durable group. */
export const triggerGroup = (name: string): string => `trigger:${name}`;

/** The sink URL of a Trigger: its `uri`, or the Service reference inside the namespace. */
export function sinkUrl(t: Trigger, namespace: string): string {
  const s = t.spec.sink;
  if (s.uri !== null) return s.uri;
  const ref = s.ref!;
  return `http://${ref.name}.${namespace}.svc.cluster.local:${ref.port}${ref.path}`;
}

/** Percent-encodes a header value as binding §3.1.3.2 requires (space, ", %, non-printable/non-ASCII). */
export function encodeHeaderValue(v: string): string {
  let out = '';
  for (const b of Buffer.from(v, 'utf8')) {
    out += b <= 0x20 || b >= 0x7f || b === 0x22 || b === 0x25 ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  }
  return out;
}

export function binaryRequest(ev: WireEvent): { headers: Record<string, string>; body: Uint8Array } {
  const headers: Record<string, string> = {
    'ce-specversion': encodeHeaderValue(ev.specversion),
    'ce-id': encodeHeaderValue(ev.id),
    'ce-source': encodeHeaderValue(ev.source),
    'ce-type': encodeHeaderValue(ev.type),
  };
  for (const [k, v] of Object.entries(ev.optattrs)) {
    if (k === 'datacontenttype') headers['content-type'] = v;
    else headers[`ce-${k}`] = encodeHeaderValue(v);
  }
  return { headers, body: ev.data };
}

export class TriggerRunner {
  private handle: MemberHandle | undefined;
  private readonly abort = new AbortController();
  private spec: Trigger['spec'];
  private readonly url: URL;
  /** Keep-alive connections to the sink, one per event in flight (node:http is far cheaper than fetch per request). */
  private agent: http.Agent;
  /** TLS material version of `agent` (https sinks); a newer one gets a new agent. */
  private agentVersion = 0;
  /** Requests in flight per agent: a replaced agent is destroyed once its last one ends. */
  private readonly inflight = new Map<http.Agent, number>();

  constructor(private readonly o: TriggerRunnerOptions) {
    this.spec = o.trigger.spec;
    this.url = new URL(sinkUrl(o.trigger, o.namespace));
    this.agent = this.newAgent();
  }

  private newAgent(): http.Agent {
    const agentOpts = { keepAlive: true, maxSockets: this.spec.parallelism };
    if (this.url.protocol !== 'https:') return new http.Agent(agentOpts);
    const tls = this.o.tls?.();
    this.agentVersion = tls?.version ?? 0;
    return new https.Agent({ ...agentOpts, ...tls?.material });
  }

  /** The agent for the next POST: a new one after the TLS material rotated. */
  private currentAgent(): http.Agent {
    const v = this.url.protocol === 'https:' ? (this.o.tls?.().version ?? 0) : 0;
    if (v !== this.agentVersion) {
      const old = this.agent;
      this.agent = this.newAgent();
      if (!this.inflight.get(old)) old.destroy();
    }
    return this.agent;
  }

  get name(): string {
    return this.o.trigger.metadata.name;
  }

  async start(): Promise<void> {
    const sp = this.spec.startPoint;
    this.handle = await this.o.subscriptions.join(
      {
        group: triggerGroup(this.name),
        durable: true,
        maxBatchSize: this.spec.parallelism,
        start: sp.location === 'offset' ? { kind: 'offset', offset: sp.offset ?? 0 } : { kind: sp.location },
        // This member always answers (after its retries): the group's ack deadline must not
        // hand the delivery to nobody meanwhile.
        ackDeadlineMs: 2 ** 31 - 1,
      },
      {
        send: (d) => {
          void this.deliver(d);
          return Promise.resolve();
        },
        fail: (err) => this.o.logger.error({ err, trigger: this.name }, 'trigger delivery ended by the server'),
      },
    );
    this.o.logger.info({ trigger: this.name, sink: this.url.href, parallelism: this.spec.parallelism }, 'trigger delivery started');
  }

  private async deliver(d: Delivery): Promise<void> {
    try {
      await Promise.all(d.events.map((e) => this.deliverOne(e)));
      this.handle?.ack(d.lastIncludedOffset);
      void this.o.attempts.settled(this.name, d.lastIncludedOffset);
    } catch (err) {
      // Only a stop gets here: leave the delivery unacked; it is redelivered after restart.
      if (!this.abort.signal.aborted) this.o.logger.error({ err, trigger: this.name }, 'trigger delivery failed');
    }
  }

  private async deliverOne(e: StoredEvent): Promise<void> {
    const ev = decodeEvent(e.payload);
    if (!matchesTriggers(this.spec.filter.types, ev.type)) {
      this.o.deliveries.inc({ trigger: this.name, outcome: 'filtered' });
      return;
    }
    const { retry } = this.spec;
    // Failed POSTs before a restart count too (stored before each retry).
    const prior = this.o.attempts.get(this.name, e.offset);
    let attempts = prior?.attempts ?? 0;
    let lastError = prior?.lastError ?? '';
    for (;;) {
      const signal = this.abort.signal;
      if (signal.aborted) throw signal.reason;
      if (attempts >= retry.maxAttempts && this.spec.deadLetter) {
        const dl = this.spec.deadLetter;
        try {
          await this.o.deadLetters.sendTo(dl, [e], { kind: 'group', consumer: triggerGroup(this.name), attempts, lastError });
          this.o.deliveries.inc({ trigger: this.name, outcome: 'dead_lettered' });
          return;
        } catch (err) {
          this.o.logger.error({ err, trigger: this.name, offset: e.offset }, 'dead-lettering failed; delivery goes on');
        }
      }
      if (attempts > 0) await sleep(backoffDelay(attempts, { baseMs: retry.backoffMs, maxMs: retry.maxBackoffMs }), signal);
      attempts++;
      const res = await this.post(ev);
      lastError = res.problem;
      if (lastError === '') {
        this.o.deliveries.inc({ trigger: this.name, outcome: 'delivered' });
        await this.handleReply(e, res);
        return;
      }
      this.o.deliveries.inc({ trigger: this.name, outcome: 'failed' });
      this.o.logger.info({ trigger: this.name, offset: e.offset, attempt: attempts, problem: lastError }, 'sink delivery failed');
      await this.o.attempts.recorded(this.name, e.offset, { attempts, lastError });
    }
  }

  /**
   * A 2xx answer may carry a CloudEvent: published to spec.reply (retried until stored or the
   * runner stops — then the delivery stays unacked and is redelivered, at-least-once), or, when
   * it is not a valid CloudEvent, counted and logged (the delivery is done either way).
   */
  private async handleReply(e: StoredEvent, res: PostResult): Promise<void> {
    const target = this.spec.reply;
    if (!target) return;
    const reply = res.truncated ? { kind: 'invalid' as const, problem: `the reply body exceeds ${this.o.maxReplyBytes} bytes (HADRON_MAX_MESSAGE_BYTES)` } : parseSinkReply(res.headers, res.body);
    if (reply.kind === 'none') return;
    if (reply.kind === 'invalid') {
      this.o.deliveries.inc({ trigger: this.name, outcome: 'reply_invalid' });
      this.o.logger.warn({ trigger: this.name, offset: e.offset, problem: reply.problem }, 'the sink replied with something that is not a valid CloudEvent; reply dropped, delivery done');
      return;
    }
    const { retry } = this.spec;
    for (let attempt = 1; ; attempt++) {
      if (this.abort.signal.aborted) throw this.abort.signal.reason;
      try {
        await this.o.deadLetters.publishAs(target, [reply.event]);
        this.o.deliveries.inc({ trigger: this.name, outcome: 'replied' });
        return;
      } catch (err) {
        this.o.deliveries.inc({ trigger: this.name, outcome: 'reply_failed' });
        this.o.logger.error({ err, trigger: this.name, offset: e.offset, replyStream: target.stream, attempt }, 'publishing the sink reply failed; retrying');
      }
      await sleep(backoffDelay(attempt, { baseMs: retry.backoffMs, maxMs: retry.maxBackoffMs }), this.abort.signal);
    }
  }

  /** One POST (rejects only when the runner stops). */
  private post(ev: WireEvent): Promise<PostResult> {
    const { headers, body } = binaryRequest(ev);
    const signal = this.abort.signal;
    // The answer's body is kept only when a reply Stream wants it; otherwise it is drained.
    const keep = this.spec.reply !== null;
    return new Promise<PostResult>((resolve, reject) => {
      let settled = false;
      let answer: Pick<PostResult, 'headers' | 'body' | 'truncated'> = { headers: {}, body: Buffer.alloc(0), truncated: false };
      const mod = this.url.protocol === 'https:' ? https : http;
      const agent = this.currentAgent();
      this.inflight.set(agent, (this.inflight.get(agent) ?? 0) + 1);
      const release = (): void => {
        const n = (this.inflight.get(agent) ?? 1) - 1;
        if (n > 0) this.inflight.set(agent, n);
        else {
          this.inflight.delete(agent);
          if (agent !== this.agent) agent.destroy();
        }
      };
      const finish = (problem: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        release();
        resolve({ problem, ...answer });
      };
      const req = mod.request(this.url, { method: 'POST', agent, headers: { ...headers, 'content-length': String(body.byteLength) } }, (res) => {
        const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300;
        const chunks: Buffer[] = [];
        let bytes = 0;
        let truncated = false;
        res.on('data', (c: Buffer) => {
          if (!keep || !ok || truncated) return;
          bytes += c.length;
          if (bytes > this.o.maxReplyBytes) {
            truncated = true;
            chunks.length = 0;
          } else chunks.push(c);
        });
        res.on('end', () => {
          answer = { headers: res.headers, body: Buffer.concat(chunks), truncated };
          finish(ok ? '' : `sink answered HTTP ${res.statusCode}`);
        });
        res.on('error', (err) => finish(`sink reply failed: ${err.message}`));
      });
      const timer = setTimeout(() => {
        finish(`no answer within ${this.spec.timeoutMs} ms (spec.timeoutMs)`);
        req.destroy();
      }, this.spec.timeoutMs);
      const onAbort = (): void => {
        if (!settled) release();
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(signal.reason);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err) => finish(`sink unreachable: ${err.message}`));
      req.end(body);
    });
  }

  /** Stops delivering; an unacked delivery is redelivered after restart (at-least-once). */
  stop(): void {
    this.abort.abort(new HadronError('CANCELLED', `trigger ${this.name} stopped`));
    this.handle?.leave();
    this.handle = undefined;
    this.agent.destroy();
  }
}
