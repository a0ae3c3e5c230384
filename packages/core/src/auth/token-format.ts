/**
 * Canonical form of a bearer credential, checked before anything is cached or verified.
 *
 * Node's base64url decoder is lenient: it ignores characters outside the alphabet, `=` padding
 * and whitespace, and it accepts non-zero unused bits in the last character. So one signed JWT
 * has unboundedly many spellings that all verify, and a cache keyed by the raw header can be
 * grown with distinct ~55 KB headers by anyone holding any valid token (issue 14 item 5).
 * Accepting only the canonical spelling (RFC 7515 §2: base64url without padding, RFC 4648 §3.5:
 * unused bits zero) makes a token's text a function of its bytes: one signed token, one entry.
 *
 *   authorization = ("bearer" / "Bearer") SP jwt          ; exactly one space
 *   jwt           = b64 "." b64 "." b64
 *   b64           = *( ALPHA / DIGIT / "-" / "_" )        ; canonical: re-encoding gives it back
 */

/** Longest `authorization` value accepted (our tokens are ~250 bytes; names ≤ 253 chars). */
export const MAX_AUTHORIZATION_BYTES = 8 * 1024;

const B64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Extracts the canonical JWT from an `authorization` value. Returns `{ jwt }` or `{ problem }`
 * naming what is wrong (callers map it to UNAUTHENTICATED); never throws.
 */
export function canonicalBearer(header: string): { jwt: string; problem?: undefined } | { jwt?: undefined; problem: string } {
  if (header.length > MAX_AUTHORIZATION_BYTES) {
    return { problem: `authorization value of ${header.length} bytes exceeds the limit of ${MAX_AUTHORIZATION_BYTES} bytes` };
  }
  // HTTP/2 strips trailing whitespace from field values, so `bearer ` arrives as `bearer`.
  if (header === 'bearer' || header === 'Bearer') return { problem: 'no token detected in header' };
  if (!header.startsWith('bearer ') && !header.startsWith('Bearer ')) {
    return { problem: "authorization header value must begin with 'bearer '" };
  }
  const jwt = header.slice(7);
  if (jwt === '') return { problem: 'no token detected in header' };
  const parts = jwt.split('.');
  if (parts.length !== 3) return { problem: 'InvalidToken: a JWT has three dot-separated parts' };
  for (const p of parts) {
    if (!B64URL.test(p)) {
      return { problem: 'InvalidToken: a JWT part contains characters outside the base64url alphabet (no padding, spaces or other characters are accepted)' };
    }
    if (Buffer.from(p, 'base64url').toString('base64url') !== p) {
      return { problem: 'InvalidToken: a JWT part is not canonical base64url (bad length or non-zero trailing bits)' };
    }
  }
  return { jwt };
}
