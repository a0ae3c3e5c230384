/**
 * The narrow file interface every byte of partition storage goes through. Production uses
 * `nodeStorageFs` (node:fs, where a `StorageFile` is the `FileHandle` itself, so the hot write path
 * pays nothing for the indirection); the power-loss tests use `SimFs` (sim-fs.ts), which keeps
 * real bytes but remembers what was synced and can drop everything else.
 *
 * Durability contract the storage code relies on (and SimFs enforces):
 *   - file contents and size are durable only after `datasync()` of that file;
 *   - a name (create, rename, unlink, mkdir) is durable only after `fsyncDir()` of its directory.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

/** An open file: positional I/O only (no file cursor), the subset of node's `FileHandle` we use. */
export interface StorageFile {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  writev(buffers: Buffer[], position: number): Promise<{ bytesWritten: number }>;
  /** Makes the file's contents and size durable. */
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

/**
 * How to open: `rw` an existing file; `create` creates it if missing; `create-excl` fails with
 * EEXIST if it exists; `truncate` creates or empties it.
 */
export type OpenMode = 'rw' | 'create' | 'create-excl' | 'truncate';

export interface StorageFs {
  open(file: string, mode: OpenMode): Promise<StorageFile>;
  /** Whole-file read; rejects with an ENOENT error when missing. */
  readFile(file: string): Promise<Buffer>;
  readdir(dir: string): Promise<string[]>;
  /** `mkdir -p`. The new directories' names are durable only after `fsyncDir` of their parents. */
  mkdir(dir: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; a missing file is not an error. */
  unlink(file: string): Promise<void>;
  /** Makes creations, renames and deletions of names in `dir` durable. */
  fsyncDir(dir: string): Promise<void>;
}

const FLAGS: Record<OpenMode, number> = {
  rw: fs.constants.O_RDWR,
  create: fs.constants.O_RDWR | fs.constants.O_CREAT,
  'create-excl': fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL,
  truncate: fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC,
};

/** The production implementation over node:fs. */
export const nodeStorageFs: StorageFs = {
  open: (file, mode) => fsp.open(file, FLAGS[mode]),
  readFile: (file) => fsp.readFile(file),
  readdir: (dir) => fsp.readdir(dir),
  mkdir: async (dir) => {
    await fsp.mkdir(dir, { recursive: true });
  },
  rename: (from, to) => fsp.rename(from, to),
  unlink: (file) => fsp.rm(file, { force: true }),
  fsyncDir: async (dir) => {
    const fh = await fsp.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
};

/**
 * Creates `dir` (and missing parents) durably: each directory created is fsynced into its parent.
 * Cheap when everything exists: one readdir of the parent.
 */
export async function mkdirDurable(sfs: StorageFs, dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const parent = path.dirname(d);
    if (parent === d) break;
    let names: string[];
    try {
      names = await sfs.readdir(parent);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') break; // e.g. an unreadable ancestor: leave it be
      missing.push(d);
      continue;
    }
    if (!names.includes(path.basename(d))) missing.push(d);
    break;
  }
  if (missing.length === 0) return;
  await sfs.mkdir(dir);
  for (const d of missing.reverse()) await sfs.fsyncDir(path.dirname(d));
}

/**
 * Writes `buf` as the whole content of `tmp` and makes those bytes durable (fdatasync), so that a
 * rename of `tmp` never names unsynced bytes; on failure the temp file is removed. The caller
 * renames it and fsyncs the directory.
 */
export async function writeDurableTemp(sfs: StorageFs, tmp: string, buf: Buffer): Promise<void> {
  const fh = await sfs.open(tmp, 'truncate');
  try {
    let written = 0;
    while (written < buf.length) written += (await fh.write(buf, written, buf.length - written, written)).bytesWritten;
    await fh.datasync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await sfs.unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
}
