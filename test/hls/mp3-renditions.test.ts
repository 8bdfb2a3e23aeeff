/**
 * A channel with an AAC and an MP3 rendition through the real packager and a MemoryStore, fed
 * the frame groups of a real FFmpeg encode (docs/architecture.md, "MP3 renditions"): the MP3
 * media playlist lists `.mp3` packed-audio segments (and parts, for Low-Latency HLS) whose
 * frames are every MP3 frame once, in order, on a continuous timeline; the master lists only
 * the AAC rendition; AAC playlists report no MP3 rendition.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { ffmpegOutputOptions } from '../../src/ffmpeg/encoder-arguments.js';
import { ChannelPackager } from '../../src/hls/channel-packager.js';
import { EncoderOutputReader, encoderSpecFor, renditionCodecs } from '../../src/ingest/input-worker.js';
import { MpegAudioReader } from '../../src/media/mpeg-audio.js';
import { readTransportStreamTimestamp, TIMESTAMP_TAG_BYTES } from '../../src/media/packed-audio-muxer.js';
import { ptsDelta, samplesToTicks } from '../../src/media/pts.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { testChannel } from '../helpers/channel-config.js';

const logger = pino({ level: 'silent' });
const RENDITIONS = [
  { id: 'hifi', bitrate: '128k' },
  { id: 'mp3', bitrate: '128k', codec: 'mp3' },
];

/** 12 s of tone through the live encoder's options, cut into frame groups as an input worker does. */
function encodedGroups(channel: ReturnType<typeof testChannel>) {
  const ts = execFileSync(
    'ffmpeg',
    ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=12:sample_rate=48000', ...ffmpegOutputOptions(encoderSpecFor(channel, channel.inputs[0]!)), '-f', 'mpegts', 'pipe:1'],
    { maxBuffer: 64 * 1024 * 1024, timeout: 30_000 },
  );
  const reader = new EncoderOutputReader(renditionCodecs(channel));
  return [...reader.push(ts), ...reader.flush()];
}

async function packaged(t: Test, lowLatency: boolean) {
  const channel = testChannel({ renditions: RENDITIONS, lowLatency, partSeconds: '0.5s' }, 2);
  const groups = encodedGroups(channel);
  const store = new MemoryStore();
  const packager = new ChannelPackager({ channel, segmentSeconds: 2, windowSegments: 6, store, logger });
  t.teardown(() => packager.close());
  await packager.start();
  const segments: { msn: number; run: number }[] = [];
  packager.on('segment', (entry: { msn: number; run: number }) => segments.push(entry));
  for (const group of groups) packager.pushFrameGroup(group);
  while (segments.length < 5) await once(packager, 'segment');
  return { store, groups, segments };
}

for (const lowLatency of [false, true]) {
  t.test(`MP3 segments${lowLatency ? ' and parts' : ''} are packed audio named .mp3, every frame once on one timeline; the master lists AAC only`, async (t) => {
    const { store, groups, segments } = await packaged(t, lowLatency);
    const master = (await store.getPlaylist('fip', 'fip.m3u8'))!.body;
    t.match(master, 'fip_hifi.m3u8');
    t.notMatch(master, 'fip_mp3', 'the master does not list the MP3 rendition');
    const media = (await store.getPlaylist('fip', 'fip_mp3.m3u8'))!.body;
    const uris = media.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    t.ok(uris.length >= 5 && uris.every((uri) => /^mp3\/\d+-\d+\.mp3$/.test(uri)), `the MP3 playlist lists .mp3 segments: ${uris.join(' ')}`);
    const aacMedia = (await store.getPlaylist('fip', 'fip_hifi.m3u8'))!.body;
    t.ok(aacMedia.split('\n').filter((line) => !line.startsWith('#') && line !== '').every((uri) => uri.endsWith('.ts')), 'the AAC playlist lists .ts');
    if (lowLatency) {
      t.match(media, /#EXT-X-PART:DURATION=[\d.]+,URI="mp3\/\d+-\d+\.\d+\.mp3"/, 'parts are .mp3 too');
      t.match(media, /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="mp3\/\d+-\d+\.\d+\.mp3"/);
      t.notMatch(aacMedia, 'RENDITION-REPORT:URI="fip_mp3.m3u8"', 'AAC playlists report no MP3 rendition');
    }

    const bodies = await Promise.all(segments.map(({ msn, run }) => store.getSegment('fip', 'mp3', `${msn}-${run}.mp3`)));
    t.ok(bodies.every((body) => body !== null), 'every published MP3 segment is stored under its .mp3 name');
    t.equal(await store.getSegment('fip', 'mp3', `${segments[0]!.msn}-${segments[0]!.run}.ts`), null, 'and not under .ts');
    // Every MP3 frame the groups carried, once and in order: the segments' frames back to back.
    const reader = new MpegAudioReader();
    const inSegments = bodies.map((body) => reader.push(body!));
    const carried = Buffer.concat(groups.map((group) => group[1]!.data));
    const published = Buffer.concat(inSegments.flat().map((frame) => frame.data));
    t.same(published, carried.subarray(0, published.length), 'the segments hold the MP3 frames of the groups, in order, none lost or repeated');
    t.equal(reader.stats.skippedBytes, bodies.length * TIMESTAMP_TAG_BYTES * (lowLatency ? 4 : 1), 'nothing between frames but the timestamp tags');
    // Each segment is stamped where the previous one's MP3 frames end.
    const stamps = bodies.map((body) => readTransportStreamTimestamp(body!)!);
    for (let index = 1; index < stamps.length; index++) {
      const samples = inSegments[index - 1]!.length * 1152;
      t.equal(ptsDelta(stamps[index - 1]!, stamps[index]!), samplesToTicks(samples, 48000), `segment ${index} starts where segment ${index - 1} ends`);
    }
    const aac = await store.getSegment('fip', 'hifi', `${segments[0]!.msn}-${segments[0]!.run}.ts`);
    t.equal(aac?.[0], 0x47, 'the AAC rendition is MPEG-TS as before');
  });
}
