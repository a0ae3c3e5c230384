/**
 * TLS options of the client. An `https://` URL means TLS with verification of the server's
 * certificate (against the system CAs, or `ca`/`caFile` for a private CA) and host name; there is
 * deliberately no option to turn verification off. `cert`/`key` (or their files) present a client
 * certificate to servers that verify clients (HADRON_TLS_CLIENT_CA_FILE on the server).
 */
import fs from 'node:fs';
import { HadronError, type ChannelTls } from '@hadron/core';

export interface ClientTlsOptions {
  /** PEM CA certificate(s) to trust for https:// instead of the system store. */
  ca?: string | Buffer;
  /** File with PEM CA certificate(s) (read once, at createClient). */
  caFile?: string;
  /** PEM client certificate for mutual TLS (with `key`). */
  cert?: string | Buffer;
  certFile?: string;
  /** PEM private key of the client certificate. */
  key?: string | Buffer;
  keyFile?: string;
}

/** Resolves the options into channel TLS material; throws INVALID_ARGUMENT naming the problem. */
export function clientTls(o: ClientTlsOptions, scheme: 'http' | 'https'): ChannelTls | undefined {
  const pick = (value: string | Buffer | undefined, file: string | undefined, name: string): string | Buffer | undefined => {
    if (value !== undefined && file !== undefined) throw new HadronError('INVALID_ARGUMENT', `createClient: give either \`${name}\` or \`${name}File\`, not both`);
    if (file === undefined) return value;
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new HadronError('INVALID_ARGUMENT', `createClient: cannot read \`${name}File\` ${JSON.stringify(file)}: ${(err as Error).message}`);
    }
  };
  const ca = pick(o.ca, o.caFile, 'ca');
  const cert = pick(o.cert, o.certFile, 'cert');
  const key = pick(o.key, o.keyFile, 'key');
  if ((cert === undefined) !== (key === undefined)) throw new HadronError('INVALID_ARGUMENT', 'createClient: a client certificate needs both `cert` and `key`');
  if (ca === undefined && cert === undefined) return undefined;
  if (scheme !== 'https') {
    // Silently ignoring them would leave a user believing the connection is protected.
    throw new HadronError('INVALID_ARGUMENT', 'createClient: TLS options (ca, cert, key) were given but the URL is not https://; use https:// to connect with TLS');
  }
  return { ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}) };
}
