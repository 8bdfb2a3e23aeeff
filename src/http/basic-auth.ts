/**
 * HTTP Basic credentials (RFC 7617) of Icecast's interfaces: the origin's admin endpoint
 * (`origin.icecastAdmin`) and a source input's mount (`source:<password>`). Nothing about the
 * answer's time says how much was right: user and password are compared as SHA-256 digests
 * with timingSafeEqual, both always, whatever the header
 * (docs/architecture.md, Icecast admin endpoint).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export interface BasicCredentials {
  user: string;
  password: string;
}

/** The realm Icecast names in its challenge; source clients and admin tools expect it. */
export const ICECAST_REALM = 'Icecast2 Server';
export const ICECAST_CHALLENGE = `Basic realm="${ICECAST_REALM}"`;

/** Longest Authorization value read; longer is no credential (the header is bounded anyway). */
const MAX_AUTHORIZATION_LENGTH = 1024;

/** `Basic dXNlcjpwYXNz` → `{ user, password }`; undefined for anything else (other schemes, bad base64, no colon). */
export function parseBasicAuth(authorization: string | undefined): BasicCredentials | undefined {
  if (authorization === undefined || authorization.length > MAX_AUTHORIZATION_LENGTH) return undefined;
  const match = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(authorization);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** One configured user and password, checked in constant time. */
export class BasicAuthCheck {
  private readonly user: Buffer;
  private readonly password: Buffer;

  constructor(credentials: BasicCredentials) {
    this.user = digest(credentials.user);
    this.password = digest(credentials.password);
  }

  /** True when the Authorization header carries exactly these credentials. */
  check(authorization: string | undefined): boolean {
    const presented = parseBasicAuth(authorization) ?? { user: '', password: '' };
    // Both comparisons always run: a right user with a wrong password takes as long as anything else.
    const userMatches = timingSafeEqual(digest(presented.user), this.user);
    const passwordMatches = timingSafeEqual(digest(presented.password), this.password);
    return userMatches && passwordMatches && authorization !== undefined;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
