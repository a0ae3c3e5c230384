/**
 * A small X.509 v3 certificate builder (RFC 5280) on `node:crypto`: ECDSA P-256 keys, SHA-256
 * signatures, DER written by hand. It exists so that `hadron dev --tls`, the operator and the
 * tests can make a local CA and server/client certificates without the `openssl` CLI or a large
 * dependency (node-forge is ~1 MB of pure-JS crypto; we need ~200 lines of DER). Node's own TLS
 * stack (OpenSSL) verifies what it produces, and `crypto.X509Certificate` parses it in the tests.
 *
 * DER subset used (X.690): SEQUENCE 30, SET 31, INTEGER 02, BIT STRING 03, OCTET STRING 04,
 * OID 06, UTF8String 0C, UTCTime 17 (years 1950–2049) / GeneralizedTime 18, BOOLEAN 01,
 * context tags A0 (version), A3 (extensions), 80 (keyIdentifier), 82 (dNSName), 87 (iPAddress).
 *
 *   TBSCertificate ::= SEQUENCE { [0] version(2), serial, sigAlg, issuer, validity, subject,
 *                                 subjectPublicKeyInfo, [3] extensions }
 */
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import net from 'node:net';

export interface CertificateOptions {
  /** Subject common name. */
  commonName: string;
  /** subjectAltName DNS names (what TLS clients verify the host name against). */
  dnsNames?: readonly string[];
  /** subjectAltName IP addresses (IPv4 or IPv6). */
  ipAddresses?: readonly string[];
  /** Default: now − 1 h (tolerates small clock skew). */
  notBefore?: Date;
  /** Default: notBefore + 825 days (the CA/Browser-forum maximum for leaf certificates). */
  notAfter?: Date;
  /** A CA certificate (basicConstraints cA, keyCertSign) instead of a server/client leaf. */
  isCa?: boolean;
  /** The signing CA; self-signed when absent. */
  issuer?: CertificateAuthority;
}

/** A certificate and its private key, both PEM. */
export interface CertificateAndKey {
  cert: string;
  key: string;
}

/** A CA that can sign: its certificate and key (PEM), e.g. read back from files. */
export type CertificateAuthority = CertificateAndKey;

// ---- DER ----
function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
const set = (...parts: Buffer[]): Buffer => tlv(0x31, Buffer.concat(parts));
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bits = (b: Buffer, unused = 0): Buffer => tlv(0x03, Buffer.concat([Buffer.from([unused]), b]));
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));

function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && (b[i + 1]! & 0x80) === 0) i++;
  const v = b.subarray(i);
  return tlv(0x02, (v[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const n of rest) {
    const groups: number[] = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) groups.unshift((v & 0x7f) | 0x80);
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-11-29T19:41:56.123Z
  const digits = iso.slice(0, 19).replace(/[-:T]/g, ''); // 20261129194156
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050 ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${digits}Z`));
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  subjectKeyId: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyId: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

const nameOf = (cn: string): Buffer => seq(set(seq(oid(OID.commonName), utf8(cn))));
const ext = (id: string, critical: boolean, value: Buffer): Buffer => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
function keyId(spki: Buffer): Buffer {
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm SEQUENCE, subjectPublicKey BIT STRING }
  const outer = readTlv(spki, 0);
  const alg = readTlv(spki, outer.start);
  const key = readTlv(spki, alg.end);
  return createHash('sha1').update(spki.subarray(key.start + 1, key.end)).digest();
}

function readTlv(buf: Buffer, at: number): { tag: number; start: number; end: number } {
  const tag = buf[at]!;
  let len = buf[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  return { tag, start, end: start + len };
}

/** The subject Name (DER) of a certificate: TBSCertificate's 6th element (after [0] version). */
function subjectDer(certDer: Buffer): Buffer {
  const cert = readTlv(certDer, 0);
  const tbs = readTlv(certDer, cert.start);
  let at = tbs.start;
  for (let i = 0; i < 5; i++) at = readTlv(certDer, at).end; // version, serial, sigAlg, issuer, validity
  const subject = readTlv(certDer, at);
  return certDer.subarray(at, subject.end);
}

const pem = (label: string, der: Buffer): string => `-----BEGIN ${label}-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;

/**
 * Creates a key pair and a certificate for it, signed by `issuer` (or self-signed). Leaf
 * certificates carry serverAuth and clientAuth, so one generator serves servers and mTLS clients.
 */
export function createCertificate(o: CertificateOptions): CertificateAndKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const notBefore = o.notBefore ?? new Date(Date.now() - 3600_000);
  const notAfter = o.notAfter ?? new Date(notBefore.getTime() + 825 * 86_400_000);
  let issuerName: Buffer;
  let issuerKey: KeyObject;
  let issuerKeyId: Buffer;
  if (o.issuer) {
    const ca = new X509Certificate(o.issuer.cert);
    if (!ca.ca) throw new Error('createCertificate: the issuer certificate is not a CA certificate');
    issuerName = subjectDer(ca.raw);
    issuerKey = createPrivateKey(o.issuer.key);
    issuerKeyId = keyId(ca.publicKey.export({ type: 'spki', format: 'der' }));
  } else {
    issuerName = nameOf(o.commonName);
    issuerKey = privateKey;
    issuerKeyId = keyId(spki);
  }
  const sans: Buffer[] = [];
  for (const d of o.dnsNames ?? []) sans.push(tlv(0x82, Buffer.from(d, 'ascii')));
  for (const ip of o.ipAddresses ?? []) sans.push(tlv(0x87, ipBytes(ip)));
  const exts: Buffer[] = [
    ext(OID.basicConstraints, true, o.isCa ? seq(bool(true)) : seq()),
    // CA: digitalSignature | keyCertSign | cRLSign (0x86, 1 unused bit); leaf: digitalSignature (0x80, 7 unused).
    ext(OID.keyUsage, true, o.isCa ? bits(Buffer.from([0x86]), 1) : bits(Buffer.from([0x80]), 7)),
    ext(OID.subjectKeyId, false, octets(keyId(spki))),
    ext(OID.authorityKeyId, false, seq(tlv(0x80, issuerKeyId))),
  ];
  if (!o.isCa) exts.push(ext(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth))));
  if (sans.length > 0) exts.push(ext(OID.subjectAltName, false, seq(...sans)));
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const sigAlg = seq(oid(OID.ecdsaWithSha256));
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(serial),
    sigAlg,
    issuerName,
    seq(time(notBefore), time(notAfter)),
    nameOf(o.commonName),
    spki,
    tlv(0xa3, seq(...exts)),
  );
  const signature = sign('sha256', tbs, { key: issuerKey, dsaEncoding: 'der' });
  const der = seq(tbs, sigAlg, bits(signature));
  return { cert: pem('CERTIFICATE', der), key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

function ipBytes(ip: string): Buffer {
  const kind = net.isIP(ip);
  if (kind === 4) return Buffer.from(ip.split('.').map(Number));
  if (kind === 6) {
    const [head = '', tail = ''] = ip.split('::') as [string?, string?];
    const h = head === '' ? [] : head.split(':');
    const t = ip.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
    const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
    const out = Buffer.alloc(16);
    groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
    return out;
  }
  throw new Error(`createCertificate: ${JSON.stringify(ip)} is not an IP address`);
}

/** A new self-signed CA (10 years by default). */
export function createCertificateAuthority(commonName: string, opts: { notBefore?: Date; notAfter?: Date } = {}): CertificateAuthority {
  const notBefore = opts.notBefore ?? new Date(Date.now() - 3600_000);
  return createCertificate({ commonName, isCa: true, notBefore, notAfter: opts.notAfter ?? new Date(notBefore.getTime() + 3650 * 86_400_000) });
}
