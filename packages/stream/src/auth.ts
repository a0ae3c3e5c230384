/**
 * Token authentication and authorization (reference §1.5 with our fixes): `authorization:
 * bearer <JWT>` (also `Bearer`), HS512 verified with the key of the Secret named by `sub`, the
 * Token named `sub` must exist. Missing, malformed, badly signed or unknown → UNAUTHENTICATED;
 * valid but lacking the permission → PERMISSION_DENIED. Deleting the Token or its Secret
 * revokes at once: every call re-checks both against the live view.
 */
import { HadronError, JwtError, canonicalBearer, decodeJwtUnverified, verifyJwt, type ControlPlaneView, type Token, type TokenSecret } from '@hadron/core';

import { BoundedTokenCache } from './token-cache.js';

export interface Principal {
  name: string;
  token: Token;
}

export type Action = 'pub' | 'sub';

const MALFORMED = 'the given authorization credentials are malformed or invalid';

export class Authenticator {
  /** Canonical verified JWTs → (token name, the Secret object verified against). */
  readonly cache = new BoundedTokenCache<{ sub: string; secret: TokenSecret }>();

  constructor(private readonly view: () => ControlPlaneView) {}

  authenticate(header: string | string[] | undefined): Principal {
    if (header === undefined) {
      throw new HadronError('UNAUTHENTICATED', 'unauthorized to perform the requested action: no `authorization` metadata; send `authorization: bearer <token>`');
    }
    if (typeof header !== 'string' || !/^[\x20-\x7e]*$/.test(header)) {
      throw new HadronError('UNAUTHENTICATED', `${MALFORMED}: must be a valid string value`);
    }
    // Canonical form first: a non-canonical spelling is refused before it can reach the cache.
    const canon = canonicalBearer(header);
    if (canon.problem !== undefined) throw new HadronError('UNAUTHENTICATED', `${MALFORMED}: ${canon.problem}`);
    const jwt = canon.jwt;
    const v = this.view();
    const hit = this.cache.get(jwt);
    if (hit) {
      const token = v.tokens.get(hit.sub);
      if (token && v.secrets.get(hit.sub) === hit.secret) return { name: hit.sub, token };
      this.cache.delete(jwt);
    }
    let sub: string;
    try {
      const decoded = decodeJwtUnverified(jwt);
      sub = decoded.claims.sub;
      const secret = v.secrets.get(sub);
      if (!secret) throw new HadronError('UNAUTHENTICATED', 'the given authorization token is unknown');
      verifyJwt(decoded, secret.hmacKey);
      const token = v.tokens.get(sub);
      if (!token) throw new HadronError('UNAUTHENTICATED', 'the given authorization token is unknown');
      this.cache.set(jwt, { sub, secret });
      return { name: sub, token };
    } catch (err) {
      if (err instanceof JwtError) throw new HadronError('UNAUTHENTICATED', `${MALFORMED}: ${err.message}`);
      throw err;
    }
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
