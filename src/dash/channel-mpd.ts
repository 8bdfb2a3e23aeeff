/**
 * A channel's MPEG-DASH MPDs, from the same sequence state the HLS media playlists are rendered
 * from (docs/architecture.md, "MPEG-DASH manifests"): `{ch}.mpd` over the live window and, with a DVR
 * window, `{ch}_dvr.mpd` over it. The packager publishes them with the playlists, in the same
 * atomic step, for `container: fmp4` channels only; they list the fMP4 segments those
 * playlists list, `$Number$` being the HLS MSN.
 *
 * Periods: a discontinuity (a packager takeover, a new run, a store outage's gap) starts a new
 * Period. Its id is the HLS discontinuity sequence number of its segments, so it stays the same
 * while the window slides; its SegmentTemplate names the run's init segment and segments.
 *
 * Time: timescale = sample rate. The fMP4 muxer anchors a run's decode time (tfdt) at its first
 * PTS in samples and counts samples from there (src/media/fmp4-muxer.ts), so a period's first
 * `t` is its first segment's PTS in samples, found back from the state's next PTS, and each `d`
 * is the segment's exact sample count. Period@start is the first segment's
 * PROGRAM-DATE-TIME (availabilityStartTime is the Unix epoch), so a segment becomes available
 * in the MPD's timing at the wall-clock end of its audio, as it does in HLS.
 */
import type { ChannelState } from '../hls/sequence-state.js';
import { contentKeyId, cbcsKeyIdOf, DEFAULT_KEY_ROTATION_SEGMENTS } from '../hls/segment-encryption.js';
import { uuidText } from '../media/cbcs.js';
import { samplesToTicks, ticksToSamples } from '../media/pts.js';
import { renderMpd, type Mpd, type MpdAdaptationSet, type MpdPeriod } from './mpd-writer.js';

/** What the MPDs need of a channel's configuration. */
export interface MpdChannel {
  id: string;
  sampleRate: number;
  renditions: readonly { id: string; codec?: string; bitrate: number }[];
  /** `cbcs`: a Period per key period, each with its init segment and its KID's ContentProtection (docs/architecture.md, "Content encryption"). */
  encryption?: 'aes-128' | 'cbcs';
  keyRotationSegments?: number;
  /**
   * `mpdLicenseBaseUrl`: the origin's public base URL, as players reach it (a CDN's). A cbcs
   * channel's MPDs then name its ClearKey license route, `{base}/{ch}/clearkey`, in dashif:Laurl
   * (docs/architecture.md, "Player page and encrypted channels"); without it, no Laurl.
   */
  mpdLicenseBaseUrl?: string;
}

/** A segment as the live window and the DVR window list it. */
interface ListedSegment {
  msn: number;
  run: number;
  durationSeconds: number;
  programDateTime: number;
  discontinuity: boolean;
}

/** The origin's clock endpoint (src/origin/dash-plugin.ts), for UTCTiming. */
export const UTC_TIMING_PATH = '/time';
/** suggestedPresentationDelay in target durations: as far behind the live edge as HLS's HOLD-BACK. */
const PRESENTATION_DELAY_TARGET_DURATIONS = 3;

/**
 * The origin's ClearKey license route of a channel, under the base URL (src/origin/content-keys-plugin.ts,
 * CLEARKEY_LICENSE_ROUTE; named here, as the playlists' key names are in src/hls, because the packager writes it).
 */
const CLEARKEY_LICENSE_NAME = 'clearkey';

/** RFC 6381 codecs of a rendition's fMP4 track, per codec (`aac` when absent). */
const CODECS: Record<string, string> = { aac: 'mp4a.40.2', mp3: 'mp4a.40.34', opus: 'opus', flac: 'flac' };

/** `fip.mpd`: the live MPD of a channel. */
export function mpdName(channel: string): string {
  return `${channel}.mpd`;
}

/** `fip_dvr.mpd`: the MPD over the channel's DVR window. */
export function dvrMpdName(channel: string): string {
  return `${channel}_dvr.mpd`;
}

/**
 * `{ch}.mpd` (and `{ch}_dvr.mpd` with a DVR window) rendered from `state`; none while no
 * segment is listed (an MPD needs a Period).
 */
export function renderChannelMpds(channel: MpdChannel, state: ChannelState): Record<string, string> {
  const mpds: Record<string, string> = {};
  if (state.window.length === 0) return mpds;
  const adaptationSets = channelAdaptationSets(channel, state);
  mpds[mpdName(channel.id)] = renderMpd(describeMpd(channel, state, state.window, state.discontinuitySequence, adaptationSets));
  if (state.dvr && state.dvr.length > 0) {
    // The DVR list's discontinuity sequence, as its HLS playlist counts it (channel-playlists.ts).
    const liveFirst = state.window[0]!.msn;
    const olderTags = state.dvr.filter((segment) => segment.msn < liveFirst && segment.discontinuity).length;
    mpds[dvrMpdName(channel.id)] = renderMpd(describeMpd(channel, state, state.dvr, state.discontinuitySequence - olderTags, adaptationSets));
  }
  return mpds;
}

/** One AdaptationSet per codec, a Representation per rendition, BANDWIDTH as in the HLS master. */
export function channelAdaptationSets(channel: MpdChannel, state: Pick<ChannelState, 'bandwidth'>): MpdAdaptationSet[] {
  const sets = new Map<string, MpdAdaptationSet>();
  for (const rendition of channel.renditions) {
    const codecs = CODECS[rendition.codec ?? 'aac'];
    if (codecs === undefined) continue;
    const measured = state.bandwidth[rendition.id];
    const set = sets.get(codecs) ?? { codecs, representations: [] };
    set.representations.push({ id: rendition.id, bandwidth: measured ? Math.max(measured.peak, 1) : rendition.bitrate * 1.05 });
    sets.set(codecs, set);
  }
  return [...sets.values()];
}

function describeMpd(
  channel: MpdChannel,
  state: ChannelState,
  listed: readonly ListedSegment[],
  discontinuitySequence: number,
  adaptationSets: MpdAdaptationSet[],
): Mpd {
  const last = listed.at(-1)!;
  const seconds = listed.reduce((sum, segment) => sum + segment.durationSeconds, 0);
  return {
    availabilityStartTime: 0,
    publishTime: last.programDateTime + last.durationSeconds * 1000,
    minimumUpdatePeriodSeconds: state.targetDuration,
    minBufferTimeSeconds: state.targetDuration,
    suggestedPresentationDelaySeconds: PRESENTATION_DELAY_TARGET_DURATIONS * state.targetDuration,
    timeShiftBufferDepthSeconds: seconds,
    timescale: channel.sampleRate,
    audioSamplingRate: channel.sampleRate,
    adaptationSets,
    // Both windows end with the newest segment, right before the state's next PTS.
    periods: periodsOf(listed, state.nextPts, discontinuitySequence, channel.sampleRate, cbcsKeyPeriods(channel)),
    utcTimingUrl: UTC_TIMING_PATH,
    ...(channel.encryption === 'cbcs' && channel.mpdLicenseBaseUrl !== undefined ? { clearKeyLicenseUrl: clearKeyLicenseUrl(channel.mpdLicenseBaseUrl, channel.id) } : {}),
  };
}

/**
 * `https://radio.example/fip/clearkey`: the license URL under a public base URL, which may have a
 * path (`https://cdn.example/radio/` → `https://cdn.example/radio/fip/clearkey`); players do not
 * resolve a relative Laurl against the MPD (dash.js and shaka-player send it as written), so it is absolute.
 */
export function clearKeyLicenseUrl(baseUrl: string, channel: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/${channel}/${CLEARKEY_LICENSE_NAME}`;
}

/** A cbcs channel's key period of segment `msn` and its KID (as a UUID); undefined for other channels. */
type KeyPeriodOf = ((msn: number) => { keyId: number; kid: string }) | undefined;

function cbcsKeyPeriods(channel: MpdChannel): KeyPeriodOf {
  if (channel.encryption !== 'cbcs') return undefined;
  const rotation = channel.keyRotationSegments ?? DEFAULT_KEY_ROTATION_SEGMENTS;
  return (msn) => {
    const keyId = contentKeyId(msn, rotation);
    return { keyId, kid: uuidText(cbcsKeyIdOf(channel.id, keyId)) };
  };
}

/**
 * The listed segments cut into Periods at each discontinuity and run change, and a cbcs
 * channel's at each key rotation too (its init segment, whose tenc names the KID, changes):
 * such a Period's id names its key period, so it stays the same while the window slides.
 */
function periodsOf(listed: readonly ListedSegment[], endPts: number, discontinuitySequence: number, sampleRate: number, keyPeriodOf: KeyPeriodOf): MpdPeriod[] {
  // Sample counts, exact: durations are whole frames of the sample rate.
  const durations = listed.map((segment) => Math.round(segment.durationSeconds * sampleRate));
  // Each segment's first PTS, back from the end (segments are contiguous on the PTS line, which
  // the packager does not wrap: src/media/pts.ts), so `t` goes on counting as the tfdt does.
  const startPts: number[] = new Array<number>(listed.length);
  let pts = endPts;
  for (let index = listed.length - 1; index >= 0; index--) {
    pts -= samplesToTicks(durations[index]!, sampleRate);
    startPts[index] = pts;
  }
  const periods: MpdPeriod[] = [];
  let sequence = discontinuitySequence;
  let period: MpdPeriod | undefined;
  let time = 0;
  listed.forEach((segment, index) => {
    if (segment.discontinuity) sequence += 1;
    const previous = listed[index - 1];
    const key = keyPeriodOf?.(segment.msn);
    const rotated = key !== undefined && previous !== undefined && keyPeriodOf!(previous.msn).keyId !== key.keyId;
    if (!period || segment.discontinuity || segment.run !== previous?.run || rotated) {
      time = ticksToSamples(Math.max(0, startPts[index]!), sampleRate);
      // A run change without a discontinuity tag does not happen; should it, the MSN keeps ids apart.
      const id = !period || segment.discontinuity ? `${sequence}` : `${sequence}-${segment.msn}`;
      period = {
        id: key === undefined ? id : `${sequence}-k${key.keyId}`,
        startSeconds: segment.programDateTime / 1000,
        presentationTimeOffset: time,
        startNumber: segment.msn,
        initialization: key === undefined ? `$RepresentationID$/init-${segment.run}.mp4` : `$RepresentationID$/init-${segment.run}-k${key.keyId}.mp4`,
        media: `$RepresentationID$/$Number$-${segment.run}.m4s`,
        ...(key === undefined ? {} : { defaultKid: key.kid }),
        segments: [],
      };
      periods.push(period);
    }
    period.segments.push({ time, duration: durations[index]! });
    time += durations[index]!;
  });
  return periods;
}
