/**
 * Certificates for `hadron dev --tls`: a local CA and a server certificate for the loopback
 * addresses, made with @hadron/core's X.509 builder (no `openssl` needed), kept in
 * `<data>/tls/`. The CA is reused across runs (so a client's HADRON_CA_FILE keeps working); the
 * server certificate is re-issued when it is missing, not signed by that CA, or expires within
 * 30 days. Keys are written with mode 0600.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createCertificate, createCertificateAuthority, type CertificateAndKey } from '@hadron/core';
import { writeAtomic } from './tokens.js';

export interface DevTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

const RENEW_BEFORE_MS = 30 * 86_400_000;

function readPair(certFile: string, keyFile: string): CertificateAndKey | undefined {
  try {
    return { cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8') };
  } catch {
    return undefined;
  }
}

/** Ensures `<dataDir>/tls/{ca.crt,ca.key,server.crt,server.key}`; returns what was (re)made too. */
export function ensureDevCertificates(dataDir: string): DevTlsFiles & { created: string[] } {
  const dir = path.join(dataDir, 'tls');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files = { caFile: path.join(dir, 'ca.crt'), caKey: path.join(dir, 'ca.key'), certFile: path.join(dir, 'server.crt'), keyFile: path.join(dir, 'server.key') };
  const created: string[] = [];
  let ca = readPair(files.caFile, files.caKey);
  if (!ca || !usable(ca.cert, undefined)) {
    ca = createCertificateAuthority(`Hadron dev CA (${path.resolve(dataDir)})`);
    writeAtomic(files.caKey, ca.key, 0o600);
    writeAtomic(files.caFile, ca.cert);
    created.push(files.caFile);
  }
  const server = readPair(files.certFile, files.keyFile);
  if (!server || !usable(server.cert, ca.cert)) {
    const s = createCertificate({ commonName: 'hadron-dev', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'], issuer: ca });
    writeAtomic(files.keyFile, s.key, 0o600);
    writeAtomic(files.certFile, s.cert);
    created.push(files.certFile);
  }
  return { caFile: files.caFile, certFile: files.certFile, keyFile: files.keyFile, created };
}

/** Parses, is not about to expire, and (with `caPem`) is signed by that CA. */
function usable(certPem: string, caPem: string | undefined): boolean {
  try {
    const c = new X509Certificate(certPem);
    if (new Date(c.validTo).getTime() - Date.now() < RENEW_BEFORE_MS) return false;
    return caPem === undefined ? c.ca : c.verify(new X509Certificate(caPem).publicKey);
  } catch {
    return false;
  }
}
