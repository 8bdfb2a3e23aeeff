/**
 * Every name onair publishes, formatted and parsed in one place (docs/architecture.md, Sequence):
 * the packager writes them, the origin routes and reads them back.
 *   segment              `{msn}-{run}.ts`           e.g. `1234-3.ts`
 *   part (LL-HLS)        `{msn}-{run}.{part}.ts`    e.g. `1234-3.2.ts` (part 0-based)
 *   MP3 rendition's      `.mp3` in place of `.ts`   packed audio (docs/architecture.md, "MP3 renditions")
 *   fMP4 channel's       `.m4s` in place of `.ts`   CMAF chunks (docs/architecture.md, "Fragmented MP4 channels")
 *   init segment (fMP4)  `init-{run}.mp4`           EXT-X-MAP of the run's segments and parts
 *   cbcs channel's init  `init-{run}-k{key id}.mp4`  one per run and key period (its tenc names the KID)
 *   content key          `key-{key id}.key`         AES-128 key (EXT-X-KEY URI), beside the playlists
 *   segment/part URI     `{rendition}/{name}`       relative to the media playlist
 *   master playlist      `{ch}.m3u8`
 *   media playlist       `{ch}_{rendition}.m3u8`
 *   DVR playlist         `{ch}_{rendition}_dvr.m3u8`
 *   delta update         `{ch}_{rendition}.delta.m3u8` (store only: reached through `?_HLS_skip=YES`)
 * Channel and rendition ids are 1–32 characters of `[a-z0-9-]`, so `_` and `.` separate
 * the parts of a name unambiguously. The run in a segment name means a URI is never reused:
 * it is the packager run's start in Unix milliseconds followed by three random digits
 * (`1767225600000417`), unique without the store's help (sequence-state.ts `newRunId`);
 * runs of earlier versions were small store counters (`3`) and still read back.
 */

/** A channel or rendition id, as a regular expression source (no anchors). */
export const ID_PATTERN_SOURCE = '[a-z0-9-]{1,32}';
// MSN and run are canonical decimal integers (no leading zeros): an MSN has at most 15
// digits, a run at most 16 (the parser also refuses one at or past 2^53); a part index has
// at most 4 digits.
const MSN = '(0|[1-9][0-9]{0,14})';
const RUN = '(0|[1-9][0-9]{0,15})';
const PART_INDEX = '(0|[1-9][0-9]{0,3})';

/** A segment's file extension: MPEG-TS, packed MP3 audio for an MP3 rendition, or fMP4 (CMAF) on an fMP4 channel. */
export type SegmentExtension = 'ts' | 'mp3' | 'm4s';

/** A segment or part name, anchored: for route schemas. */
export const SEGMENT_NAME_PATTERN = `^${MSN}-${RUN}(\\.${PART_INDEX})?\\.(ts|mp3|m4s)$`;
/** An fMP4 init segment's name, anchored: for route schemas. */
export const INIT_SEGMENT_NAME_PATTERN = `^init-${RUN}(-k${MSN})?\\.mp4$`;
/** An AES-128 content key's name (docs/architecture.md, "Content encryption"), anchored: for route schemas. */
export const CONTENT_KEY_NAME_PATTERN = `^key-${MSN}\\.key$`;
/** A master, media or DVR playlist name (what a URL may ask for), anchored: for route schemas. */
export const PLAYLIST_NAME_PATTERN = `^${ID_PATTERN_SOURCE}(_${ID_PATTERN_SOURCE}(_dvr)?)?\\.m3u8$`;

/** What the segment route serves under a rendition, anchored: a segment, a part or an fMP4 init segment. */
export const MEDIA_FILE_NAME_PATTERN = `${SEGMENT_NAME_PATTERN}|${INIT_SEGMENT_NAME_PATTERN}`;

const SEGMENT_NAME = new RegExp(SEGMENT_NAME_PATTERN);
const INIT_SEGMENT_NAME = new RegExp(INIT_SEGMENT_NAME_PATTERN);
const ID = new RegExp(`^${ID_PATTERN_SOURCE}$`);
const PLAYLIST_SUFFIX = '.m3u8';
const DVR_SUFFIX = '_dvr';
const DELTA_SUFFIX = '.delta';

/** Where a segment or part sits in the sequence: `part` only for a part. */
export interface SegmentAddress {
  msn: number;
  run: number;
  part?: number;
}

export type PlaylistName =
  | { kind: 'master'; channel: string }
  | { kind: 'media' | 'dvr' | 'delta'; channel: string; rendition: string };

/** A channel's delivery container (`ts` when absent). */
export type Container = 'ts' | 'fmp4';

/**
 * The extension of a rendition's segments and parts, by its channel's container (`ts` when
 * absent) and its codec (`aac` when absent): every rendition of an fMP4 channel is `.m4s`.
 */
export function segmentExtension(rendition: { codec?: string }, container: Container = 'ts'): SegmentExtension {
  if (container === 'fmp4') return 'm4s';
  return rendition.codec === 'mp3' ? 'mp3' : 'ts';
}

/**
 * The init segment (EXT-X-MAP) of run `run`'s segments and parts, fMP4 only: `init-1767225600000417.mp4`.
 * Each run writes its own, so the name is never reused with other bytes.
 */
export function initSegmentName(run: number, keyId?: number): string {
  // An `encryption: cbcs` channel's init names its key period's KID: one per run and key period (docs/architecture.md, "Content encryption").
  return keyId === undefined ? `init-${run}.mp4` : `init-${run}-k${keyId}.mp4`;
}

export function initSegmentUri(rendition: string, run: number, keyId?: number): string {
  return `${rendition}/${initSegmentName(run, keyId)}`;
}

/** What every content key's name starts with: a short-lived key token covers `/{ch}/key-` (docs/architecture.md, "Short-lived key tokens"). */
export const CONTENT_KEY_NAME_PREFIX = 'key-';

/** Content key `keyId`'s name, and its URI relative to the media playlists: `key-12.key`. */
export function contentKeyName(keyId: number): string {
  return `${CONTENT_KEY_NAME_PREFIX}${keyId}.key`;
}

const CONTENT_KEY_NAME = new RegExp(CONTENT_KEY_NAME_PATTERN);

/** `key-12.key` → 12; undefined for any other name. */
export function parseContentKeyName(name: string): number | undefined {
  const match = CONTENT_KEY_NAME.exec(name);
  const keyId = match ? Number(match[1]) : undefined;
  return keyId !== undefined && Number.isSafeInteger(keyId) ? keyId : undefined;
}

/** `init-3.mp4` → 3; undefined for any other name. */
export function parseInitSegmentName(name: string): number | undefined {
  const match = INIT_SEGMENT_NAME.exec(name);
  const run = match ? Number(match[1]) : undefined;
  return run !== undefined && Number.isSafeInteger(run) ? run : undefined;
}

export function segmentName(msn: number, run: number, extension: SegmentExtension = 'ts'): string {
  return `${msn}-${run}.${extension}`;
}

/** Part `part` (0-based) of segment `msn`: `1234-3.2.ts`. */
export function partName(msn: number, run: number, part: number, extension: SegmentExtension = 'ts'): string {
  return `${msn}-${run}.${part}.${extension}`;
}

export function segmentUri(rendition: string, msn: number, run: number, extension: SegmentExtension = 'ts'): string {
  return `${rendition}/${segmentName(msn, run, extension)}`;
}

export function partUri(rendition: string, msn: number, run: number, part: number, extension: SegmentExtension = 'ts'): string {
  return `${rendition}/${partName(msn, run, part, extension)}`;
}

/** `1234-3.ts` (or `.mp3`, `.m4s`) → { msn: 1234, run: 3 }, `1234-3.2.ts` → { …, part: 2 }; undefined for any other name. */
export function parseSegmentName(name: string): SegmentAddress | undefined {
  const match = SEGMENT_NAME.exec(name);
  if (!match) return undefined;
  const address: SegmentAddress = { msn: Number(match[1]), run: Number(match[2]) };
  if (!Number.isSafeInteger(address.run)) return undefined;
  if (match[4] !== undefined) address.part = Number(match[4]);
  return address;
}

/** `hifi/1234-3.2.ts` → the rendition and the address; undefined for any other URI. */
export function parseSegmentUri(uri: string): (SegmentAddress & { rendition: string }) | undefined {
  const slash = uri.indexOf('/');
  const rendition = uri.slice(0, slash);
  const address = slash === -1 || !ID.test(rendition) ? undefined : parseSegmentName(uri.slice(slash + 1));
  return address && { rendition, ...address };
}

export function masterPlaylistName(channel: string): string {
  return `${channel}${PLAYLIST_SUFFIX}`;
}

export function mediaPlaylistName(channel: string, rendition: string): string {
  return `${channel}_${rendition}${PLAYLIST_SUFFIX}`;
}

/** The DVR playlist of a rendition (`dvrSeconds`): `fip_hifi_dvr.m3u8`. */
export function dvrPlaylistName(channel: string, rendition: string): string {
  return `${channel}_${rendition}${DVR_SUFFIX}${PLAYLIST_SUFFIX}`;
}

/**
 * The store name of a media playlist's delta update. The `.delta` suffix cannot match a
 * public playlist URL (ids have no dots), so it is reached through `?_HLS_skip=YES` only.
 */
export function deltaPlaylistName(mediaName: string): string {
  return `${mediaName.slice(0, -PLAYLIST_SUFFIX.length)}${DELTA_SUFFIX}${PLAYLIST_SUFFIX}`;
}

/**
 * `fip.m3u8` → master of fip, `fip_hifi.m3u8` → media, `fip_hifi_dvr.m3u8` → DVR,
 * `fip_hifi.delta.m3u8` → delta; undefined for a name onair does not publish. A rendition
 * may itself be called `dvr`: `fip_dvr.m3u8` is its media playlist.
 */
export function parsePlaylistName(name: string): PlaylistName | undefined {
  if (!name.endsWith(PLAYLIST_SUFFIX)) return undefined;
  let stem = name.slice(0, -PLAYLIST_SUFFIX.length);
  const delta = stem.endsWith(DELTA_SUFFIX);
  if (delta) stem = stem.slice(0, -DELTA_SUFFIX.length);
  const [channel, rendition, dvr, ...rest] = stem.split('_');
  if (rest.length > 0 || !ID.test(channel!) || (rendition !== undefined && !ID.test(rendition))) return undefined;
  if (dvr !== undefined && (dvr !== DVR_SUFFIX.slice(1) || delta)) return undefined;
  if (rendition === undefined) return delta ? undefined : { kind: 'master', channel: channel! };
  return { kind: delta ? 'delta' : dvr !== undefined ? 'dvr' : 'media', channel: channel!, rendition };
}
