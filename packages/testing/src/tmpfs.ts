import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Runs `fn` with a fresh tmpfs of `sizeBytes` mounted on a temp directory (a small volume a test
 * can fill), then unmounts and removes it, also when `fn` throws: nothing stays mounted.
 * Returns false without calling `fn` when mounting is not allowed (not root).
 */
export async function withTmpfs(sizeBytes: number, fn: (dir: string) => Promise<void>): Promise<boolean> {
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', mnt], { stdio: 'ignore' });
  } catch {
    fs.rmSync(mnt, { recursive: true, force: true });
    return false;
  }
  try {
    await fn(mnt);
  } finally {
    execFileSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
  return true;
}
