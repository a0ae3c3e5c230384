/**
 * Recovery check of progress against the log: nothing stored may point past the recovered end of
 * the log. The write path orders progress after the log's fdatasync (FileStore), so this never
 * fires on a store written by this version; it repairs stores written before that ordering existed
 * (or damaged by hand) instead of letting a group or pipeline silently skip the events that will
 * next take those offsets.
 */
import type { Logger } from '@hadron/core';
import { metaKeys, readU64, u64, type MetaOp } from './layout.js';

/** One repaired piece of progress. */
export interface ClampedProgress {
  key: string;
  /** What was stored (an offset). */
  stored: number;
  /** What it is now; undefined when the entry was deleted (a pipeline instance past the end). */
  now: number | undefined;
}

interface KeyValues {
  scan(prefix: string): Array<[string, Buffer]>;
  get(key: string): Buffer | undefined;
}

/**
 * Returns the ops that bring every stored position back within `lastOffset`:
 *   o/{group}  and p/{pipeline}/l  > lastOffset       → lastOffset
 *   r/start                        > lastOffset + 1   → lastOffset + 1
 *   p/{pipeline}/a/{n} (and its outputs) with n > lastOffset → deleted (its root event is gone;
 *   the event that takes offset n next is a different one and is scanned afresh)
 */
export function clampProgress(kv: KeyValues, lastOffset: number): { ops: MetaOp[]; clamped: ClampedProgress[] } {
  const ops: MetaOp[] = [];
  const clamped: ClampedProgress[] = [];
  const clampKey = (key: string, value: Buffer, max: number): void => {
    const stored = readU64(value, 0);
    if (stored <= max) return;
    ops.push({ kind: 'put', key, value: u64(max) });
    clamped.push({ key, stored, now: max });
  };
  for (const [key, value] of kv.scan('o/')) clampKey(key, value, lastOffset);
  const start = kv.get(metaKeys.logStart);
  if (start) clampKey(metaKeys.logStart, start, lastOffset + 1);
  for (const [key, value] of kv.scan('p/')) {
    const rest = key.slice(2);
    const slash = rest.indexOf('/');
    const kind = rest.slice(slash + 1, slash + 3);
    if (rest.slice(slash + 1) === 'l') clampKey(key, value, lastOffset);
    else if (kind === 'a/' || kind === 'o/') {
      const offset = Number(rest.slice(slash + 3, slash + 23));
      if (offset > lastOffset) {
        ops.push({ kind: 'del', key });
        if (kind === 'a/') clamped.push({ key, stored: offset, now: undefined });
      }
    }
  }
  return { ops, clamped };
}

/** Logs each repair loudly: it means the previous writer let progress outrun the durable log. */
export function logClamped(logger: Logger, clamped: readonly ClampedProgress[], lastOffset: number): void {
  for (const c of clamped) {
    logger.error(
      { key: c.key, stored: c.stored, now: c.now ?? null, logLastOffset: lastOffset },
      c.now === undefined
        ? 'recovery: a pipeline instance refers to an offset beyond the end of the log; deleted it'
        : 'recovery: stored progress lies beyond the end of the log; clamped it to the log end so no new event is skipped',
    );
  }
}
