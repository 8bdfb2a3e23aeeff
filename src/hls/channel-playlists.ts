/**
 * Every playlist of a channel, rendered from its sequence state in one go (published
 * together, atomically): the master playlist, one media playlist per rendition and, for
 * Low-Latency HLS channels, each media playlist's delta update (`_HLS_skip=YES`).
 */
import type { ChannelConfig } from '../config/config-schema.js';
import { codecsAttribute } from '../media/fmp4-muxer.js';
import {
  AAC_LC_CODECS,
  HOLD_BACK_TARGET_DURATIONS,
  renderMasterPlaylist,
  renderMediaPlaylist,
  skippableSegments,
  type LowLatencyPlaylist,
  type MasterVariant,
  type PlaylistSegment,
} from './playlist-writer.js';
import {
  contentKeyName,
  deltaPlaylistName,
  dvrPlaylistName,
  initSegmentUri,
  masterPlaylistName,
  mediaPlaylistName,
  partUri,
  segmentExtension,
  segmentUri,
  type SegmentExtension,
} from './published-names.js';
import { cbcsKeyIdOf, contentKeyId, contentKeyIv, DEFAULT_KEY_ROTATION_SEGMENTS } from './segment-encryption.js';
import type { ChannelState, DvrSegment } from './sequence-state.js';
import type { MediaKey } from './playlist/index.js';

export interface LowLatencyTiming {
  /** Parts per segment. */
  partCount: number;
  /** The longest part, in seconds (EXT-X-PART-INF PART-TARGET). */
  partTargetSeconds: number;
}

export interface RenderContext {
  /** The writer's run: names the next part in the preload hint. */
  run: number;
  lowLatency: LowLatencyTiming | undefined;
}

// Playlist names live in published-names.ts; re-exported for existing importers.
export { deltaPlaylistName, dvrPlaylistName, mediaPlaylistName } from './published-names.js';

export function renderChannelPlaylists(channel: ChannelConfig, state: ChannelState, context: RenderContext): Record<string, string> {
  const playlists: Record<string, string> = {};
  const variants: MasterVariant[] = [];
  for (const rendition of channel.renditions) {
    const name = mediaPlaylistName(channel.id, rendition.id);
    const extension = segmentExtension(rendition, channel.container);
    const keyOf = keysOf(channel);
    const { mediaSequence, segments } = renditionSegments(state, rendition.id, extension, context.lowLatency !== undefined, keyOf);
    const base = { targetDuration: state.targetDuration, mediaSequence, discontinuitySequence: state.discontinuitySequence, segments };
    if (context.lowLatency) {
      const lowLatency = lowLatencyPart(channel, state, rendition.id, extension, context.run, context.lowLatency, keyOf);
      playlists[name] = renderMediaPlaylist({ ...base, lowLatency });
      const openSeconds = lowLatency.openParts.reduce((sum, part) => sum + part.durationSeconds, 0);
      const skippedSegments = skippableSegments(segments, state.targetDuration, openSeconds);
      playlists[deltaPlaylistName(name)] = renderMediaPlaylist({ ...base, lowLatency: { ...lowLatency, skippedSegments } });
    } else {
      playlists[name] = renderMediaPlaylist(base);
    }
    if (state.dvr) playlists[dvrPlaylistName(channel.id, rendition.id)] = renderDvrPlaylist(state, state.dvr, rendition.id, extension, keyOf);
    // MP3 renditions are published for progressive mounts, not listed in the master
    // (docs/architecture.md, "MP3 renditions": no mixed containers in one ABR ladder), on
    // fMP4 channels too (docs/architecture.md, "Fragmented MP4 channels").
    if (!inMaster(rendition)) continue;
    const measured = state.bandwidth[rendition.id];
    // Before the first measurement: the nominal bit rate plus the TS container's share.
    const estimate = rendition.bitrate * 1.05;
    variants.push({
      uri: name,
      bandwidth: measured ? Math.max(measured.peak, 1) : estimate,
      averageBandwidth: measured && measured.seconds > 0 ? measured.bits / measured.seconds : estimate,
      codecs: masterCodecs(rendition),
    });
  }
  playlists[masterPlaylistName(channel.id)] = renderMasterPlaylist(variants);
  return playlists;
}

/**
 * The DVR playlist: the same live playlist over a longer window, without LL-HLS parts. Its
 * discontinuity sequence counts the tags that left the DVR window: the live window's, less
 * those of the DVR-only segments before it (RFC 8216 §6.2.2).
 */
/**
 * The CODECS of a variant: AAC-LC, or on fMP4 channels `opus` / `fLaC`
 * (docs/architecture.md, "Opus and FLAC renditions"). A FLAC variant's BANDWIDTH is its measured peak like any other's; before the first
 * segment, its `bitrate` (the PCM rate: the config fills it in) plus 5 %.
 */
function masterCodecs(rendition: { codec?: string }): string {
  return rendition.codec === 'opus' || rendition.codec === 'flac' ? codecsAttribute(rendition) : AAC_LC_CODECS;
}

/** Whether the master playlist lists a rendition: AAC, Opus and FLAC ones (not MP3). */
export function inMaster(rendition: { codec?: string }): boolean {
  return rendition.codec !== 'mp3';
}

/** An encrypted channel's EXT-X-KEY of segment `msn` (docs/architecture.md, "Content encryption"); nothing for a clear channel. */
type KeyOf = ((msn: number) => { key?: MediaKey }) & {
  /** A cbcs channel's key period of segment `msn`, which its init segment is named after; undefined otherwise. */
  initKeyId: (msn: number) => number | undefined;
};

function keysOf(channel: ChannelConfig): KeyOf {
  if (channel.encryption === undefined) return Object.assign(() => ({}), { initKeyId: () => undefined });
  const rotation = channel.keyRotationSegments ?? DEFAULT_KEY_ROTATION_SEGMENTS;
  const initKeyId = (msn: number): number | undefined => (channel.encryption === 'cbcs' ? contentKeyId(msn, rotation) : undefined);
  // cbcs: SAMPLE-AES of the fMP4 samples, the key served as for AES-128 (KEYFORMAT identity); the IV is the init's constant IV.
  const sampleAes = channel.encryption === 'cbcs' ? { method: 'SAMPLE-AES' as const, keyFormat: 'identity' as const } : { method: 'AES-128' as const };
  const keyOf = (msn: number): { key: MediaKey } => {
    const keyId = contentKeyId(msn, rotation);
    const iv = Buffer.from(contentKeyIv(keyId)).toString('hex');
    if (channel.encryption === 'cbcs' && channel.hlsKeyFormats !== undefined) return { key: cbcsKeyTags(channel.id, channel.hlsKeyFormats, keyId, iv) };
    return { key: { ...sampleAes, uri: contentKeyName(keyId), iv } };
  };
  return Object.assign(keyOf, { initKeyId });
}

/**
 * A cbcs channel's EXT-X-KEY tags in its `hlsKeyFormats` order (docs/architecture.md, "ClearKey playlists and licenses"): `identity` names the
 * key route; `clearkey` (KEYFORMAT="org.w3.clearkey") names the KID, as a data: URI of its 16 bytes, for an EME player to
 * ask its license server for.
 */
function cbcsKeyTags(channel: string, formats: readonly ('identity' | 'clearkey')[], keyId: number, iv: string): MediaKey {
  const [first, ...others] = formats.map((format): MediaKey =>
    format === 'identity'
      ? { method: 'SAMPLE-AES', uri: contentKeyName(keyId), iv, keyFormat: 'identity' }
      : { method: 'SAMPLE-AES', uri: clearKeyUri(cbcsKeyIdOf(channel, keyId)), iv, keyFormat: 'org.w3.clearkey', keyFormatVersions: '1' },
  );
  return others.length > 0 ? { ...first!, otherFormats: others } : first!;
}

/** `data:text/plain;base64,{KID}`: the KID of a ClearKey EXT-X-KEY, as hls.js reads it (its first 16 bytes). */
export function clearKeyUri(kid: Uint8Array): string {
  return `data:text/plain;base64,${Buffer.from(kid).toString('base64')}`;
}

/**
 * fMP4 (`.m4s`): the init segment of the run that wrote a segment (docs/architecture.md, "Fragmented MP4 channels"); a cbcs
 * channel's, of the run and the segment's key period (`keyId`, docs/architecture.md, "Content encryption").
 */
function initOf(rendition: string, run: number, extension: SegmentExtension, keyId: number | undefined): { initUri?: string } {
  return extension === 'm4s' ? { initUri: initSegmentUri(rendition, run, keyId) } : {};
}

function renderDvrPlaylist(state: ChannelState, dvr: readonly DvrSegment[], rendition: string, extension: SegmentExtension, keyOf: KeyOf): string {
  const liveFirst = state.window[0]?.msn ?? state.nextMsn;
  const olderTags = dvr.filter((segment) => segment.msn < liveFirst && segment.discontinuity).length;
  return renderMediaPlaylist({
    targetDuration: state.targetDuration,
    mediaSequence: dvr[0]?.msn ?? state.nextMsn,
    discontinuitySequence: state.discontinuitySequence - olderTags,
    segments: dvr.map((segment) => ({
      uri: segmentUri(rendition, segment.msn, segment.run, extension),
      durationSeconds: segment.durationSeconds,
      programDateTime: segment.programDateTime,
      discontinuity: segment.discontinuity,
      ...initOf(rendition, segment.run, extension, keyOf.initKeyId(segment.msn)),
      ...keyOf(segment.msn),
    })),
  });
}

/**
 * The window's segments with their URIs and, for Low-Latency HLS, the parts of those
 * that end within HOLD_BACK_TARGET_DURATIONS of the live edge (rfc8216bis §6.2.2: older
 * parts are removed).
 */
function renditionSegments(
  state: ChannelState,
  rendition: string,
  extension: SegmentExtension,
  lowLatency: boolean,
  keyOf: KeyOf,
): { mediaSequence: number; segments: PlaylistSegment[] } {
  const listed = state.window.filter((segment) => segment.bytes[rendition] !== undefined);
  const openSeconds = (state.open?.parts ?? []).reduce((sum, duration) => sum + duration, 0);
  let fromEnd = openSeconds;
  const withParts = new Set<number>();
  for (let index = listed.length - 1; index >= 0 && lowLatency; index--) {
    if (fromEnd > HOLD_BACK_TARGET_DURATIONS * state.targetDuration) break;
    withParts.add(index);
    fromEnd += listed[index]!.durationSeconds;
  }
  const segments = listed.map((segment, index) => {
    const entry: PlaylistSegment = {
      uri: segmentUri(rendition, segment.msn, segment.run, extension),
      durationSeconds: segment.durationSeconds,
      programDateTime: segment.programDateTime,
      discontinuity: segment.discontinuity,
      ...initOf(rendition, segment.run, extension, keyOf.initKeyId(segment.msn)),
      ...keyOf(segment.msn),
    };
    if (withParts.has(index) && segment.parts) {
      entry.parts = segment.parts.map((durationSeconds, part) => ({
        uri: partUri(rendition, segment.msn, segment.run, part, extension),
        durationSeconds,
      }));
    }
    return entry;
  });
  return { mediaSequence: listed[0]?.msn ?? state.nextMsn, segments };
}

function lowLatencyPart(
  channel: ChannelConfig,
  state: ChannelState,
  rendition: string,
  extension: SegmentExtension,
  run: number,
  timing: LowLatencyTiming,
  keyOf: KeyOf,
): LowLatencyPlaylist {
  const open = state.open;
  const openParts = (open?.parts ?? []).map((durationSeconds, part) => ({
    uri: partUri(rendition, open!.msn, open!.run, part, extension),
    durationSeconds,
  }));
  const preloadHintUri = open
    ? partUri(rendition, open.msn, open.run, open.parts.length, extension)
    : partUri(rendition, state.nextMsn, run, 0, extension);
  // Every rendition is published in the same step: the others' last part is this one's.
  const last = state.window.at(-1);
  const lastPart =
    open && open.parts.length > 0
      ? { msn: open.msn, part: open.parts.length - 1 }
      : last && { msn: last.msn, part: (last.parts?.length ?? 1) - 1 };
  const renditionReports = lastPart
    ? channel.renditions
        .filter((other) => other.id !== rendition && inMaster(other))
        .map((other) => ({ uri: mediaPlaylistName(channel.id, other.id), lastMsn: lastPart.msn, lastPart: lastPart.part }))
    : [];
  return {
    partTargetSeconds: timing.partTargetSeconds,
    openParts,
    openDiscontinuity: open?.discontinuity ?? false,
    ...(open && extension === 'm4s' ? { openInitUri: initSegmentUri(rendition, open.run, keyOf.initKeyId(open.msn)) } : {}),
    ...(open ? { openKey: keyOf(open.msn).key } : {}),
    preloadHintUri,
    renditionReports,
  };
}
