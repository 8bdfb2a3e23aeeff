/**
 * An LL-HLS `container: fmp4` channel with AAC, Opus and FLAC renditions through the real
 * packager and a MemoryStore, fed the frame groups of a real FFmpeg encode with the live options
 * (docs/architecture.md, "Opus and FLAC renditions"): each Opus and FLAC segment is its parts end
 * to end, FFmpeg decodes init + parts and init + every segment without a message, and the FLAC
 * rendition decodes to exactly the samples the playlist's EXTINFs add up to (Opus: those, less
 * its PreSkip, within a group).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { ffmpegOutputOptions } from '../../src/ffmpeg/encoder-arguments.js';
import { ChannelPackager } from '../../src/hls/channel-packager.js';
import { parseMediaPlaylist } from '../../src/hls/playlist/index.js';
import { EncoderOutputReader, encoderSpecFor, renditionCodecs } from '../../src/ingest/input-worker.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { testChannel } from '../helpers/channel-config.js';

const logger = pino({ level: 'silent' });

/** Samples FFmpeg decodes (mono s16) from `bytes`; any message at -v error fails. */
function decodedSamples(t: Test, bytes: Buffer): number {
  const directory = mkdtempSync(join(tmpdir(), 'onair-opus-flac-channel-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const file = join(directory, 'joined.mp4');
  writeFileSync(file, bytes);
  const run = spawnSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', file, '-f', 's16le', '-ac', '1', 'pipe:1'], { timeout: 30_000, maxBuffer: 64 << 20 });
  if (run.status !== 0 || run.stderr.toString() !== '') throw new Error(`ffmpeg: ${run.status} ${run.stderr.toString()}`);
  return run.stdout.length / 2;
}

t.test('LL-HLS Opus and FLAC: segments are their parts joined, and decode to the listed duration', async (t) => {
  const channel = testChannel({
    renditions: [{ id: 'hifi', bitrate: '96k' }, { id: 'opus', bitrate: '64k', codec: 'opus' }, { id: 'flac', codec: 'flac', bitDepth: 24 }],
    container: 'fmp4',
    lowLatency: true,
    partSeconds: '0.5s',
  }, 2);
  const ts = execFileSync(
    'ffmpeg',
    ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=9:sample_rate=48000', ...ffmpegOutputOptions(encoderSpecFor(channel, channel.inputs[0]!)), '-f', 'mpegts', 'pipe:1'],
    { maxBuffer: 64 << 20, timeout: 30_000 },
  );
  const reader = new EncoderOutputReader(renditionCodecs(channel));
  const groups = [...reader.push(ts), ...reader.flush()];
  const store = new MemoryStore();
  const packager = new ChannelPackager({ channel, segmentSeconds: 2, windowSegments: 6, store, logger });
  await packager.start();
  let segments = 0;
  packager.on('segment', () => (segments += 1));
  for (const group of groups) packager.pushFrameGroup(group);
  while (segments < 3) await once(packager, 'segment');
  await packager.close();

  for (const rendition of ['opus', 'flac']) {
    const media = parseMediaPlaylist((await store.getPlaylist('fip', `fip_${rendition}.m3u8`))!.body);
    const init = Buffer.from((await store.getSegment('fip', rendition, media.segments[0]!.map!.uri.split('/')[1]!))!);
    const bytes = async (uri: string): Promise<Buffer> => Buffer.from((await store.getSegment('fip', rendition, uri.split('/')[1]!))!);
    const withParts = media.segments.find((segment) => segment.parts.length > 1)!;
    t.ok(withParts, `${rendition}: a segment listed with its parts`);
    const parts = await Promise.all(withParts.parts.map((part) => bytes(part.uri)));
    t.same(Buffer.concat(parts), await bytes(withParts.uri), `${rendition}: the segment is its parts end to end`);
    t.ok(decodedSamples(t, Buffer.concat([init, ...parts])) > 0, `${rendition}: init + parts decode`);
    const all = await Promise.all(media.segments.map((segment) => bytes(segment.uri)));
    const listed = Math.round(media.segments.reduce((sum, segment) => sum + segment.durationSeconds, 0) * 48000);
    const decoded = decodedSamples(t, Buffer.concat([init, ...all]));
    if (rendition === 'flac') t.equal(decoded, listed, `FLAC: every listed sample (${listed})`);
    else t.ok(Math.abs(decoded - (listed - 312)) <= 1024, `Opus: ${decoded} samples for ${listed} listed, less 312 of PreSkip, within a group`);
  }
});
