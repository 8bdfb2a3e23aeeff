/**
 * Verifies the identity provider's JWTs for POST /auth/playback with `jose`
 * (docs/architecture.md, "Entitlement tokens"): a compact JWS (RFC 7515) signed with one of the configured
 * asymmetric algorithms (never `none`, never HS*: the key is public, RFC 8725 §3.1), by a key from
 * the provider's JWKS URL or from a PEM file; `iss`, `aud` and `exp` required and checked
 * (RFC 7519 §4.1), `nbf`/`iat` when present, all within a small clock tolerance.
 *
 * Every refusal is an OnairError with its own ONAIR_JWT_* code (401); a JWKS that cannot be
 * fetched is ONAIR_JWKS_UNAVAILABLE (503): the provider's fault, never the client's.
 *
 * The JWKS fetch is bounded: a timeout, a body of at most 256 KiB, no redirects, one fetch at a
 * time (jose shares it), a refetch for an unknown `kid` at most once per cooldown, and after a
 * failed fetch none for a second, so a flood of tokens cannot turn into a flood of requests to
 * the provider. While the provider fails, the keys it served last (even past cacheMaxAge) still
 * verify; with none, requests get 503.
 */
import { readFile } from 'node:fs/promises';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  importSPKI,
  importX509,
  jwtVerify,
  type CryptoKey,
  type FetchImplementation,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  type JWTPayload,
} from 'jose';
import { systemClock, type Clock } from '../clock.js';
import { OnairError } from '../errors.js';

/** The JWS algorithms a public key verifies (RFC 7518 §3.1, RFC 8037): what `entitlements.algorithms` may list. */
export const PUBLIC_KEY_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type PublicKeyAlgorithm = (typeof PUBLIC_KEY_ALGORITHMS)[number];

/** A JWT longer than this is refused unread (an identity provider's access token is 1–2 kB). */
export const MAX_JWT_LENGTH = 8192;
/** The largest JWKS body read; a provider's is a few kB. */
export const MAX_JWKS_BYTES = 256 * 1024;
/** After a failed JWKS fetch, requests get 503 at once for this long instead of fetching again. */
export const JWKS_FAILURE_BACKOFF_MS = 1000;

export interface PlaybackTokenOptions {
  issuer: string;
  audience: string | string[];
  algorithms: PublicKeyAlgorithm[];
  /** Seconds of leeway on exp, nbf and iat. */
  clockToleranceSeconds: number;
  /** Exactly one of jwksUrl and publicKeyFile. */
  jwksUrl?: string;
  /** A PEM public key (SPKI, `BEGIN PUBLIC KEY`) or certificate (`BEGIN CERTIFICATE`). */
  publicKeyFile?: string;
  jwks?: { timeoutMs: number; cooldownSeconds: number; cacheMaxAgeSeconds: number };
  clock?: Clock;
}

export interface PlaybackTokenVerifier {
  /** The verified claims, or throws an OnairError (ONAIR_JWT_*, ONAIR_JWKS_UNAVAILABLE). */
  verify(jwt: string): Promise<JWTPayload>;
}

type KeyResolver = (header: JWSHeaderParameters) => Promise<CryptoKey>;

export async function createPlaybackTokenVerifier(options: PlaybackTokenOptions): Promise<PlaybackTokenVerifier> {
  const { issuer, audience, algorithms, clockToleranceSeconds, clock = systemClock } = options;
  if (algorithms.length === 0 || algorithms.some((algorithm) => !PUBLIC_KEY_ALGORITHMS.includes(algorithm))) {
    throw new OnairError('ONAIR_CONFIG_INVALID', `expected algorithms among ${PUBLIC_KEY_ALGORITHMS.join(', ')}`, { where: 'entitlements.algorithms' });
  }
  let resolveKey: KeyResolver;
  if (options.jwksUrl !== undefined && options.publicKeyFile === undefined) {
    resolveKey = remoteKeys(options.jwksUrl, options.jwks ?? { timeoutMs: 5000, cooldownSeconds: 30, cacheMaxAgeSeconds: 600 }, clock);
  } else if (options.publicKeyFile !== undefined && options.jwksUrl === undefined) {
    resolveKey = await fileKey(options.publicKeyFile, algorithms);
  } else {
    throw new OnairError('ONAIR_CONFIG_INVALID', 'expected exactly one of jwksUrl and publicKeyFile', { where: 'entitlements' });
  }
  return {
    async verify(jwt: string): Promise<JWTPayload> {
      if (jwt.length > MAX_JWT_LENGTH) throw new OnairError('ONAIR_JWT_MALFORMED', `a JWT of at most ${MAX_JWT_LENGTH} characters is expected`);
      try {
        const { payload } = await jwtVerify(jwt, resolveKey, {
          issuer,
          audience,
          algorithms,
          clockTolerance: clockToleranceSeconds,
          currentDate: new Date(clock.now()),
          requiredClaims: ['iss', 'aud', 'exp'],
        });
        return payload;
      } catch (error) {
        throw refusalOf(error);
      }
    },
  };
}

/** jose's errors → our codes; anything else (a bug, or the JWKS fault already ours) as it is. */
function refusalOf(error: unknown): unknown {
  if (error instanceof OnairError) return error;
  if (error instanceof errors.JWTExpired) return new OnairError('ONAIR_JWT_EXPIRED', 'the token has expired', { cause: error });
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return new OnairError('ONAIR_JWT_CLAIMS', `the token lacks the "${error.claim}" claim`, { cause: error });
    if (error.reason === 'check_failed' && error.claim === 'iss') return new OnairError('ONAIR_JWT_ISSUER', 'the token was issued by another issuer', { cause: error });
    if (error.reason === 'check_failed' && error.claim === 'aud') return new OnairError('ONAIR_JWT_AUDIENCE', 'the token is meant for another audience', { cause: error });
    if (error.reason === 'check_failed' && (error.claim === 'nbf' || error.claim === 'iat')) {
      return new OnairError('ONAIR_JWT_NOT_YET_VALID', `the token is not valid yet (${error.claim})`, { cause: error });
    }
    return new OnairError('ONAIR_JWT_CLAIMS', `the token's "${error.claim}" claim is invalid`, { cause: error });
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return new OnairError('ONAIR_JWT_ALGORITHM', 'the token is signed with an algorithm this service does not accept', { cause: error });
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return new OnairError('ONAIR_JWT_KEY_UNKNOWN', 'no key of the identity provider matches the token', { cause: error });
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return new OnairError('ONAIR_JWT_SIGNATURE', 'the token signature does not verify', { cause: error });
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported) {
    return new OnairError('ONAIR_JWT_MALFORMED', 'expected a compact JWS JWT', { cause: error });
  }
  return error;
}

/** The provider's JWKS through jose's cache, with the bounds of the header comment. */
function remoteKeys(url: string, settings: NonNullable<PlaybackTokenOptions['jwks']>, clock: Clock): KeyResolver {
  const remote = createRemoteJWKSet(new URL(url), {
    timeoutDuration: settings.timeoutMs,
    cooldownDuration: settings.cooldownSeconds * 1000,
    cacheMaxAge: settings.cacheMaxAgeSeconds * 1000,
    [customFetch]: boundedFetch,
  });
  let failedAt = -Infinity;
  // The last set fetched, kept past cacheMaxAge for an outage of the provider (imported once per set).
  let stale: { set: JSONWebKeySet; keys: ReturnType<typeof createLocalJWKSet> } | undefined;
  const lastKnownKeys = (header: JWSHeaderParameters, cause?: unknown): Promise<CryptoKey> => {
    const set = remote.jwks();
    if (!set) throw new OnairError('ONAIR_JWKS_UNAVAILABLE', "the identity provider's keys are unavailable; retry shortly", { cause });
    if (stale?.set !== set) stale = { set, keys: createLocalJWKSet(set) };
    return stale.keys(header);
  };
  return async (header) => {
    if (clock.now() - failedAt < JWKS_FAILURE_BACKOFF_MS && !remote.fresh) return lastKnownKeys(header);
    try {
      return await remote(header);
    } catch (error) {
      // No key for this kid/alg (after one refetch unless cooling down): the token's problem.
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
      failedAt = clock.now();
      // The provider is down or broken: the keys it served last still verify its tokens.
      return lastKnownKeys(header, error);
    }
  };
}

/** fetch for jose: at most MAX_JWKS_BYTES of body, read under jose's timeout signal. */
const boundedFetch: FetchImplementation = async (url, init) => {
  const response = await fetch(url, init);
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > MAX_JWKS_BYTES) {
    await response.body?.cancel();
    throw new RangeError(`the JWKS is larger than ${MAX_JWKS_BYTES} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (response.body) {
    for await (const chunk of response.body) {
      size += chunk.byteLength;
      if (size > MAX_JWKS_BYTES) throw new RangeError(`the JWKS is larger than ${MAX_JWKS_BYTES} bytes`);
      chunks.push(chunk);
    }
  }
  return new Response(Buffer.concat(chunks), { status: response.status, headers: response.headers });
};

/** The PEM key imported once per configured algorithm it can verify; a token of another algorithm has no key. */
async function fileKey(path: string, algorithms: PublicKeyAlgorithm[]): Promise<KeyResolver> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (error) {
    throw new OnairError('ONAIR_CONFIG_INVALID', `cannot read the public key file: ${(error as Error).message}`, { where: 'entitlements.publicKeyFile', cause: error });
  }
  const keys = new Map<string, CryptoKey>();
  for (const algorithm of algorithms) {
    const key = await (pem.includes('-----BEGIN CERTIFICATE-----') ? importX509(pem, algorithm) : importSPKI(pem, algorithm)).catch(() => undefined);
    if (key) keys.set(algorithm, key);
  }
  if (keys.size === 0) {
    throw new OnairError('ONAIR_CONFIG_INVALID', `expected a PEM public key (or certificate) for one of ${algorithms.join(', ')}`, { where: 'entitlements.publicKeyFile' });
  }
  return async (header) => {
    const key = header.alg === undefined ? undefined : keys.get(header.alg);
    if (!key) throw new OnairError('ONAIR_JWT_KEY_UNKNOWN', `the public key does not verify ${String(header.alg)} signatures`);
    return key;
  };
}
