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
import type { Authenticator, Principal } from './auth.js';

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
  /** Method name, for the log line. */
  method: string;
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
      o.fail(err);
    }
  };
  const unsubscribe = o.onViewChange(check);
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
