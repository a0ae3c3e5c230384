/**
 * Token authentication and authorization (reference §1.5 with our fixes): `authorization:
 * bearer <JWT>` (also `Bearer`), HS512 verified with the key of the Secret named by `sub`, the
 * Token named `sub` must exist. Missing, malformed, badly signed or unknown → UNAUTHENTICATED;
 * valid but lacking the permission → PERMISSION_DENIED. Deleting the Token or its Secret
 * revokes at once: every call re-checks both against the live view.
 *
 * The cache of verified headers holds the verified *claims*, not a verdict: `exp`/`nbf` are
 * checked on every call (`checkTimeClaims`), so a token that was accepted once stops working
 * when it expires. Long-lived calls re-check their principal with `revalidate()` (see
 * credential-guard.ts).
 */
import {
  HadronError,
  JwtError,
  canonicalBearer,
  checkTimeClaims,
  decodeJwtUnverified,
  verifyJwt,
  type ControlPlaneView,
  type Token,
  type TokenClaims,
  type TokenSecret,
} from '@hadron/core';

import { BoundedTokenCache } from './token-cache.js';

export interface Principal {
  name: string;
  token: Token;
  /** The verified claims (for `exp`). */
  claims: TokenClaims;
  /** The Secret the signature was verified against (a different key there = revoked). */
  secret: TokenSecret;
}

export type Action = 'pub' | 'sub';

interface CacheEntry {
  claims: TokenClaims;
  secret: TokenSecret;
}

const MALFORMED = 'the given authorization credentials are malformed or invalid';

export class Authenticator {
  /** Verified `authorization` values (canonical only) → (verified claims, the Secret object verified against). */
  readonly cache = new BoundedTokenCache<CacheEntry>();

  constructor(private readonly view: () => ControlPlaneView) {}

  authenticate(header: string | string[] | undefined): Principal {
    if (header === undefined) {
      throw new HadronError('UNAUTHENTICATED', 'unauthorized to perform the requested action: no `authorization` metadata; send `authorization: bearer <token>`');
    }
    const v = this.view();
    // Fast path (issue 11): the exact header text of a verified request. Only headers that passed
    // `canonicalBearer` are ever inserted, so the key set is no larger than before (one entry per
    // token and spelling of "bearer"), and a hit skips the base64url checks of every part. The
    // Token and the very Secret verified against are re-checked against the live view and the
    // time claims against the clock on every hit, so revocation and expiry stay exact.
    if (typeof header === 'string') {
      const hit = this.cache.get(header);
      const p = hit && this.fromCache(header, hit, v);
      if (p) return p;
    }
    if (typeof header !== 'string' || !/^[\x20-\x7e]*$/.test(header)) {
      throw new HadronError('UNAUTHENTICATED', `${MALFORMED}: must be a valid string value`);
    }
    // Canonical form first: a non-canonical spelling is refused before it can reach the cache.
    const canon = canonicalBearer(header);
    if (canon.problem !== undefined) throw new HadronError('UNAUTHENTICATED', `${MALFORMED}: ${canon.problem}`);
    const jwt = canon.jwt;
    let sub: string;
    try {
      const decoded = decodeJwtUnverified(jwt);
      sub = decoded.claims.sub;
      const secret = v.secrets.get(sub);
      if (!secret) throw new HadronError('UNAUTHENTICATED', 'the given authorization token is unknown');
      const claims = verifyJwt(decoded, secret.hmacKey);
      const token = v.tokens.get(sub);
      if (!token) throw new HadronError('UNAUTHENTICATED', 'the given authorization token is unknown');
      this.cache.set(header, { claims, secret });
      return { name: sub, token, claims, secret };
    } catch (err) {
      if (err instanceof JwtError) throw new HadronError('UNAUTHENTICATED', `${MALFORMED}: ${err.message}`);
      throw err;
    }
  }

  /**
   * The principal of a cache hit whose Token and verifying Secret are still those of the view and
   * whose time window holds (else throws UNAUTHENTICATED and drops the entry). Undefined when the
   * Secret object changed: the entry is dropped and the caller verifies again (a reload of the
   * manifests re-creates equal Secrets; a replaced key then fails the signature check).
   */
  private fromCache(header: string, hit: CacheEntry, v: ControlPlaneView): Principal | undefined {
    const sub = hit.claims.sub;
    const token = v.tokens.get(sub);
    if (token && v.secrets.get(sub) === hit.secret) {
      try {
        timeCheck(hit.claims);
      } catch (err) {
        // Expired (or not yet valid): the entry goes; the next request verifies from scratch.
        this.cache.delete(header);
        throw err;
      }
      return { name: sub, token, claims: hit.claims, secret: hit.secret };
    }
    this.cache.delete(header);
    return undefined;
  }

  /**
   * Re-checks a principal authenticated earlier against the live view and the clock: its Token
   * and the very Secret it was verified with must still exist, and `exp` must not have passed.
   * Throws UNAUTHENTICATED naming what changed.
   */
  revalidate(p: Principal): void {
    const v = this.view();
    if (!v.tokens.has(p.name)) throw new HadronError('UNAUTHENTICATED', `the authorization token '${p.name}' was revoked: its Token was deleted`, { context: { token: p.name } });
    // Compared by key, not identity: a reload of the manifests re-creates equal Secret objects.
    const secret = v.secrets.get(p.name);
    if (secret === undefined || !secret.hmacKey.equals(p.secret.hmacKey)) {
      throw new HadronError('UNAUTHENTICATED', `the authorization token '${p.name}' was revoked: its Secret was deleted or replaced`, { context: { token: p.name } });
    }
    timeCheck(p.claims);
  }

  authorize(p: Principal, action: Action, stream: string): void {
    const spec = p.token.spec;
    if (spec.all) return;
    const list = action === 'pub' ? spec.streams?.pub : spec.streams?.sub;
    if (list?.includes(stream)) return;
    throw new HadronError(
      'PERMISSION_DENIED',
      `unauthorized to perform the requested action: token '${p.name}' may not ${action === 'pub' ? 'publish to' : 'subscribe to'} stream '${stream}'`,
      { context: { token: p.name, action, stream } },
    );
  }

  /** Drops cached verifications (the view changed). */
  reset(): void {
    this.cache.clear();
  }
}

function timeCheck(claims: TokenClaims): void {
  try {
    checkTimeClaims(claims);
  } catch (err) {
    if (err instanceof JwtError) throw new HadronError('UNAUTHENTICATED', `${MALFORMED}: ${err.message}`);
    throw err;
  }
}
