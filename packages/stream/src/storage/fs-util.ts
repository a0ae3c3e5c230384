import { HadronError } from '@hadron/core';

/** Maps a file-system error to a Hadron error: ENOSPC/EDQUOT → DISK_FULL, else STORAGE_FAILURE. */
export function storageError(err: unknown, what: string): HadronError {
  if (err instanceof HadronError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new HadronError('DISK_FULL', `no space left on the partition's volume while ${what}; nothing was written`, { cause: err });
  }
  return new HadronError('STORAGE_FAILURE', `storage failure while ${what}: ${(err as Error).message}`, { cause: err });
}
