/**
 * The ClearKey license exchange of cbcs channels (docs/architecture.md, "ClearKey playlists and licenses"), pure:
 * the W3C license request (EME §9.1.3: `{"kids":[base64url…],"type":"temporary"}`, what the
 * CDM's `message` carries and hls.js, dash.js and shaka-player POST as they got it) read with
 * bounds, the KIDs it names matched to key periods, and the JSON Web Key set answer (§9.1.4).
 *
 * A KID is SHA-256 of the channel and key id (cbcsKeyIdOf): not invertible, so the periods a
 * request may name are those the channel's stored state still lists (the DVR window's too),
 * up to the segment being made, newest first, at most MAX_CANDIDATE_PERIODS of them.
 */
import { cbcsKeyIdOf, contentKeyId } from '../hls/segment-encryption.js';
import type { ChannelState } from '../hls/sequence-state.js';

/** The most KIDs one request may name: a player asks for one key period at a time. */
export const MAX_LICENSE_KIDS = 16;
/** The license request's body limit: 16 KIDs in JSON are under 1 KiB. */
export const LICENSE_BODY_LIMIT_BYTES = 4096;
/** The most key periods matched against: a long DVR window with fast rotation stays a bounded search. */
export const MAX_CANDIDATE_PERIODS = 1024;

const KID = /^[A-Za-z0-9_-]{22}$/;

/** The KIDs of a license request (base64url, no padding, 16 bytes each); a string saying what is wrong otherwise. */
export function parseLicenseRequest(body: Buffer | string | undefined): { kids: string[] } | { problem: string } {
  const text = typeof body === 'string' ? body : body?.toString('utf8') ?? '';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: 'expected a JSON license request' };
  }
  const kids = (value as { kids?: unknown } | null)?.kids;
  if (!Array.isArray(kids) || kids.length === 0) return { problem: 'expected "kids": a non-empty list' };
  if (kids.length > MAX_LICENSE_KIDS) return { problem: `at most ${MAX_LICENSE_KIDS} kids` };
  if (!kids.every((kid): kid is string => typeof kid === 'string' && KID.test(kid))) return { problem: 'each kid is 16 bytes in base64url without padding' };
  return { kids: [...new Set(kids)] };
}

/** The key period of each requested KID the channel's state lists (its parts, of the segment being made, too); unknown KIDs are left out. */
export function matchKeyPeriods(channel: string, state: ChannelState, rotationSegments: number, kids: readonly string[]): Map<string, number> {
  const wanted = new Set(kids);
  const found = new Map<string, number>();
  const oldestMsn = state.dvr?.[0]?.msn ?? state.window[0]?.msn ?? state.nextMsn;
  const newest = contentKeyId(state.nextMsn, rotationSegments);
  const oldest = Math.max(contentKeyId(oldestMsn, rotationSegments), newest - MAX_CANDIDATE_PERIODS + 1, 0);
  for (let keyId = newest; keyId >= oldest && found.size < wanted.size; keyId--) {
    const kid = Buffer.from(cbcsKeyIdOf(channel, keyId)).toString('base64url');
    if (wanted.has(kid)) found.set(kid, keyId);
  }
  return found;
}

/** The JSON Web Key set ClearKey's `update` takes (EME §9.1.4). */
export function licenseResponse(keys: readonly { kid: string; key: Uint8Array }[]): string {
  return JSON.stringify({ keys: keys.map(({ kid, key }) => ({ kty: 'oct', kid, k: Buffer.from(key).toString('base64url') })), type: 'temporary' });
}
