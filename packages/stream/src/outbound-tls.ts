/**
 * TLS of the partition server's own outbound connections (docs/http.md, "Outbound TLS"):
 *
 *   connection                                   trusts                                   presents
 *   HTTP ingress → owning partition (forwarding)  HADRON_TLS_CA_FILE, ca.crt next to the     the client
 *                                                 server certificate, the certificate itself certificate
 *   dead-letter / reply publishing (@hadron/client) HADRON_TLS_CA_FILE (else ca.crt next to
 *   Trigger sinks (https://)                       the server certificate) + the system CAs
 *
 * "The client certificate" is HADRON_TLS_CLIENT_CERT_FILE + HADRON_TLS_CLIENT_KEY_FILE when set;
 * without it nothing is presented, so a peer with HADRON_TLS_CLIENT_CA_FILE (mutual TLS) refuses
 * the connection. The server certificate is not reused as a client certificate: it is often
 * issued for serverAuth only, and a separate identity can be rotated and revoked on its own.
 * The system CAs stay trusted for the external connections (a sink may be a public service);
 * Node replaces them when `ca` is given, so they are added explicitly.
 *
 * The files are re-read every HADRON_TLS_RELOAD_INTERVAL_MS (`OutboundTlsSource`), as the server
 * certificate is: changed, valid material gets a new `version`, and each user moves to it for its
 * next connection (the forwarder opens a new channel, dead-letter/reply clients are re-made,
 * Trigger sinks get a new agent); connections in use finish on the old material. Unusable files
 * keep the previous material (logged).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { createHash } from 'node:crypto';
import { HadronError, type Logger } from '@hadron/core';
import type { StreamConfig } from './config.js';

/** PEM material for one kind of outbound connection (fields absent: Node's defaults). */
export interface OutboundTlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export interface OutboundTls {
  /** The forwarding hop to another partition of this Stream. */
  forwarding: OutboundTlsMaterial;
  /** Other Streams (dead-letter, reply) and Trigger sinks. */
  external: OutboundTlsMaterial;
}

async function readFile(file: string, variable: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    throw new HadronError('CONFIG_INVALID', `invalid configuration: ${variable} ${JSON.stringify(file)} cannot be read: ${(err as Error).message}`, { context: { variable } });
  }
}

/** Reads and checks the files; CONFIG_INVALID names the variable and the problem. */
export async function readOutboundTls(cfg: Pick<StreamConfig, 'tls' | 'outboundTls'>, serverCert: Buffer | string | undefined): Promise<OutboundTls> {
  const o = cfg.outboundTls;
  const configuredCa = o.caFile !== undefined ? await readFile(o.caFile, 'HADRON_TLS_CA_FILE') : undefined;
  // A Kubernetes TLS Secret volume carries the issuer next to the certificate.
  const besideCert = cfg.tls ? await fs.readFile(path.join(path.dirname(cfg.tls.certFile), 'ca.crt')).catch(() => undefined) : undefined;
  let client: Pick<OutboundTlsMaterial, 'cert' | 'key'> = {};
  if (o.clientCertFile !== undefined && o.clientKeyFile !== undefined) {
    const cert = await readFile(o.clientCertFile, 'HADRON_TLS_CLIENT_CERT_FILE');
    const key = await readFile(o.clientKeyFile, 'HADRON_TLS_CLIENT_KEY_FILE');
    try {
      tls.createSecureContext({ cert, key });
    } catch (err) {
      throw new HadronError('CONFIG_INVALID', `invalid configuration: HADRON_TLS_CLIENT_CERT_FILE and HADRON_TLS_CLIENT_KEY_FILE are not a usable pair: ${(err as Error).message}`, { context: { variable: 'HADRON_TLS_CLIENT_CERT_FILE' } });
    }
    client = { cert, key };
  }
  const join = (parts: Array<Buffer | string | undefined>): Buffer | undefined => {
    const present = parts.filter((p): p is Buffer | string => p !== undefined);
    return present.length ? Buffer.concat(present.flatMap((p) => [Buffer.from(p), Buffer.from('\n')])) : undefined;
  };
  const forwardingCa = join([configuredCa, besideCert, serverCert]);
  const privateCa = configuredCa ?? besideCert;
  const externalCa = privateCa ? join([privateCa, ...tls.rootCertificates]) : undefined;
  return {
    forwarding: { ...(forwardingCa ? { ca: forwardingCa } : {}), ...client },
    external: { ...(externalCa ? { ca: externalCa } : {}), ...client },
  };
}

/** Material of one kind of connection with the version it belongs to (users compare versions). */
export type VersionedTls = () => { version: number; material: OutboundTlsMaterial };

/** The material in use and its version (incremented on every applied change). */
export interface OutboundTlsVersion {
  version: number;
  tls: OutboundTls;
}

export interface OutboundTlsSourceOptions {
  config: Pick<StreamConfig, 'tls' | 'outboundTls'>;
  initial: OutboundTls;
  intervalMs: number;
  logger: Logger;
}

function digest(t: OutboundTls): string {
  const h = createHash('sha256');
  for (const m of [t.forwarding, t.external]) for (const b of [m.ca, m.cert, m.key]) h.update(b ?? '-').update('\0');
  return h.digest('hex');
}

/** Polls the outbound TLS files; `current()` is the latest valid material. `stop()` is idempotent. */
export class OutboundTlsSource {
  private cur: OutboundTlsVersion;
  private hash: string;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private failing = false;

  constructor(private readonly o: OutboundTlsSourceOptions) {
    this.cur = { version: 1, tls: o.initial };
    this.hash = digest(o.initial);
  }

  current(): OutboundTlsVersion {
    return this.cur;
  }

  start(): void {
    const files = [this.o.config.outboundTls.caFile, this.o.config.outboundTls.clientCertFile, this.o.config.tls?.certFile].filter((f) => f !== undefined);
    if (files.length === 0 || this.timer) return;
    this.timer = setInterval(() => {
      this.polling ??= this.poll().finally(() => (this.polling = undefined));
    }, this.o.intervalMs);
    this.timer.unref();
  }

  /** Re-reads the files now (the timer calls it; tests may too). */
  async poll(): Promise<void> {
    try {
      const serverCert = this.o.config.tls ? await fs.readFile(this.o.config.tls.certFile) : undefined;
      const next = await readOutboundTls(this.o.config, serverCert);
      this.failing = false;
      const h = digest(next);
      if (h === this.hash) return;
      this.hash = h;
      this.cur = { version: this.cur.version + 1, tls: next };
      this.o.logger.info({ version: this.cur.version }, 'outbound TLS material changed; new connections use it');
    } catch (err) {
      if (!this.failing) this.o.logger.warn({ err }, 'outbound TLS files unusable; the previous material stays in use');
      this.failing = true;
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.polling;
  }
}
