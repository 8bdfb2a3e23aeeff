/**
 * A master (multivariant) playlist (RFC 8216 §4.3.4): EXT-X-INDEPENDENT-SEGMENTS
 * (§4.3.5.1) and one EXT-X-STREAM-INF (§4.3.4.2) per variant, each followed by its URI
 * line. `parseMasterPlaylist` and `marshalMasterPlaylist`; unknown tags and attributes are
 * ignored when parsing (§6.3.1).
 */
import { AttributeReader, formatAttributeList } from './attributes.js';
import { PlaylistParseError } from './playlist-parse-error.js';
import { HEADER, joinPlaylistLines, OnceTags, readPlaylistLines, VERSION } from './playlist-lines.js';
import { formatDecimalInteger, formatQuotedString, formatUriLine, readDecimalInteger, withoutUndefined } from './values.js';

export interface Variant {
  uri: string;
  /** BANDWIDTH: the peak segment bit rate, bits per second. */
  bandwidth: number;
  /** AVERAGE-BANDWIDTH: the average segment bit rate, bits per second. */
  averageBandwidth?: number;
  /** CODECS, e.g. `mp4a.40.2` (RFC 6381). */
  codecs?: string;
}

export interface MasterPlaylist {
  version: number;
  /** EXT-X-INDEPENDENT-SEGMENTS: every segment of every variant decodes on its own. */
  independentSegments: boolean;
  variants: Variant[];
}

export const STREAM_INF = '#EXT-X-STREAM-INF';
const INDEPENDENT_SEGMENTS = '#EXT-X-INDEPENDENT-SEGMENTS';

/** Throws PlaylistParseError, and nothing else, for text that is not a master playlist. */
export function parseMasterPlaylist(text: string): MasterPlaylist {
  const playlist: MasterPlaylist = { version: 1, independentSegments: false, variants: [] };
  const once = new OnceTags();
  let pending: Omit<Variant, 'uri'> | undefined;
  for (const line of readPlaylistLines(text)) {
    try {
      if (line.kind === 'uri') {
        if (!pending) throw new PlaylistParseError(`URI line "${line.uri}" without ${STREAM_INF}`);
        playlist.variants.push({ uri: line.uri, ...pending });
        pending = undefined;
        continue;
      }
      if (line.name === VERSION) {
        once.check(line.name);
        playlist.version = readDecimalInteger(line.value, line.name);
      } else if (line.name === INDEPENDENT_SEGMENTS) {
        playlist.independentSegments = true;
      } else if (line.name === STREAM_INF) {
        if (pending) throw new PlaylistParseError(`${STREAM_INF} without a URI line`);
        pending = parseStreamInf(line.value);
      } else if (line.name === '#EXTINF' || line.name === '#EXT-X-TARGETDURATION') {
        throw new PlaylistParseError(`a media playlist tag (${line.name}) in a master playlist`);
      }
    } catch (error) {
      throw error instanceof PlaylistParseError ? error.atLine(line.number) : error;
    }
  }
  if (pending) throw new PlaylistParseError(`${STREAM_INF} without a URI line`);
  return playlist;
}

function parseStreamInf(value: string): Omit<Variant, 'uri'> {
  const attributes = AttributeReader.parse(value, STREAM_INF);
  return withoutUndefined({
    bandwidth: attributes.required('BANDWIDTH', attributes.decimalInteger),
    averageBandwidth: attributes.decimalInteger('AVERAGE-BANDWIDTH'),
    codecs: attributes.quotedString('CODECS'),
  });
}

/** Throws RangeError for a structure no playlist text can carry. */
export function marshalMasterPlaylist(playlist: MasterPlaylist): string {
  const lines = [HEADER, `${VERSION}:${formatDecimalInteger(playlist.version)}`];
  if (playlist.independentSegments) lines.push(INDEPENDENT_SEGMENTS);
  for (const variant of playlist.variants) {
    const attributes: [string, string][] = [['BANDWIDTH', formatDecimalInteger(variant.bandwidth)]];
    if (variant.averageBandwidth !== undefined) attributes.push(['AVERAGE-BANDWIDTH', formatDecimalInteger(variant.averageBandwidth)]);
    if (variant.codecs !== undefined) attributes.push(['CODECS', formatQuotedString(variant.codecs)]);
    lines.push(`${STREAM_INF}:${formatAttributeList(attributes)}`, formatUriLine(variant.uri));
  }
  return joinPlaylistLines(lines);
}
