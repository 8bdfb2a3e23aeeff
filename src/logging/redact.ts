/**
 * Secrets never reach a log line or `onair check` output: SRT passphrases, tokens, signing
 * keys, webhook secrets and the credentials in URLs are replaced by `***`.
 *
 * - `redactUrl` and `redactText`: in URLs (and in free text that holds URLs, such as FFmpeg's
 *   messages), the values of secret-looking query parameters (`token`, `passphrase`, `key`,
 *   `secret`, `password`, `signature`, `…_token`, `api_key`, …) and the userinfo
 *   (`redis://user:pass@host` → `redis://***@host`).
 * - `redactSecrets`: a deep copy of a config (or any plain data) where every secret-named key
 *   (`passphrase`, `key`, `secret`, `tokens`, `ingestTokens`, …) holds `***`, and every string
 *   goes through `redactText`.
 */

export const REDACTED = '***';

/** A parameter or key named like a credential: the name, or its last `_`/`-` separated word, in this list. */
const SECRET_NAME = /(?:^|[_-])(?:token|tokens|passphrase|key|keys|secret|secrets|password|passwd|pwd|pass|apikey|signature|sig|auth|authorization|credential|credentials)$/i;
/** camelCase names: `ingestTokens`, `signingKey`, `webhookSecret`. */
const SECRET_CAMEL = /[a-z](?:Token|Tokens|Passphrase|Key|Keys|Secret|Secrets|Password)$/;

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name) || SECRET_CAMEL.test(name);
}

/** `scheme://user:pass@` → `scheme://***@` (anywhere in the text). */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^/?#\s@'"]+@/gi;
/** `name=value` after `?`, `&` or `;` (URL queries, FFmpeg option strings). */
const PARAMETER = /([?&;])([^=&;#\s'"]+)=([^&;#\s'"]*)/g;

/** Redacts the credentials in every URL (and `?name=value` query) found in `text`. */
export function redactText(text: string): string {
  return text
    .replace(USERINFO, `$1${REDACTED}@`)
    .replace(PARAMETER, (match: string, separator: string, name: string, value: string) =>
      isSecretName(safeDecode(name)) && value !== '' ? `${separator}${name}=${REDACTED}` : match,
    );
}

/** Redacts one URL (absolute, or a path with a query such as a request URL). */
export function redactUrl(url: string): string {
  return redactText(url);
}

/** A deep copy of `value` with every secret-named key's value replaced and every string's URLs redacted. */
export function redactSecrets<T>(value: T): T {
  return redactValue(value, undefined) as T;
}

function redactValue(value: unknown, name: string | undefined): unknown {
  const secret = name !== undefined && isSecretName(name);
  if (typeof value === 'string') return secret ? REDACTED : redactText(value);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, secret ? name : undefined));
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) copy[key] = redactValue(item, key);
    return copy;
  }
  return value;
}

function safeDecode(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}
