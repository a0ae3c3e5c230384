/**
 * Runs one `TriggerRunner` per Trigger whose `sourceStream` is this partition's Stream,
 * following the control-plane view: a new Trigger starts, a changed one restarts with its new
 * spec (its durable group keeps its position), a deleted one stops. The durable group of a
 * deleted Trigger is kept (like any durable group) so re-creating it resumes.
 */
import type { ControlPlaneSource, ControlPlaneView, Logger } from '@hadron/core';
import { Counter, type Registry } from 'prom-client';
import type { DeadLetters } from '../dead-letter.js';
import { DeliveryAttempts } from '../delivery-attempts.js';
import { metaKeys } from '../storage/layout.js';
import type { MetaAccess } from '../storage/partition-store.js';
import type { VersionedTls } from '../outbound-tls.js';
import type { Subscriptions } from '../subscriptions.js';
import { TriggerRunner } from './trigger-runner.js';

export const TRIGGER_METRIC = {
  deliveries: 'hadron_stream_trigger_deliveries_total',
} as const;

export interface TriggerManagerOptions {
  stream: string;
  namespace: string;
  controlPlane: ControlPlaneSource;
  subscriptions: Subscriptions;
  deadLetters: DeadLetters;
  registry: Registry;
  logger: Logger;
  /** Largest sink reply read (HADRON_MAX_MESSAGE_BYTES). */
  maxReplyBytes: number;
  /** The partition's durable key/value state (failed POSTs per event, delivery-attempts.ts). */
  meta: MetaAccess;
  /** CA and client certificate for https:// sinks (outbound-tls.ts). */
  sinkTls?: VersionedTls;
  onFatal: (err: unknown) => void;
}

export class TriggerManager {
  private readonly runners = new Map<string, { runner: TriggerRunner; digest: string }>();
  private chain: Promise<void> = Promise.resolve();
  private readonly deliveries: Counter<'trigger' | 'outcome'>;
  private readonly attempts: DeliveryAttempts;
  private readonly onChange = (v: ControlPlaneView): void => {
    this.chain = this.chain.then(() => this.sync(v)).catch((err: unknown) => this.o.onFatal(err));
  };

  constructor(private readonly o: TriggerManagerOptions) {
    this.attempts = new DeliveryAttempts({ meta: o.meta, keyOf: metaKeys.triggerAttempts, logger: o.logger, onFatal: o.onFatal });
    this.deliveries = new Counter({
      name: TRIGGER_METRIC.deliveries,
      help: 'Trigger sink deliveries by outcome: delivered (2xx), failed (an attempt that will be retried or dead-lettered), dead_lettered, filtered (type not matched), replied (a CloudEvent reply published to spec.reply), reply_invalid (a reply that is not a valid CloudEvent, dropped), reply_failed (a reply publish that failed and is retried).',
      labelNames: ['trigger', 'outcome'],
      registers: [o.registry],
    });
  }

  async start(): Promise<void> {
    await this.sync(this.o.controlPlane.view());
    this.o.controlPlane.on('change', this.onChange);
  }

  private async sync(view: ControlPlaneView): Promise<void> {
    const wanted = new Map([...(view.triggers ?? new Map())].filter(([, t]) => t.spec.sourceStream === this.o.stream));
    for (const [name, r] of this.runners) {
      const t = wanted.get(name);
      if (t && JSON.stringify(t.spec) === r.digest) continue;
      r.runner.stop();
      this.runners.delete(name);
      this.o.logger.info({ trigger: name }, t ? 'trigger changed; restarting its delivery' : 'trigger removed; delivery stopped');
    }
    for (const [name, t] of wanted) {
      if (this.runners.has(name)) continue;
      const runner = new TriggerRunner({ trigger: t, namespace: this.o.namespace, subscriptions: this.o.subscriptions, deadLetters: this.o.deadLetters, logger: this.o.logger, deliveries: this.deliveries, maxReplyBytes: this.o.maxReplyBytes, attempts: this.attempts, ...(this.o.sinkTls ? { tls: this.o.sinkTls } : {}) });
      this.runners.set(name, { runner, digest: JSON.stringify(t.spec) });
      await runner.start();
    }
  }

  async close(): Promise<void> {
    this.o.controlPlane.off('change', this.onChange);
    await this.chain.catch(() => undefined);
    for (const r of this.runners.values()) r.runner.stop();
    this.runners.clear();
    this.attempts.close();
  }
}
