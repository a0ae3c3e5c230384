/**
 * TLS for a Stream (`spec.tls`): the pod side (Secret volume, env) and, when no `secretName` is
 * given, the operator-made certificates.
 *
 *   Secret {stream}-tls-ca   kubernetes.io/tls  the Stream's own CA (tls.crt, tls.key) — never mounted
 *   Secret {stream}-tls      kubernetes.io/tls  server certificate (tls.crt, tls.key) + ca.crt for clients
 *
 * The server certificate names the headless Service, every per-partition Service and the pods'
 * headless DNS names (`*.{stream}.{ns}.svc…`). It is re-issued (delete + create: the operator's
 * RBAC has no get/patch on Secrets) when it is missing, not signed by the CA, expires within 30
 * days, or does not cover the current partition count; the partitions reload it from the volume
 * without a restart (tls-files.ts in the stream package). Both Secrets carry the operator's
 * labels and an owner reference to the Stream; stream pods ignore them (type kubernetes.io/tls).
 */
import { X509Certificate } from 'node:crypto';
import { createCertificate, createCertificateAuthority, type CertificateAndKey, type Stream } from '@hadron/core';
import type { KubeObject } from '@hadron/k8s';
import { ownerRef, streamLabels } from './objects.js';

const RENEW_BEFORE_MS = 30 * 86_400_000;

export const caSecretName = (stream: string): string => `${stream}-tls-ca`;

/** Names clients may use for the Stream's partitions (the default advertise template included). */
export function serverDnsNames(s: Stream, namespace: string): string[] {
  const name = s.metadata.name;
  const forms = (host: string): string[] => [host, `${host}.${namespace}`, `${host}.${namespace}.svc`, `${host}.${namespace}.svc.cluster.local`];
  return [...forms(name), `*.${name}.${namespace}.svc.cluster.local`, ...Array.from({ length: s.spec.partitions }, (_, i) => forms(`${name}-${i}`)).flat()];
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function tlsSecret(s: Stream, namespace: string, name: string, data: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name, namespace, labels: streamLabels(s.metadata.name), ownerReferences: [ownerRef(s)] },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  } as KubeObject;
}

export function newCaSecret(s: Stream, namespace: string): KubeObject {
  const ca = createCertificateAuthority(`Hadron Stream ${namespace}/${s.metadata.name} CA`);
  return tlsSecret(s, namespace, caSecretName(s.metadata.name), { 'tls.crt': ca.cert, 'tls.key': ca.key });
}

export function newServerSecret(s: Stream, namespace: string, ca: CertificateAndKey): KubeObject {
  const cert = createCertificate({ commonName: `${s.metadata.name}.${namespace}.svc`, dnsNames: serverDnsNames(s, namespace), issuer: ca });
  return tlsSecret(s, namespace, `${s.metadata.name}-tls`, { 'tls.crt': cert.cert, 'tls.key': cert.key, 'ca.crt': ca.cert });
}

/** The certificate and key of a kubernetes.io/tls Secret, if present and parsable. */
export function pairOf(secret: KubeObject | undefined): CertificateAndKey | undefined {
  const data = (secret as { data?: Record<string, string> } | undefined)?.data;
  if (!data?.['tls.crt'] || !data['tls.key']) return undefined;
  const pair = { cert: Buffer.from(data['tls.crt'], 'base64').toString(), key: Buffer.from(data['tls.key'], 'base64').toString() };
  try {
    new X509Certificate(pair.cert);
    return pair;
  } catch {
    return undefined;
  }
}

/** A CA the operator can keep using (parses, is a CA, not about to expire). */
export function usableCa(secret: KubeObject | undefined): CertificateAndKey | undefined {
  const pair = pairOf(secret);
  if (!pair) return undefined;
  const c = new X509Certificate(pair.cert);
  return c.ca && new Date(c.validTo).getTime() - Date.now() > RENEW_BEFORE_MS ? pair : undefined;
}

/** Why the server Secret must be (re)issued, or undefined when it is fine. */
export function serverSecretProblem(secret: KubeObject | undefined, s: Stream, namespace: string, ca: CertificateAndKey): string | undefined {
  const pair = pairOf(secret);
  if (!pair) return 'missing';
  const c = new X509Certificate(pair.cert);
  if (!c.verify(new X509Certificate(ca.cert).publicKey)) return 'not signed by the Stream CA';
  if (new Date(c.validTo).getTime() - Date.now() < RENEW_BEFORE_MS) return 'expires within 30 days';
  const last = `${s.metadata.name}-${s.spec.partitions - 1}.${namespace}.svc.cluster.local`;
  if (c.checkHost(last) === undefined) return `does not name ${last}`;
  return undefined;
}
