/**
 * The partition server's TLS material from files (HADRON_TLS_CERT_FILE, HADRON_TLS_KEY_FILE and,
 * for client-certificate verification, HADRON_TLS_CLIENT_CA_FILE), reloaded when they change.
 *
 * Why poll contents: a Kubernetes Secret volume is updated by swapping a `..data` symlink to a
 * new directory, so watching the file (inode) misses updates and mtimes can repeat; reading three
 * small files every `intervalMs` (default 1 s) sees every change. A new pair is validated first
 * (`tls.createSecureContext`: key matches certificate); during a rotation the certificate may
 * briefly be new and the key old — then the current pair keeps serving, the error is counted, and
 * the next poll tries again. New connections get the new certificate; open ones keep theirs.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import tls from 'node:tls';
import { Counter, Gauge, type Registry } from 'prom-client';
import { HadronError, serverTlsOptions, type GrpcServerTls, type Logger } from '@hadron/core';

export const TLS_METRIC = {
  reloads: 'hadron_tls_certificate_reloads_total',
  notAfter: 'hadron_tls_certificate_not_after_seconds',
} as const;

export interface TlsFilesConfig {
  certFile: string;
  keyFile: string;
  clientCaFile: string | undefined;
}

/** Reads and validates the files; throws CONFIG_INVALID naming the file and the problem. */
export async function readTlsFiles(cfg: TlsFilesConfig): Promise<GrpcServerTls> {
  const read = async (file: string, variable: string): Promise<Buffer> => {
    try {
      return await fs.readFile(file);
    } catch (err) {
      throw new HadronError('CONFIG_INVALID', `invalid configuration: ${variable} ${JSON.stringify(file)} cannot be read: ${(err as Error).message}`, { context: { variable } });
    }
  };
  // One after the other, so that with several unreadable files the error always names the first
  // (certificate, key, client CA) — not whichever read happened to fail first.
  const cert = await read(cfg.certFile, 'HADRON_TLS_CERT_FILE');
  const key = await read(cfg.keyFile, 'HADRON_TLS_KEY_FILE');
  const clientCa = cfg.clientCaFile === undefined ? undefined : await read(cfg.clientCaFile, 'HADRON_TLS_CLIENT_CA_FILE');
  const material: GrpcServerTls = { cert, key, ...(clientCa ? { clientCa } : {}) };
  try {
    tls.createSecureContext(serverTlsOptions(material));
  } catch (err) {
    throw new HadronError('CONFIG_INVALID', `invalid configuration: the TLS certificate ${cfg.certFile} and key ${cfg.keyFile} are not a usable pair: ${(err as Error).message}`, {
      context: { variable: 'HADRON_TLS_CERT_FILE' },
    });
  }
  return material;
}

export interface TlsReloaderOptions {
  config: TlsFilesConfig;
  /** The material the server started with. */
  initial: GrpcServerTls;
  apply: (material: GrpcServerTls) => void;
  logger: Logger;
  registry: Registry;
  labels: Record<string, string | number>;
  intervalMs: number;
}

/** Polls the files and applies changed, valid material. `stop()` is idempotent. */
export class TlsReloader {
  private timer: NodeJS.Timeout | undefined;
  private current: GrpcServerTls;
  private polling: Promise<void> | undefined;
  private readonly reloads: Counter<'result'>;
  private readonly notAfter: Gauge;

  constructor(private readonly o: TlsReloaderOptions) {
    this.current = o.initial;
    const labelNames = Object.keys(o.labels);
    this.reloads = new Counter({
      name: TLS_METRIC.reloads,
      help: 'Changes of the TLS certificate files seen, by result: applied, or invalid (the previous certificate keeps serving).',
      labelNames: [...labelNames, 'result'],
      registers: [o.registry],
    });
    this.notAfter = new Gauge({ name: TLS_METRIC.notAfter, help: 'Expiry (notAfter, Unix seconds) of the certificate being served.', labelNames, registers: [o.registry] });
    this.setNotAfter(o.initial.cert);
  }

  start(): void {
    this.timer ??= setInterval(() => {
      this.polling ??= this.poll().finally(() => (this.polling = undefined));
    }, this.o.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.polling;
  }

  private async poll(): Promise<void> {
    const c = this.current;
    let next: GrpcServerTls;
    try {
      next = await readTlsFiles(this.o.config);
    } catch (err) {
      // Only a change is worth a log line; unreadable mid-swap files are retried next poll.
      if (!this.sameFilesAsBefore(err)) {
        this.reloads.inc({ ...this.o.labels, result: 'invalid' });
        this.o.logger.warn({ err }, 'TLS files changed but are not usable; still serving the previous certificate');
      }
      return;
    }
    this.lastError = undefined;
    if (eq(next.cert, c.cert) && eq(next.key, c.key) && eq(next.clientCa, c.clientCa)) return;
    try {
      this.o.apply(next);
    } catch (err) {
      this.reloads.inc({ ...this.o.labels, result: 'invalid' });
      this.o.logger.warn({ err }, 'could not apply the new TLS certificate; still serving the previous one');
      return;
    }
    this.current = next;
    this.setNotAfter(next.cert);
    this.reloads.inc({ ...this.o.labels, result: 'applied' });
    this.o.logger.info({ certFile: this.o.config.certFile }, 'TLS certificate reloaded');
  }

  private lastError: string | undefined;
  private sameFilesAsBefore(err: unknown): boolean {
    const msg = (err as Error).message;
    const same = msg === this.lastError;
    this.lastError = msg;
    return same;
  }

  private setNotAfter(cert: string | Buffer): void {
    try {
      this.notAfter.set(this.o.labels, Math.floor(new Date(new X509Certificate(cert).validTo).getTime() / 1000));
    } catch {
      // Several certificates (a chain) or an unparsable one: the gauge keeps its last value.
    }
  }
}

function eq(a: string | Buffer | undefined, b: string | Buffer | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a).equals(Buffer.from(b));
}
