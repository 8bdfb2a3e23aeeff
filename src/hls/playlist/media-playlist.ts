/**
 * A media playlist (RFC 8216 §4.3.3, with the Low-Latency HLS additions of
 * draft-pantos-hls-rfc8216bis §4.4): the structure, `parseMediaPlaylist` (text → structure)
 * and `marshalMediaPlaylist` (structure → text). Tags this codec does not know are ignored
 * when parsing (§6.3.1), so text → structure → text is exact for the text the codec writes.
 *
 * Tag order when writing: the playlist tags, the segments (each with its discontinuity,
 * key, init section, program date time and parts), the partial segment's parts, the preload hints, the
 * rendition reports, EXT-X-ENDLIST.
 */
import {
  formatPartInf,
  formatPreloadHint,
  formatRenditionReport,
  formatServerControl,
  formatSkip,
  parsePart,
  parsePartInf,
  parsePreloadHint,
  parseRenditionReport,
  parseServerControl,
  parseSkip,
  PART,
  PART_INF,
  PRELOAD_HINT,
  RENDITION_REPORT,
  SERVER_CONTROL,
  SKIP,
  type PartInf,
  type PreloadHint,
  type RenditionReport,
  type ServerControl,
  type Skip,
} from './low-latency-tags.js';
import {
  DISCONTINUITY,
  EXTINF,
  formatPartialSegment,
  formatSegment,
  KEY,
  MAP,
  parseExtinf,
  parseKey,
  parseMap,
  PROGRAM_DATE_TIME,
  SegmentBuilder,
  type MediaSegment,
  type PartialSegment,
} from './media-segment-tags.js';
import { PlaylistParseError } from './playlist-parse-error.js';
import { HEADER, joinPlaylistLines, OnceTags, readPlaylistLines, VERSION } from './playlist-lines.js';
import { formatDecimalInteger, readDateTime, readDecimalInteger } from './values.js';

export type PlaylistType = 'EVENT' | 'VOD';

export interface MediaPlaylist {
  /** EXT-X-VERSION (§4.3.1.2). */
  version: number;
  /** EXT-X-TARGETDURATION in whole seconds (§4.3.3.1). */
  targetDuration: number;
  serverControl?: ServerControl;
  partInf?: PartInf;
  /** EXT-X-PLAYLIST-TYPE (§4.3.3.5); a live sliding window has none. */
  playlistType?: PlaylistType;
  /** EXT-X-MEDIA-SEQUENCE (§4.3.3.2): the MSN of the first segment; 0 when the tag is absent. */
  mediaSequence: number;
  /** EXT-X-DISCONTINUITY-SEQUENCE (§4.3.3.3). */
  discontinuitySequence?: number;
  /** EXT-X-SKIP: a delta update leaves out this many segments after the media sequence. */
  skip?: Skip;
  segments: MediaSegment[];
  partialSegment?: PartialSegment;
  preloadHints: PreloadHint[];
  renditionReports: RenditionReport[];
  /** EXT-X-ENDLIST (§4.3.3.4): no segment will be added. */
  endList: boolean;
}

const TARGET_DURATION = '#EXT-X-TARGETDURATION';
const MEDIA_SEQUENCE = '#EXT-X-MEDIA-SEQUENCE';
const DISCONTINUITY_SEQUENCE = '#EXT-X-DISCONTINUITY-SEQUENCE';
const PLAYLIST_TYPE = '#EXT-X-PLAYLIST-TYPE';
const ENDLIST = '#EXT-X-ENDLIST';
const ONCE_PER_PLAYLIST = new Set([VERSION, TARGET_DURATION, MEDIA_SEQUENCE, DISCONTINUITY_SEQUENCE, PLAYLIST_TYPE, SERVER_CONTROL, PART_INF, SKIP]);

/** Throws PlaylistParseError, and nothing else, for text that is not a media playlist. */
export function parseMediaPlaylist(text: string): MediaPlaylist {
  // EXT-X-VERSION is 1 when absent (§4.3.1.2); the target duration is required (§4.3.3.1).
  const playlist: MediaPlaylist = { version: 1, targetDuration: 0, mediaSequence: 0, segments: [], preloadHints: [], renditionReports: [], endList: false };
  let hasTargetDuration = false;
  const once = new OnceTags();
  const segment = new SegmentBuilder();
  for (const line of readPlaylistLines(text)) {
    try {
      if (line.kind === 'uri') {
        playlist.segments.push(segment.close(line.uri));
        continue;
      }
      const { name, value } = line;
      if (ONCE_PER_PLAYLIST.has(name)) once.check(name);
      switch (name) {
        case VERSION:
          playlist.version = readDecimalInteger(value, name);
          break;
        case TARGET_DURATION:
          playlist.targetDuration = readDecimalInteger(value, name);
          hasTargetDuration = true;
          break;
        case MEDIA_SEQUENCE:
          playlist.mediaSequence = readDecimalInteger(value, name);
          break;
        case DISCONTINUITY_SEQUENCE:
          playlist.discontinuitySequence = readDecimalInteger(value, name);
          break;
        case PLAYLIST_TYPE:
          if (value !== 'EVENT' && value !== 'VOD') throw new PlaylistParseError(`${name}: expected EVENT or VOD, got "${value}"`);
          playlist.playlistType = value;
          break;
        case SERVER_CONTROL:
          playlist.serverControl = parseServerControl(value);
          break;
        case PART_INF:
          playlist.partInf = parsePartInf(value);
          break;
        case SKIP:
          playlist.skip = parseSkip(value);
          break;
        case DISCONTINUITY:
          segment.markDiscontinuity();
          break;
        case KEY:
          segment.setKey(parseKey(value));
          break;
        case MAP:
          segment.setMap(parseMap(value));
          break;
        case PROGRAM_DATE_TIME:
          segment.setProgramDateTime(readDateTime(value, name));
          break;
        case PART:
          segment.addPart(parsePart(value));
          break;
        case EXTINF:
          segment.setDuration(parseExtinf(value));
          break;
        case PRELOAD_HINT: {
          const hint = parsePreloadHint(value);
          if (hint) playlist.preloadHints.push(hint);
          break;
        }
        case RENDITION_REPORT:
          playlist.renditionReports.push(parseRenditionReport(value));
          break;
        case ENDLIST:
          playlist.endList = true;
          break;
        case '#EXT-X-STREAM-INF':
          throw new PlaylistParseError('a master playlist tag in a media playlist');
      }
    } catch (error) {
      throw error instanceof PlaylistParseError ? error.atLine(line.number) : error;
    }
  }
  const partial = segment.partial();
  if (partial) playlist.partialSegment = partial;
  if (!hasTargetDuration) throw new PlaylistParseError(`no ${TARGET_DURATION}`);
  return playlist;
}

/** Throws RangeError for a structure no playlist text can carry (a quote in a URI, a negative duration…). */
export function marshalMediaPlaylist(playlist: MediaPlaylist): string {
  const lines = [HEADER, `${VERSION}:${formatDecimalInteger(playlist.version)}`, `${TARGET_DURATION}:${formatDecimalInteger(playlist.targetDuration)}`];
  if (playlist.serverControl) lines.push(formatServerControl(playlist.serverControl));
  if (playlist.partInf) lines.push(formatPartInf(playlist.partInf));
  if (playlist.playlistType) lines.push(`${PLAYLIST_TYPE}:${playlist.playlistType}`);
  lines.push(`${MEDIA_SEQUENCE}:${formatDecimalInteger(playlist.mediaSequence)}`);
  if (playlist.discontinuitySequence !== undefined) {
    lines.push(`${DISCONTINUITY_SEQUENCE}:${formatDecimalInteger(playlist.discontinuitySequence)}`);
  }
  if (playlist.skip) lines.push(formatSkip(playlist.skip));
  for (const segment of playlist.segments) lines.push(...formatSegment(segment));
  if (playlist.partialSegment) lines.push(...formatPartialSegment(playlist.partialSegment));
  for (const hint of playlist.preloadHints) lines.push(formatPreloadHint(hint));
  for (const report of playlist.renditionReports) lines.push(formatRenditionReport(report));
  if (playlist.endList) lines.push(ENDLIST);
  return joinPlaylistLines(lines);
}
