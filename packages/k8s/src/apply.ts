/**
 * Helpers for idempotent server-side apply.
 *
 * An applied configuration names only the fields its manager owns; the live object carries those
 * plus server defaults and other managers' fields. `satisfies(desired, live)` is true when every
 * field of `desired` has the same value in `live` (objects: recursively; lists: same length and
 * element-wise), i.e. when applying `desired` would change nothing. Controllers apply only when it
 * is false, so a steady state causes no writes at all (the original patched on every event,
 * reference §11.17) and a hand edit of an owned field is detected and repaired.
 */
import type { Condition } from './types.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function satisfies(desired: unknown, live: unknown): boolean {
  if (desired === undefined) return true;
  if (desired === null || typeof desired !== 'object') return desired === live;
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return false;
    return desired.every((d, i) => satisfies(d, live[i]));
  }
  if (live === null || typeof live !== 'object' || Array.isArray(live)) return false;
  const l = live as Record<string, unknown>;
  return Object.entries(desired as Record<string, Json>).every(([k, v]) => satisfies(v, l[k]));
}

/**
 * Merges `next` conditions into `prev`: keeps `lastTransitionTime` when the status of a type did
 * not change (Kubernetes API conventions), and reports whether anything but timestamps changed.
 */
export function mergeConditions(
  prev: readonly Condition[] | undefined,
  next: ReadonlyArray<Omit<Condition, 'lastTransitionTime'>>,
  now: Date = new Date(),
): { conditions: Condition[]; changed: boolean } {
  let changed = (prev?.length ?? 0) !== next.length;
  const conditions = next.map((c) => {
    const old = prev?.find((p) => p.type === c.type);
    const same = old !== undefined && old.status === c.status;
    if (!old || old.status !== c.status || old.reason !== c.reason || old.message !== c.message || old.observedGeneration !== c.observedGeneration) changed = true;
    return { ...c, lastTransitionTime: same ? old.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, 'Z') };
  });
  return { conditions, changed };
}
