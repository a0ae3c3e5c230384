/**
 * HS512 JSON Web Tokens (RFC 7519 / RFC 7515), exactly as the original Hadron operator mints
 * them: header `{"typ":"JWT","alg":"HS512"}`, claims `{"jti": <uuid v4>, "sub": <Token name>}`,
 * signed with the Token's own 128-byte random HMAC key. Only HS512 is accepted on verification
 * (no `none`, no algorithm confusion).
 *
 * Time claims (RFC 7519 §4.1.4, §4.1.5): `exp` and `nbf` are optional, but when present they must
 * be JSON numbers (NumericDate, seconds since the epoch) — anything else is refused, never
 * ignored. They are checked with `checkTimeClaims()` on every use of a token, not once: a cache of
 * verified tokens keeps the claims and re-checks them (docs/security.md).
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
  for (const name of ['exp', 'nbf'] as const) {
    const v = (claims as Record<string, unknown>)[name];
    // A string "exp" (or null, or an object) would silently mean "never expires" if ignored.
    if (v !== undefined && (typeof v !== 'number' || Number.isNaN(v))) {
      throw new JwtError(`InvalidToken: the \`${name}\` claim must be a number (seconds since the epoch), got ${JSON.stringify(v)}`);
    }
  }
  return { claims: claims as TokenClaims, signingInput: `${h}.${p}`, signature: Buffer.from(s, 'base64url') };
}

/**
 * Clock-skew allowance for `exp` and `nbf`, in seconds: a token is still accepted until
 * `exp + 5` and already from `nbf - 5`. Small on purpose — tokens are minted and checked inside
 * one cluster whose clocks are NTP-synchronised; documented in docs/security.md.
 */
export const JWT_CLOCK_SKEW_SECONDS = 5;

/**
 * Checks `exp`/`nbf` against `nowSec` (with `JWT_CLOCK_SKEW_SECONDS` leeway); throws JwtError.
 * Call it on every use of a token, also when its signature was verified earlier.
 */
export function checkTimeClaims(claims: Pick<TokenClaims, 'exp' | 'nbf'>, nowSec = Date.now() / 1000): void {
  const { exp, nbf } = claims;
  if (exp !== undefined && nowSec >= exp + JWT_CLOCK_SKEW_SECONDS) {
    throw new JwtError(`ExpiredSignature: the token expired at ${isoOf(exp)}`);
  }
  if (nbf !== undefined && nowSec < nbf - JWT_CLOCK_SKEW_SECONDS) {
    throw new JwtError(`ImmatureSignature: the token is not valid before ${isoOf(nbf)}`);
  }
}

/** The time (ms since the epoch) at which `checkTimeClaims` starts refusing, or undefined. */
export function expiryMs(claims: Pick<TokenClaims, 'exp'>): number | undefined {
  return claims.exp === undefined ? undefined : (claims.exp + JWT_CLOCK_SKEW_SECONDS) * 1000;
}

function isoOf(sec: number): string {
  const d = new Date(sec * 1000);
  return Number.isNaN(d.getTime()) ? String(sec) : d.toISOString();
}

/** Verifies an HS512 signature and the time claims; throws JwtError. */
export function verifyJwt(decoded: ReturnType<typeof decodeJwtUnverified>, key: Uint8Array, nowSec = Date.now() / 1000): TokenClaims {
  const expected = createHmac('sha512', key).update(decoded.signingInput).digest();
  if (expected.length !== decoded.signature.length || !timingSafeEqual(expected, decoded.signature)) {
    throw new JwtError('InvalidSignature');
  }
  checkTimeClaims(decoded.claims, nowSec);
  return decoded.claims;
}
