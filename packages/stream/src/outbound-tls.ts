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
 * The files are read once at start (unlike the server certificate, which is reloaded): a rotated
 * client certificate or CA takes effect at the next restart.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { HadronError } from '@hadron/core';
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
