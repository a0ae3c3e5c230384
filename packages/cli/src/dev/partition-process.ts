/**
 * One supervised `hadron-stream` process: partition N of one Stream in `hadron dev`.
 *
 *   starting ──"partition server started"──▶ running ──exit (crash, kill -9)──▶ backoff ──delay──▶ starting
 *      │                                                                          ▲
 *      └──exit before started──────────────────────────────────────────────────────┘
 *   any ──stop()──▶ stopping ──exit──▶ stopped        (SIGTERM, then SIGKILL after the grace)
 *
 * The restart delay grows exponentially (250 ms … 10 s) with consecutive failures and resets
 * once a process has stayed up for 10 s. Output (JSON log lines) goes to a log file; the state
 * changes are reported through `events` for `hadron dev` to print.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { exponentialDelay } from '@hadron/core';

export type ProcessState = 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped';

export interface PartitionProcessOptions {
  stream: string;
  partition: number;
  clientPort: number;
  metricsPort: number;
  /** Environment of the process (complete). */
  env: NodeJS.ProcessEnv;
  /** Path of `bin/hadron-stream.js`. */
  bin: string;
  logFile: string;
  /** Wait this long after SIGTERM before SIGKILL (default 10 s). */
  stopGraceMs?: number;
}

export type ProcessEvent =
  | { kind: 'started'; pid: number; restarts: number }
  | { kind: 'exited'; code: number | null; signal: NodeJS.Signals | null; restartInMs: number | undefined; lastError: string | undefined }
  | { kind: 'stopped' };

const STABLE_MS = 10_000;

export class PartitionProcess extends EventEmitter<{ event: [ProcessEvent] }> {
  private _state: ProcessState = 'stopped';
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private failures = 0;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private log: fs.WriteStream | undefined;
  restarts = 0;

  constructor(readonly o: PartitionProcessOptions) {
    super();
  }

  get name(): string {
    return `${this.o.stream}-${this.o.partition}`;
  }

  get state(): ProcessState {
    return this._state;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the process (idempotent while it is wanted). */
  start(): void {
    if (this._state !== 'stopped') return;
    this.spawn();
  }

  /** Resolves once the process reports it serves (or rejects once it is stopped). */
  whenRunning(): Promise<void> {
    if (this._state === 'running') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const on = (e: ProcessEvent): void => {
        if (e.kind === 'started') this.off('event', on), resolve();
        else if (e.kind === 'stopped') this.off('event', on), reject(new Error(`${this.name} stopped`));
      };
      this.on('event', on);
    });
  }

  private spawn(): void {
    this._state = 'starting';
    this.log ??= fs.createWriteStream(this.o.logFile, { flags: 'a' });
    const child = spawn(process.execPath, [this.o.bin], { env: this.o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let lastError: string | undefined;
    let buf = '';
    const log = this.log;
    child.stdout!.on('data', (chunk: Buffer) => {
      log.write(chunk);
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (this._state === 'starting' && line.includes('"partition server started"')) {
          this._state = 'running';
          this.startedAt = Date.now();
          this.emit('event', { kind: 'started', pid: child.pid ?? 0, restarts: this.restarts });
        } else if (line.includes('"level":50') || line.includes('"level":60')) {
          lastError = errorOfLine(line) ?? lastError;
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      log.write(chunk);
      const text = chunk.toString('utf8').trim();
      if (text) lastError = text.split('\n').pop();
    });
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        this.child = undefined;
        resolve();
        if (this._state === 'stopping' || this._state === 'stopped') {
          this._state = 'stopped';
          this.emit('event', { kind: 'stopped' });
          return;
        }
        const wasUp = this._state === 'running' && Date.now() - this.startedAt >= STABLE_MS;
        this.failures = wasUp ? 1 : this.failures + 1;
        const delay = exponentialDelay(this.failures, { baseMs: 250, maxMs: 10_000 });
        this._state = 'backoff';
        this.emit('event', { kind: 'exited', code, signal, restartInMs: delay, lastError });
        this.timer = setTimeout(() => {
          this.timer = undefined;
          if (this._state !== 'backoff') return;
          this.restarts++;
          this.spawn();
        }, delay);
      });
    });
    child.once('error', (err) => {
      lastError = err.message;
    });
  }

  /** SIGTERM (then SIGKILL after the grace); resolves once the process is gone. Idempotent. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const child = this.child;
    if (this._state === 'stopped') return;
    this._state = 'stopping';
    if (!child) {
      this._state = 'stopped';
      this.emit('event', { kind: 'stopped' });
    } else {
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), this.o.stopGraceMs ?? 10_000);
      await this.exited;
      clearTimeout(kill);
    }
    await new Promise<void>((r) => (this.log ? this.log.end(r) : r()));
    this.log = undefined;
  }

  /** Immediate SIGKILL (second Ctrl-C). */
  kill(): void {
    if (this.timer) clearTimeout(this.timer);
    this._state = 'stopping';
    this.child?.kill('SIGKILL');
  }
}

/** The message (and error message) of a pino JSON line. */
function errorOfLine(line: string): string | undefined {
  try {
    const j = JSON.parse(line) as { msg?: string; err?: { message?: string } };
    return [j.msg, j.err?.message].filter(Boolean).join(': ') || undefined;
  } catch {
    return undefined;
  }
}
