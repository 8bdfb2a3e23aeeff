/**
 * The VOD media playlist of a finished session (RFC 8216 §4.3.3.5 EXT-X-PLAYLIST-TYPE:VOD,
 * §4.3.3.4 EXT-X-ENDLIST): every recorded segment with its exact EXTINF and
 * PROGRAM-DATE-TIME, so a player can seek anywhere in it. A session is one continuous
 * timeline (session-recorder.ts), so there is no discontinuity to signal. An fMP4 session's
 * segments (`.m4s`) carry EXT-X-MAP before the first and wherever the init segment changes
 * (docs/architecture.md, "Recordings of fMP4 channels"). Pure: segments in,
 * text out; the live playlist writer describes the segments, this adds what makes the
 * playlist a complete, unchanging one, and the playlist codec writes it.
 */
import { marshalMediaPlaylist } from '../hls/playlist/index.js';
import { describeMediaPlaylist } from '../hls/playlist-writer.js';
import type { RecordedSegment } from './recording-files.js';

/** `segments` must be non-empty; their URIs are `{session}/{msn}.ts` (`.m4s`, init `{session}/init-{run}.mp4`), relative to the playlist. */
export function renderVodPlaylist(session: string, segments: readonly RecordedSegment[]): string {
  if (segments.length === 0) throw new RangeError('a VOD playlist needs at least one segment');
  const longest = Math.max(...segments.map((segment) => segment.durationSeconds));
  const live = describeMediaPlaylist({
    // §4.3.3.1: every EXTINF, rounded to the nearest integer, is at most the target duration.
    targetDuration: Math.max(1, Math.round(longest)),
    mediaSequence: 0,
    discontinuitySequence: 0,
    segments: segments.map((segment) => ({
      uri: `${session}/${segment.msn}.${segment.initRun === undefined ? 'ts' : 'm4s'}`,
      durationSeconds: segment.durationSeconds,
      programDateTime: segment.programDateTime,
      discontinuity: false,
      ...(segment.initRun === undefined ? {} : { initUri: `${session}/init-${segment.initRun}.mp4` }),
    })),
  });
  return marshalMediaPlaylist({ ...live, playlistType: 'VOD', endList: true });
}
