/**
 * Keeps `window` operations in flight until `total` have completed. `op(i)` starts operation
 * number i and resolves when it is acknowledged. Resolves when all are done; rejects on the first
 * failure (operations already in flight are left to finish or fail on their own).
 */
export function runWindowed(total: number, window: number, op: (i: number) => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let started = 0;
    let done = 0;
    let failed = false;
    const next = (): void => {
      while (!failed && started < total && started - done < window) {
        const i = started++;
        op(i).then(
          () => {
            done++;
            if (done === total) resolve();
            else next();
          },
          (err: unknown) => {
            if (!failed) {
              failed = true;
              reject(err);
            }
          },
        );
      }
    };
    if (total === 0) resolve();
    else next();
  });
}
