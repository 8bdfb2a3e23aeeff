/**
 * What a verified entitlement token grants (docs/architecture.md, "Entitlement tokens"): pure,
 * no I/O. The channels are those its channels claim lists, plus those its tier claim's tiers
 * map to (`entitlements.tiers`), among the channels configured now; for each, its playback URLs:
 * on a signed channel with a token of signed-urls.ts covering `/{ch}/` (master playlist, and
 * the MPD of an fmp4 channel, its progressive mounts), on a public one the plain URLs. The
 * channel's token covers its mounts too (signed-access.ts).
 */
import { mpdName } from '../dash/channel-mpd.js';
import { OnairError } from '../errors.js';
import { masterPlaylistName } from '../hls/published-names.js';
import { channelPathPrefix, signPath, TOKEN_PARAMETER } from './signed-urls.js';

export interface PlaybackChannel {
  id: string;
  access: 'public' | 'signed';
  /** `fmp4` channels have an MPD beside the master playlist. */
  container: 'ts' | 'fmp4';
  /** Its progressive mounts' paths, e.g. `/fip-hifi.aac`. */
  mounts: string[];
}

export interface EntitlementRules {
  /** Claim listing channel ids (an array, or one space-separated string as OAuth scopes are). */
  channelsClaim: string;
  /** Claim naming a tier (a string, or an array of tier names). */
  tierClaim: string;
  /** Tier name → channel ids. */
  tiers: Record<string, string[]>;
}

export interface ChannelPlayback {
  id: string;
  access: 'public' | 'signed';
  /** The master playlist. */
  hls: string;
  /** The live MPD of an fmp4 channel, else null. */
  dash: string | null;
  /** Icecast-style mounts (with the token on a signed channel). */
  mounts: string[];
}

/** Claim values longer than this many entries are refused (a token is a few kB anyway). */
const MAX_CLAIM_ENTRIES = 256;

function claimNames(claims: Record<string, unknown>, claim: string, splitSpaces: boolean): string[] {
  const value = claims[claim];
  if (value === undefined) return [];
  const list = typeof value === 'string' ? (splitSpaces ? value.split(' ').filter(Boolean) : [value]) : value;
  if (!Array.isArray(list) || list.length > MAX_CLAIM_ENTRIES || list.some((entry) => typeof entry !== 'string')) {
    throw new OnairError('ONAIR_JWT_CLAIMS', `the token's "${claim}" claim must be a string or a list of strings`);
  }
  return list as string[];
}

/** The configured channels the claims entitle, in config order. Throws ONAIR_JWT_CLAIMS for a claim of the wrong type. */
export function entitledChannels<C extends { id: string }>(claims: Record<string, unknown>, rules: EntitlementRules, channels: C[]): C[] {
  const granted = new Set(claimNames(claims, rules.channelsClaim, true));
  for (const tier of claimNames(claims, rules.tierClaim, false)) {
    // Own properties only: a tier named `__proto__` or `constructor` maps to nothing.
    const mapped = Object.hasOwn(rules.tiers, tier) ? rules.tiers[tier] : undefined;
    for (const id of mapped ?? []) granted.add(id);
  }
  return channels.filter((channel) => granted.has(channel.id));
}

/** Playback URLs of one channel, under `baseUrl` (no trailing slash; '' for absolute paths). */
export function channelPlayback(channel: PlaybackChannel, signing: { key: string | undefined; expiresAt: number }, baseUrl: string): ChannelPlayback {
  const id = channel.id;
  let query = '';
  if (channel.access === 'signed') {
    // The config refuses a signed channel without signing.key.
    const token = signPath({ key: signing.key ?? '', pathPrefix: channelPathPrefix(id), expiresAt: signing.expiresAt });
    query = `?${TOKEN_PARAMETER}=${token}`;
  }
  return {
    id,
    access: channel.access,
    hls: `${baseUrl}/${id}/${masterPlaylistName(id)}${query}`,
    dash: channel.container === 'fmp4' ? `${baseUrl}/${id}/${mpdName(id)}${query}` : null,
    mounts: channel.mounts.map((mount) => `${baseUrl}${mount}${query}`),
  };
}
