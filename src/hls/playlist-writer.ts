/**
 * Playlist serialization (RFC 8216 §4.3, Apple HLS authoring spec for live audio).
 * Pure: state in, text out. The sliding window never carries EXT-X-PLAYLIST-TYPE
 * (§4.3.3.5); every segment carries EXT-X-PROGRAM-DATE-TIME (§4.3.2.6).
 */

export interface PlaylistSegment {
  /** URI relative to the media playlist, e.g. `hifi/1234-3.ts`. */
  uri: string;
  /** Exact audio duration in seconds (frames × 1024 / sample rate). */
  durationSeconds: number;
  /** Wall-clock time of the segment's first sample, ms since the epoch. */
  programDateTime: number;
  /** True when this segment starts a new timeline (EXT-X-DISCONTINUITY before it). */
  discontinuity: boolean;
}

export interface MediaPlaylist {
  targetDuration: number;
  mediaSequence: number;
  discontinuitySequence: number;
  segments: readonly PlaylistSegment[];
}

export interface MasterVariant {
  uri: string;
  /** Peak segment bit rate in bits per second (§4.3.4.2: BANDWIDTH). */
  bandwidth: number;
  averageBandwidth: number;
  codecs: string;
}

/** Version 3 is what we use: floating-point EXTINF (§7). */
export const PLAYLIST_VERSION = 3;
export const AAC_LC_CODECS = 'mp4a.40.2';

export function renderMediaPlaylist(playlist: MediaPlaylist): string {
  const lines = [
    '#EXTM3U',
    `#EXT-X-VERSION:${PLAYLIST_VERSION}`,
    `#EXT-X-TARGETDURATION:${playlist.targetDuration}`,
    `#EXT-X-MEDIA-SEQUENCE:${playlist.mediaSequence}`,
    `#EXT-X-DISCONTINUITY-SEQUENCE:${playlist.discontinuitySequence}`,
  ];
  for (const segment of playlist.segments) {
    // The tag stays while its segment is in the window, even as the first one: the
    // discontinuity sequence only counts tags that have left (§6.2.2), so a player's
    // discontinuity count for each segment never changes between reloads.
    if (segment.discontinuity) lines.push('#EXT-X-DISCONTINUITY');
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(segment.programDateTime).toISOString()}`);
    lines.push(`#EXTINF:${formatDuration(segment.durationSeconds)},`);
    lines.push(segment.uri);
  }
  return `${lines.join('\n')}\n`;
}

export function renderMasterPlaylist(variants: readonly MasterVariant[]): string {
  const lines = ['#EXTM3U', `#EXT-X-VERSION:${PLAYLIST_VERSION}`, '#EXT-X-INDEPENDENT-SEGMENTS'];
  for (const variant of variants) {
    lines.push(
      `#EXT-X-STREAM-INF:BANDWIDTH=${Math.ceil(variant.bandwidth)},AVERAGE-BANDWIDTH=${Math.ceil(variant.averageBandwidth)},CODECS="${variant.codecs}"`,
    );
    lines.push(variant.uri);
  }
  return `${lines.join('\n')}\n`;
}

/** EXTINF with 5 decimals: exact to 10 µs, and never a rounded-up 4.0 that lies. */
function formatDuration(seconds: number): string {
  return seconds.toFixed(5);
}
