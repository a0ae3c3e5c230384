/**
 * A power-loss simulator implementing `StorageFs`, in the spirit of RocksDB's FaultInjectionTestFS
 * and TigerBeetle's storage simulator. It keeps real bytes in memory and tracks, per file, the
 * contents as of its last `datasync` plus the writes and truncations since, and per directory, the
 * names as of its last `fsyncDir` plus the name changes since.
 *
 * `powerLoss()` keeps only what was synced — optionally (seeded) also a random part of what was
 * not: a random subset of a file's unsynced writes (reordering) with the last one kept possibly
 * torn, and a random prefix of a directory's unsynced name changes (journaling file systems commit
 * metadata in order). Everything opened before the power loss is dead afterwards: each "process"
 * works through its own `view()`, whose operations fail with EIO once the power was lost.
 *
 * `crashAtOp` cuts the power at a chosen operation count (deterministic crash points), and
 * `capacityBytes` makes writes beyond it fail with ENOSPC (after a short write, like the kernel).
 *
 * Test-only: used by the power-loss suite; not wired into production.
 */
import path from 'node:path';
import type { OpenMode, StorageFile, StorageFs } from './file-io.js';

type Rng = () => number;

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence. */
export function seededRandom(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type FileOp = { kind: 'write'; pos: number; bytes: Buffer } | { kind: 'truncate'; len: number };

class Inode {
  buf = Buffer.alloc(0);
  size = 0;
  synced = Buffer.alloc(0);
  pending: FileOp[] = [];

  read(pos: number, len: number): Buffer {
    const end = Math.min(this.size, pos + len);
    return end > pos ? this.buf.subarray(pos, end) : Buffer.alloc(0);
  }

  apply(op: FileOp): void {
    if (op.kind === 'truncate') {
      if (op.len < this.size) this.buf.fill(0, op.len, this.size);
      this.ensure(op.len);
      this.size = op.len;
      return;
    }
    const end = op.pos + op.bytes.length;
    this.ensure(end);
    if (op.pos > this.size) this.buf.fill(0, this.size, op.pos);
    op.bytes.copy(this.buf, op.pos);
    if (end > this.size) this.size = end;
  }

  private ensure(n: number): void {
    if (n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(n, this.buf.length * 2, 4096));
    this.buf.copy(next, 0, 0, this.size);
    this.buf = next;
  }

  sync(): void {
    this.synced = Buffer.from(this.buf.subarray(0, this.size));
    this.pending = [];
  }

  /** Rebuilds the file as a power loss leaves it. */
  lose(rng: Rng | undefined): void {
    const ops = this.pending;
    this.buf = Buffer.alloc(0);
    this.size = 0;
    this.apply({ kind: 'write', pos: 0, bytes: this.synced });
    if (rng && ops.length) {
      const keep = ops.filter(() => rng() < 0.5);
      keep.forEach((op, i) => {
        if (i === keep.length - 1 && op.kind === 'write' && rng() < 0.5) {
          // torn: only a prefix of the last kept write reached the platter
          this.apply({ kind: 'write', pos: op.pos, bytes: op.bytes.subarray(0, Math.floor(rng() * op.bytes.length)) });
        } else this.apply(op);
      });
    }
    this.sync();
  }
}

type Change = Array<[string, Node | undefined]>;

class Dir {
  entries = new Map<string, Node>();
  synced = new Map<string, Node>();
  pending: Change[] = [];

  change(c: Change): void {
    for (const [name, node] of c) {
      if (node) this.entries.set(name, node);
      else this.entries.delete(name);
    }
    this.pending.push(c);
  }

  sync(): void {
    this.synced = new Map(this.entries);
    this.pending = [];
  }

  lose(rng: Rng | undefined): void {
    const entries = new Map(this.synced);
    if (rng && this.pending.length) {
      const n = Math.floor(rng() * (this.pending.length + 1));
      for (const c of this.pending.slice(0, n)) {
        for (const [name, node] of c) {
          if (node) entries.set(name, node);
          else entries.delete(name);
        }
      }
    }
    this.entries = entries;
    this.sync();
  }
}

type Node = Inode | Dir;

function fsError(code: string, what: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: ${what}`) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

export interface SimFsOptions {
  /** Randomness for power losses (tearing, reordering); without it only synced state survives. */
  rng?: Rng;
  /** Total bytes the files may hold; writes beyond it fail with ENOSPC. */
  capacityBytes?: number;
}

export class SimFs {
  private readonly root = new Dir();
  private generation = 0;
  private ops = 0;
  /** Cut the power when this many operations have been started (checked on every operation). */
  crashAtOp = Infinity;
  capacityBytes: number;
  /** Number of power losses so far. */
  powerLosses = 0;

  constructor(private readonly opts: SimFsOptions = {}) {
    this.capacityBytes = opts.capacityBytes ?? Infinity;
  }

  /** Operations started so far (across views). */
  get opCount(): number {
    return this.ops;
  }

  /** Bytes held by all files reachable now. */
  get usedBytes(): number {
    let n = 0;
    const walk = (d: Dir): void => {
      for (const node of d.entries.values()) {
        if (node instanceof Dir) walk(node);
        else n += node.size;
      }
    };
    walk(this.root);
    return n;
  }

  /** Drops everything not synced (see the module comment); earlier views die. */
  powerLoss(): void {
    this.powerLosses++;
    this.generation++;
    this.crashAtOp = Infinity;
    const rng = this.opts.rng;
    const seen = new Set<Node>();
    const walk = (d: Dir): void => {
      d.lose(rng);
      for (const node of d.entries.values()) {
        if (seen.has(node)) continue;
        seen.add(node);
        if (node instanceof Dir) walk(node);
        else node.lose(rng);
      }
    };
    walk(this.root);
  }

  /** A StorageFs for one "process": it fails with EIO after the next power loss. */
  view(): StorageFs {
    const gen = this.generation;
    const enter = (what: string): void => {
      if (gen !== this.generation) throw fsError('EIO', `${what}: the power was lost (a handle of a dead process)`);
      this.ops++;
      if (this.ops >= this.crashAtOp) {
        this.powerLoss();
        throw fsError('EIO', `${what}: power lost`);
      }
    };
    const run = <T>(what: string, fn: () => T): Promise<T> => {
      try {
        enter(what);
        return Promise.resolve(fn());
      } catch (err) {
        return Promise.reject(err as Error);
      }
    };
    return {
      open: (file, mode) => run(`open ${file}`, () => this.open(file, mode, enter)),
      readFile: (file) =>
        run(`readFile ${file}`, () => {
          const n = this.lookup(file);
          if (!(n instanceof Inode)) throw fsError(n ? 'EISDIR' : 'ENOENT', file);
          return Buffer.from(n.read(0, n.size));
        }),
      readdir: (dir) =>
        run(`readdir ${dir}`, () => {
          const d = this.lookup(dir);
          if (!(d instanceof Dir)) throw fsError(d ? 'ENOTDIR' : 'ENOENT', dir);
          return [...d.entries.keys()].sort();
        }),
      mkdir: (dir) =>
        run(`mkdir ${dir}`, () => {
          let d = this.root;
          for (const part of this.parts(dir)) {
            let next = d.entries.get(part);
            if (!next) d.change([[part, (next = new Dir())]]);
            if (!(next instanceof Dir)) throw fsError('ENOTDIR', dir);
            d = next;
          }
        }),
      rename: (from, to) =>
        run(`rename ${from}`, () => {
          const [fd, fname] = this.parent(from);
          const [td, tname] = this.parent(to);
          const node = fd.entries.get(fname);
          if (!node) throw fsError('ENOENT', from);
          if (fd === td) fd.change([[fname, undefined], [tname, node]]);
          else {
            td.change([[tname, node]]);
            fd.change([[fname, undefined]]);
          }
        }),
      unlink: (file) =>
        run(`unlink ${file}`, () => {
          const [d, name] = this.parent(file);
          if (d.entries.has(name)) d.change([[name, undefined]]);
        }),
      fsyncDir: (dir) =>
        run(`fsyncDir ${dir}`, () => {
          const d = this.lookup(dir);
          if (!(d instanceof Dir)) throw fsError('ENOENT', dir);
          d.sync();
        }),
    };
  }

  /** Reads a file as it is now (for assertions). */
  peek(file: string): Buffer | undefined {
    const n = this.lookup(file);
    return n instanceof Inode ? Buffer.from(n.read(0, n.size)) : undefined;
  }

  /** Names in a directory now (for assertions). */
  list(dir: string): string[] {
    const d = this.lookup(dir);
    return d instanceof Dir ? [...d.entries.keys()].sort() : [];
  }

  private parts(p: string): string[] {
    return path.resolve(p).split('/').filter(Boolean);
  }

  private lookup(p: string): Node | undefined {
    let n: Node | undefined = this.root;
    for (const part of this.parts(p)) {
      if (!(n instanceof Dir)) return undefined;
      n = n.entries.get(part);
    }
    return n;
  }

  private parent(p: string): [Dir, string] {
    const d = this.lookup(path.dirname(path.resolve(p)));
    if (!(d instanceof Dir)) throw fsError('ENOENT', p);
    return [d, path.basename(p)];
  }

  private open(file: string, mode: OpenMode, enter: (what: string) => void): StorageFile {
    const [d, name] = this.parent(file);
    let node = d.entries.get(name);
    if (node instanceof Dir) throw fsError('EISDIR', file);
    if (node && mode === 'create-excl') throw fsError('EEXIST', file);
    if (!node) {
      if (mode === 'rw') throw fsError('ENOENT', file);
      d.change([[name, (node = new Inode())]]);
    } else if (mode === 'truncate' && node.size > 0) {
      node.apply({ kind: 'truncate', len: 0 });
      node.pending.push({ kind: 'truncate', len: 0 });
    }
    const inode = node;
    let closed = false;
    const op = <T>(what: string, fn: () => T): Promise<T> => {
      try {
        enter(`${what} ${file}`);
        if (closed) throw fsError('EBADF', file);
        return Promise.resolve(fn());
      } catch (err) {
        return Promise.reject(err as Error);
      }
    };
    const write = (bytes: Buffer, pos: number): number => {
      const grow = Math.max(0, pos + bytes.length - inode.size);
      const room = Math.max(0, this.capacityBytes - this.usedBytes);
      let n = bytes.length;
      if (grow > room) {
        n = Math.max(0, room - Math.max(0, pos - inode.size));
        if (n === 0) throw fsError('ENOSPC', `no space left writing ${file}`);
      }
      const w: FileOp = { kind: 'write', pos, bytes: Buffer.from(bytes.subarray(0, n)) };
      inode.apply(w);
      inode.pending.push(w);
      return n;
    };
    return {
      read: (buffer, offset, length, position) =>
        op('read', () => {
          const src = inode.read(position, length);
          src.copy(buffer, offset);
          return { bytesRead: src.length };
        }),
      write: (buffer, offset, length, position) => op('write', () => ({ bytesWritten: write(buffer.subarray(offset, offset + length), position) })),
      writev: (buffers, position) =>
        op('writev', () => {
          const all = Buffer.concat(buffers);
          return { bytesWritten: write(all, position) };
        }),
      datasync: () => op('datasync', () => inode.sync()),
      truncate: (len) =>
        op('truncate', () => {
          const t: FileOp = { kind: 'truncate', len };
          inode.apply(t);
          inode.pending.push(t);
        }),
      stat: () => op('stat', () => ({ size: inode.size })),
      close: () =>
        op('close', () => {
          closed = true;
        }),
    };
  }
}
