/**
 * A `container: fmp4` channel through the real packager and a MemoryStore, fed the frame
 * groups of a real FFmpeg encode (docs/architecture.md, "Fragmented MP4 channels"): every rendition's
 * segments and parts are `.m4s`, its init segment `init-{run}.mp4` is stored before any
 * playlist lists it, every media playlist (live, Low-Latency, delta, DVR) carries EXT-X-MAP
 * and the version it needs, the master lists the AAC renditions with CODECS mp4a.40.2, and
 * ffprobe reads init + segments (and init + parts) as the encoded AAC. A restart on the same
 * store gives the new run its own init and a second EXT-X-MAP after the discontinuity.
 */
import { execFileSync } from 'node:child_process';
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
import type { AacFrame } from '../../src/media/adts.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { testChannel } from '../helpers/channel-config.js';

const logger = pino({ level: 'silent' });
const RENDITIONS = [
  { id: 'lofi', bitrate: '32k' },
  { id: 'hifi', bitrate: '128k' },
  { id: 'mp3', bitrate: '128k', codec: 'mp3' },
];

function fmp4Channel(lowLatency: boolean) {
  return testChannel({ renditions: RENDITIONS, container: 'fmp4', lowLatency, partSeconds: '0.5s', dvrSeconds: '1m' }, 2);
}

/** 11 s of tone (fewer segments than the window: none overflows the queue) through the live encoder's options, cut into frame groups as an input worker does. */
function encodedGroups(channel: ReturnType<typeof testChannel>): AacFrame[][] {
  const ts = execFileSync(
    'ffmpeg',
    ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=11:sample_rate=48000', ...ffmpegOutputOptions(encoderSpecFor(channel, channel.inputs[0]!)), '-f', 'mpegts', 'pipe:1'],
    { maxBuffer: 64 * 1024 * 1024, timeout: 30_000 },
  );
  const reader = new EncoderOutputReader(renditionCodecs(channel));
  return [...reader.push(ts), ...reader.flush()] as AacFrame[][];
}

type Segment = { msn: number; run: number; durationSeconds: number; discontinuity: boolean; parts?: number[] };

async function packaged(t: Test, store: MemoryStore, channel: ReturnType<typeof testChannel>, groups: AacFrame[][], count: number) {
  const packager = new ChannelPackager({ channel, segmentSeconds: 2, windowSegments: 6, store, logger });
  await packager.start();
  const segments: Segment[] = [];
  packager.on('segment', (entry: Segment) => segments.push(entry));
  for (const group of groups) packager.pushFrameGroup(group);
  while (segments.length < count) await once(packager, 'segment');
  await packager.close();
  return segments;
}

/** ffprobe's view of a file, and FFmpeg decoding all of it; `duration` runs from 0, `start` is the first tfdt. */
function probe(t: Test, bytes: Buffer): { codec: string; sampleRate: number; packets: number; duration: number; start: number } {
  const dir = mkdtempSync(join(tmpdir(), 'onair-fmp4-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'joined.mp4');
  writeFileSync(file, bytes);
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-count_packets', '-show_entries', 'stream=codec_name,sample_rate,nb_read_packets:format=duration,start_time', '-of', 'json', file], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  const json = JSON.parse(out) as { streams: { codec_name: string; sample_rate: string; nb_read_packets: string }[]; format: { duration: string; start_time: string } };
  const stream = json.streams[0]!;
  // Decoding the whole file: any error FFmpeg meets is printed at -v error.
  const decodeErrors = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
  t.equal(decodeErrors, '', 'FFmpeg decodes it without a message');
  return { codec: stream.codec_name, sampleRate: Number(stream.sample_rate), packets: Number(stream.nb_read_packets), duration: Number(json.format.duration), start: Number(json.format.start_time) };
}

const uris = (text: string): string[] => text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));

for (const lowLatency of [false, true]) {
  t.test(`an fMP4 channel${lowLatency ? ' with Low-Latency HLS' : ''}: .m4s segments, a stored init per run, EXT-X-MAP in every media playlist, ffprobe reads them`, async (t) => {
    const channel = fmp4Channel(lowLatency);
    const groups = encodedGroups(channel);
    const store = new MemoryStore();
    const segments = await packaged(t, store, channel, groups, 5);
    const run = segments[0]!.run;
    t.ok(segments.every((segment) => !segment.discontinuity), 'one timeline: nothing dropped');

    const master = (await store.getPlaylist('fip', 'fip.m3u8'))!.body;
    t.match(master, /CODECS="mp4a\.40\.2"[^\n]*\nfip_lofi\.m3u8/);
    t.match(master, /CODECS="mp4a\.40\.2"[^\n]*\nfip_hifi\.m3u8/);
    t.notMatch(master, 'fip_mp3', 'MP3 renditions stay out of the master, as on TS channels');

    for (const rendition of ['lofi', 'hifi', 'mp3']) {
      const media = (await store.getPlaylist('fip', `fip_${rendition}.m3u8`))!.body;
      t.match(media, `#EXT-X-VERSION:${lowLatency ? 9 : 6}\n`, `${rendition}: the version EXT-X-MAP${lowLatency ? ' and LL-HLS' : ''} need`);
      t.equal(media.split(`#EXT-X-MAP:URI="${rendition}/init-${run}.mp4"`).length - 1, 1, `${rendition}: one run, one EXT-X-MAP`);
      t.ok(media.indexOf('#EXT-X-MAP') < media.indexOf('#EXTINF'), 'before the first segment');
      t.ok(uris(media).every((uri) => new RegExp(`^${rendition}/\\d+-${run}\\.m4s$`).test(uri)), `${rendition}: .m4s segments: ${uris(media).join(' ')}`);
      const init = await store.getSegment('fip', rendition, `init-${run}.mp4`);
      t.ok(init, `${rendition}: the init segment is stored`);
      t.equal(Buffer.from(init!.subarray(4, 8)).toString('latin1'), 'ftyp', 'an init segment starts with ftyp');
      const dvr = (await store.getPlaylist('fip', `fip_${rendition}_dvr.m3u8`))!.body;
      t.match(dvr, `#EXT-X-VERSION:6\n`);
      t.match(dvr, `#EXT-X-MAP:URI="${rendition}/init-${run}.mp4"\n`, `${rendition}: the DVR playlist carries EXT-X-MAP`);
      if (lowLatency) {
        t.match(media, new RegExp(`#EXT-X-PART:DURATION=[\\d.]+,URI="${rendition}/\\d+-${run}\\.\\d\\.m4s"`), 'parts are .m4s');
        t.match(media, new RegExp(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${rendition}/\\d+-${run}\\.\\d\\.m4s"`));
        const delta = (await store.getPlaylist('fip', `fip_${rendition}.delta.m3u8`))!.body;
        t.match(delta, `#EXT-X-MAP:URI="${rendition}/init-${run}.mp4"`, 'the delta update carries EXT-X-MAP too');
      }
    }

    for (const rendition of ['hifi', 'mp3']) {
      const init = Buffer.from((await store.getSegment('fip', rendition, `init-${run}.mp4`))!);
      const bodies = await Promise.all(segments.map(({ msn }) => store.getSegment('fip', rendition, `${msn}-${run}.m4s`)));
      t.ok(bodies.every((body) => body !== null), `${rendition}: every published segment is stored under its .m4s name`);
      const joined = probe(t, Buffer.concat([init, ...bodies.map((body) => Buffer.from(body!))]));
      t.equal(joined.codec, rendition === 'mp3' ? 'mp3' : 'aac', `${rendition}: ffprobe reads init + segments as ${joined.codec}`);
      t.equal(joined.sampleRate, 48000);
      const seconds = segments.reduce((sum, segment) => sum + segment.durationSeconds, 0);
      t.ok(Math.abs(joined.duration - joined.start - seconds) < 0.05, `${rendition}: ${joined.start} s to ${joined.duration} s, the playlist says ${seconds.toFixed(3)} s: one continuous timeline`);
      t.ok(Math.abs(joined.start - 10) < 0.05, `the decode timeline starts at the packager's first PTS (10 s): ${joined.start}`);
      const samples = rendition === 'mp3' ? 1152 : 1024;
      if (rendition === 'hifi') t.equal(joined.packets, Math.round((seconds * 48000) / samples), 'one packet per AAC frame, none lost or repeated');
      else t.ok(Math.abs(joined.packets * samples - seconds * 48000) < samples, `${joined.packets} MP3 frames for ${seconds.toFixed(3)} s`);
      if (lowLatency) {
        const { msn, parts } = segments[1]!;
        const partBodies = await Promise.all(parts!.map((_, part) => store.getSegment('fip', rendition, `${msn}-${run}.${part}.m4s`)));
        t.same(Buffer.concat(partBodies.map((body) => Buffer.from(body!))), Buffer.from(bodies[1]!), `${rendition}: a segment is its parts end to end`);
        const fromParts = probe(t, Buffer.concat([init, ...partBodies.map((body) => Buffer.from(body!))]));
        t.equal(fromParts.codec, rendition === 'mp3' ? 'mp3' : 'aac', `${rendition}: ffprobe reads init + parts`);
      }
    }
  });
}

t.test('a restart on the same store: the new run stores its own init and its first segment gets EXT-X-MAP after the discontinuity', async (t) => {
  const channel = fmp4Channel(false);
  const groups = encodedGroups(channel);
  const store = new MemoryStore();
  const first = await packaged(t, store, channel, groups.slice(0, groups.length / 2), 2);
  const second = await packaged(t, store, channel, groups.slice(groups.length / 2), 2);
  const [before, after] = [first[0]!.run, second[0]!.run];
  t.not(before, after, 'two runs');
  const media = parseMediaPlaylist((await store.getPlaylist('fip', 'fip_hifi.m3u8'))!.body);
  const restart = media.segments.findIndex((segment) => segment.uri.endsWith(`-${after}.m4s`));
  t.ok(restart > 0, 'both runs are listed');
  t.strictSame(media.segments[0]!.map, { uri: `hifi/init-${before}.mp4` });
  t.equal(media.segments[restart]!.discontinuity, true);
  t.strictSame(media.segments[restart]!.map, { uri: `hifi/init-${after}.mp4` }, 'the new run names its own init');
  const inits = await Promise.all([before, after].map((run) => store.getSegment('fip', 'hifi', `init-${run}.mp4`)));
  t.ok(inits.every((init) => init !== null), 'both inits are stored (the old one as long as its segments are listed)');
});
