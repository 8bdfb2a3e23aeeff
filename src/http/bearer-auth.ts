/**
 * Bearer-token check of the control API and the listener-log ingest (RFC 6750): no or malformed credentials → 401 with
 * `WWW-Authenticate: Bearer`, a token that is not configured → 403. Tokens are compared as
 * SHA-256 digests with timingSafeEqual against every configured token, so the time taken
 * says nothing about how much of a token was right, nor which one.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export type BearerVerdict = 'ok' | 'missing' | 'forbidden';

export class BearerTokens {
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[]) {
    this.digests = tokens.map(digest);
  }

  check(authorization: string | undefined): BearerVerdict {
    const match = authorization === undefined ? null : /^Bearer +([\x21-\x7e]{1,512})$/.exec(authorization);
    if (!match) return 'missing';
    const presented = digest(match[1]!);
    let found = false;
    for (const known of this.digests) found = timingSafeEqual(presented, known) || found;
    return found ? 'ok' : 'forbidden';
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
