/**
 * Polls `cond` until it holds, failing after `timeoutMs` with a message naming `what`. For state
 * that has no event to await (a manifest reload, another process's state); the poll interval is
 * short and the deadline generous, so this is not a sleep standing in for synchronisation.
 */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
