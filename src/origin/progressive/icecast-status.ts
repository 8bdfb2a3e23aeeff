/**
 * `GET /status-json.xsl` in Icecast 2.4's shape (its xml2json rendering of the stats tree,
 * checked against a real icecast2 2.4.4; docs/architecture.md, Progressive mounts), so the
 * monitoring tools, stream directories and libraries that read Icecast read onair unchanged:
 *   {"icestats":{"admin":…,"host":…,"location":…,"server_id":…,"server_start":…,
 *    "server_start_iso8601":…,"source":{…} or [{…},…]}}
 * Icecast writes one source as an object and several as an array (xml2json), keys in
 * alphabetical order, and ends each source with `"dummy":null`; so does this. Pure.
 */

export interface StatusSource {
  /** The mount's path, e.g. `/fip-hifi.aac`. */
  mount: string;
  listeners: number;
  listenerPeak: number;
  name: string;
  description: string;
  genre: string;
  url: string;
  contentType: string;
  bitrateKbps: number;
  sampleRate: number;
  audioChannels: number;
  /** The now playing (`Artist - Title`), when there is one. */
  title?: string;
  streamStartMs: number;
}

export interface StatusOptions {
  /** Host name as the client addressed it (`icestats.host`). */
  host: string;
  /** Base of the listen URLs, e.g. `http://radio.example:8080`. */
  baseUrl: string;
  serverId: string;
  serverStartMs: number;
  admin?: string;
  location?: string;
  sources: StatusSource[];
}

export function icecastStatus(options: StatusOptions): { icestats: Record<string, unknown> } {
  const sources = options.sources.map((source) => statusSource(source, options.baseUrl));
  const icestats: Record<string, unknown> = {
    admin: options.admin ?? '',
    host: options.host,
    location: options.location ?? '',
    server_id: options.serverId,
    server_start: rfc2822Date(options.serverStartMs),
    server_start_iso8601: icecastIsoDate(options.serverStartMs),
  };
  // No mount: Icecast leaves `source` out.
  if (sources.length === 1) icestats.source = sources[0];
  else if (sources.length > 1) icestats.source = sources;
  return { icestats };
}

/** `audio_info` as source clients send it in ice-audio-info, and as Icecast reports it. */
export function audioInfo(source: Pick<StatusSource, 'audioChannels' | 'sampleRate' | 'bitrateKbps'>): string {
  return `channels=${source.audioChannels};samplerate=${source.sampleRate};bitrate=${source.bitrateKbps}`;
}

function statusSource(source: StatusSource, baseUrl: string): Record<string, unknown> {
  const entry: Record<string, unknown> = {
    audio_info: audioInfo(source),
    bitrate: source.bitrateKbps,
    genre: source.genre,
    listener_peak: source.listenerPeak,
    listeners: source.listeners,
    listenurl: `${baseUrl}${source.mount}`,
    server_description: source.description,
    server_name: source.name,
    server_type: source.contentType,
    server_url: source.url,
    stream_start: rfc2822Date(source.streamStartMs),
    stream_start_iso8601: icecastIsoDate(source.streamStartMs),
  };
  if (source.title !== undefined) entry.title = source.title;
  entry.dummy = null;
  return entry;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `Fri, 04 Dec 2026 22:20:48 +0000` (RFC 2822 §3.3, UTC), as Icecast writes server_start. */
export function rfc2822Date(ms: number): string {
  const date = new Date(ms);
  const time = [date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds()].map(twoDigits).join(':');
  return `${DAYS[date.getUTCDay()]}, ${twoDigits(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${time} +0000`;
}

/** `2026-12-04T22:20:48+0000`: ISO 8601 without milliseconds and with a colon-less zone, as Icecast writes it. */
export function icecastIsoDate(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}+0000`;
}

function twoDigits(value: number): string {
  return String(value).padStart(2, '0');
}
