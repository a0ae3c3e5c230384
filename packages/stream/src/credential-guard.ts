/**
 * Long-lived calls (StreamSubscribe, PipelineSubscribe, Metadata) must not outlive their
 * credentials. A guard re-checks the call's principal (`Authenticator.revalidate`) whenever the
 * control-plane view changes — a Token or its Secret deleted or replaced — and when the token's
 * `exp` (plus the clock-skew leeway) passes, and ends the call with UNAUTHENTICATED naming why.
 *
 * Timing: view changes arrive as soon as the control plane sees them (Kubernetes watch event,
 * or the local manifests re-read: file-system notification, 1 s poll as a safety net); the expiry
 * timer fires at the expiry instant. Either way the call ends within seconds of the change.
 */
import type { ControlPlaneView, Logger } from '@hadron/core';
import { expiryMs } from '@hadron/core';
import { Counter, type Registry } from 'prom-client';
import type { Authenticator, Principal } from './auth.js';

export const CREDENTIAL_METRIC = {
  callsEnded: 'hadron_auth_calls_ended_total',
} as const;

/** Counts long-lived calls ended because their credentials went away, by method. */
export function callsEndedCounter(registry: Registry): Counter<'method'> {
  return new Counter({
    name: CREDENTIAL_METRIC.callsEnded,
    help: 'Long-lived calls (subscriptions, pipeline subscriptions, Metadata) ended with UNAUTHENTICATED because their Token or Secret was deleted or their token expired.',
    labelNames: ['method'],
    registers: [registry],
  });
}

/** Largest delay setTimeout accepts (~24.8 days); longer expiries re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface CredentialGuardOptions {
  auth: Authenticator;
  principal: Principal;
  /** Subscribes to view changes; returns the unsubscribe function. */
  onViewChange: (listener: (v: ControlPlaneView) => void) => () => void;
  /** Ends the call with this error. Called at most once. */
  fail: (err: unknown) => void;
  logger: Logger;
  /** Method name, for the log line and the metric. */
  method: string;
  ended?: Counter<'method'>;
}

/** Starts guarding; returns a function that stops (call it when the call ends). Idempotent. */
export function guardCredentials(o: CredentialGuardOptions): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    unsubscribe();
    if (timer) clearTimeout(timer);
  };
  const check = (): void => {
    if (stopped) return;
    try {
      o.auth.revalidate(o.principal);
    } catch (err) {
      stop();
      o.logger.info({ token: o.principal.name, method: o.method, reason: (err as Error).message }, 'ending a call whose credentials are no longer valid');
      o.ended?.inc({ method: o.method });
      o.fail(err);
    }
  };
  const unsubscribe = o.onViewChange(check);
  // A change between authentication and subscribing above would otherwise go unseen.
  check();
  const at = expiryMs(o.principal.claims);
  const arm = (): void => {
    if (at === undefined || stopped) return;
    const wait = Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS);
    timer = setTimeout(() => {
      if (Date.now() >= at) check();
      else arm();
    }, wait);
    timer.unref();
  };
  arm();
  return stop;
}
