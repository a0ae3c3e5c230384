/**
 * HS512 JSON Web Tokens (RFC 7519 / RFC 7515), exactly as the original Hadron operator mints
 * them: header `{"typ":"JWT","alg":"HS512"}`, claims `{"jti": <uuid v4>, "sub": <Token name>}`,
 * signed with the Token's own 128-byte random HMAC key. Only HS512 is accepted on verification
 * (no `none`, no algorithm confusion); `exp`/`nbf` are honoured when present.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

export interface TokenClaims {
  jti: string;
  sub: string;
  exp?: number;
  nbf?: number;
}

const HEADER = Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'HS512' })).toString('base64url');

/** 128 random bytes from the system CSPRNG: the per-token HMAC key. */
export const newHmacKey = (): Buffer => randomBytes(128);

export function signJwt(claims: TokenClaims, key: Uint8Array): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const sig = createHmac('sha512', key).update(`${HEADER}.${payload}`).digest('base64url');
  return `${HEADER}.${payload}.${sig}`;
}

/** Mints a token for the Token named `name`, as the operator does. */
export function mintToken(name: string, key: Uint8Array = newHmacKey()): { key: Uint8Array; token: string; jti: string } {
  const jti = randomUUID();
  return { key, token: signJwt({ jti, sub: name }, key), jti };
}

export class JwtError extends Error {
  override readonly name = 'JwtError';
}

/** Reads the claims without verifying (to find the key by `sub`). Throws JwtError. */
export function decodeJwtUnverified(token: string): { claims: TokenClaims; signingInput: string; signature: Buffer } {
  const parts = token.split('.');
  if (parts.length !== 3) throw new JwtError('InvalidToken: a JWT has three dot-separated parts');
  const [h, p, s] = parts as [string, string, string];
  let header: unknown;
  let claims: unknown;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    throw new JwtError('InvalidToken: header or claims are not base64url JSON');
  }
  if (typeof header !== 'object' || header === null || (header as { alg?: unknown }).alg !== 'HS512') {
    throw new JwtError('InvalidAlgorithm: only HS512 is accepted');
  }
  if (typeof claims !== 'object' || claims === null || typeof (claims as { sub?: unknown }).sub !== 'string') {
    throw new JwtError('InvalidToken: claims lack a string `sub`');
  }
  return { claims: claims as TokenClaims, signingInput: `${h}.${p}`, signature: Buffer.from(s, 'base64url') };
}

/** Verifies an HS512 signature and the time claims; throws JwtError. */
export function verifyJwt(decoded: ReturnType<typeof decodeJwtUnverified>, key: Uint8Array, nowSec = Date.now() / 1000): TokenClaims {
  const expected = createHmac('sha512', key).update(decoded.signingInput).digest();
  if (expected.length !== decoded.signature.length || !timingSafeEqual(expected, decoded.signature)) {
    throw new JwtError('InvalidSignature');
  }
  const { exp, nbf } = decoded.claims;
  if (typeof exp === 'number' && nowSec >= exp) throw new JwtError('ExpiredSignature');
  if (typeof nbf === 'number' && nowSec < nbf) throw new JwtError('ImmatureSignature');
  return decoded.claims;
}
