/**
 * The HLS playlist codec: typed playlist structures ↔ text, pure (no I/O, no clock).
 * One file per tag group: attributes.ts (the attribute-list grammar, RFC 8216 §4.2),
 * values.ts (its value types), playlist-lines.ts (§4.1 lines), media-segment-tags.ts,
 * low-latency-tags.ts, media-playlist.ts, master-playlist.ts.
 *
 * Manifest writers of other delivery formats sit beside this folder over the same window:
 * the MPEG-DASH one will be src/dash/mpd-writer.ts, fed the same channel state that
 * src/hls/channel-playlists.ts turns into these structures.
 */
import { marshalMasterPlaylist, parseMasterPlaylist, STREAM_INF, type MasterPlaylist } from './master-playlist.js';
import { marshalMediaPlaylist, parseMediaPlaylist, type MediaPlaylist } from './media-playlist.js';

export type { AttributeList, AttributeValue } from './attributes.js';
export type { MediaPart, PartInf, PreloadHint, RenditionReport, ServerControl, Skip } from './low-latency-tags.js';
export type { MediaInitSection, MediaKey, MediaSegment, PartialSegment } from './media-segment-tags.js';
export { marshalMasterPlaylist, parseMasterPlaylist, type MasterPlaylist, type Variant } from './master-playlist.js';
export { marshalMediaPlaylist, parseMediaPlaylist, type MediaPlaylist, type PlaylistType } from './media-playlist.js';
export { PLAYLIST_INVALID, PlaylistParseError } from './playlist-parse-error.js';

const MASTER_TAG = new RegExp(`(^|[\\r\\n])${STREAM_INF}:`);

export type Playlist = { kind: 'media'; playlist: MediaPlaylist } | { kind: 'master'; playlist: MasterPlaylist };

/** Either kind: a playlist with EXT-X-STREAM-INF is a master playlist (§4.3.4). */
export function parsePlaylist(text: string): Playlist {
  return MASTER_TAG.test(text) ? { kind: 'master', playlist: parseMasterPlaylist(text) } : { kind: 'media', playlist: parseMediaPlaylist(text) };
}

export function marshalPlaylist(playlist: Playlist): string {
  return playlist.kind === 'master' ? marshalMasterPlaylist(playlist.playlist) : marshalMediaPlaylist(playlist.playlist);
}
