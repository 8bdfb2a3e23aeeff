/**
 * An MP3 rendition end to end (docs/architecture.md, "MP3 renditions"): `onair start` (the
 * built CLI) runs a channel with two AAC renditions and an MP3 one, fed a tone over SRT by
 * FFmpeg. The MP3 media playlist lists `.mp3` packed-audio segments served as `audio/mpeg`;
 * consecutive segments carry timestamps that run on, and their frames, joined, decode with
 * FFmpeg to the tone without a gap. The AAC rendition is unaffected, and the master lists the
 * AAC renditions only.
 */
import t from 'tap';
import { AdtsReader } from '../../src/media/adts.js';
import { readTransportStreamTimestamp, TIMESTAMP_TAG_BYTES } from '../../src/media/packed-audio-muxer.js';
import { MpegAudioReader } from '../../src/media/mpeg-audio.js';
import { ptsDelta, samplesToTicks } from '../../src/media/pts.js';
import { TsDemuxer } from '../../src/media/ts-demuxer.js';
import { originUrl, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { decodePcm, identifyTone, longestDropoutSeconds } from '../helpers/tone.js';

const CONSECUTIVE = 5;

async function fetchOk(url: string): Promise<Response> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`${url}: ${response.status}`);
  return response;
}

/** The URI lines of a media playlist. */
async function playlistUris(url: string): Promise<string[]> {
  const text = await (await fetchOk(url)).text();
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

/** The ADTS frames of an MPEG-TS segment, back to back. */
function adtsOf(segment: Uint8Array): Buffer {
  const reader = new AdtsReader();
  const demuxer = new TsDemuxer();
  const frames = [...demuxer.push(segment), ...demuxer.flush()].flatMap((event) => (event.kind === 'pes' ? reader.push(event.payload, event.pts) : []));
  return Buffer.concat(frames.map((frame) => frame.data));
}

t.test('an MP3 rendition is published as .mp3 packed audio that plays on seamlessly; AAC is unaffected and alone in the master', async (t) => {
  const config = await testConfig({
    segmentSeconds: 1,
    channel: {
      renditions: [
        { id: 'lofi', bitrate: '32k', audioChannels: 1 },
        { id: 'hifi', bitrate: '128k' },
        { id: 'mp3', bitrate: '128k', codec: 'mp3' },
      ],
    },
  });
  const onair = await startOnairProcess(t, { role: 'start', config, readyPattern: /"msg":"ingest started"/ });
  startSender(t, config, 440);
  const base = `${originUrl(config)}/fip`;

  // Steady state: the window has turned over past the start-up (FFmpeg's first burst, the sender's onset).
  const first = await waitFor('the MP3 playlist to list a segment', async () => (await playlistUris(`${base}/fip_mp3.m3u8`))[0], 60_000).catch((error: unknown) => {
    throw new Error(`${String(error)}\n${onair.output()}`);
  });
  const uris = await waitFor('the window to move 8 segments on', async () => {
    const listed = await playlistUris(`${base}/fip_mp3.m3u8`);
    return listed.includes(first) || listed.length < 6 ? undefined : listed;
  }, 30_000);
  t.ok(uris.every((uri) => /^mp3\/\d+-\d+\.mp3$/.test(uri)), `the MP3 playlist lists .mp3 segments (${uris.at(-1)})`);

  const master = await (await fetchOk(`${base}/fip.m3u8`)).text();
  t.match(master, /fip_lofi\.m3u8/);
  t.match(master, /fip_hifi\.m3u8/);
  t.notMatch(master, /fip_mp3/, 'the master lists the AAC renditions only');
  t.equal(master.split('\n').filter((line) => line.startsWith('#EXT-X-STREAM-INF')).length, 2);

  // The last CONSECUTIVE segments: fetched as a player would, from the origin.
  const chosen = uris.slice(-CONSECUTIVE);
  const responses = await Promise.all(chosen.map((uri) => fetchOk(`${base}/${uri}`)));
  t.ok(responses.every((response) => response.headers.get('content-type') === 'audio/mpeg'), 'served as audio/mpeg');
  t.ok(responses.every((response) => response.headers.get('cache-control') === 'public, max-age=31536000, immutable'), 'immutable, like .ts segments');
  const segments = await Promise.all(responses.map(async (response) => new Uint8Array(await response.arrayBuffer())));

  const frameCounts = segments.map((segment) => new MpegAudioReader().push(segment.subarray(TIMESTAMP_TAG_BYTES)).length);
  t.ok(frameCounts.every((count) => count >= 40 && count <= 43), `about 41.7 MP3 frames per 1 s segment (${frameCounts.join(', ')})`);
  const stamps = segments.map((segment) => readTransportStreamTimestamp(segment));
  t.ok(stamps.every((stamp) => stamp !== undefined), 'each segment starts with its ID3 timestamp tag');
  // Each stamp is where the previous segment's frames end. The muxer falls back to the frame
  // group's PTS when its count leaves the group (docs/architecture.md, MP3 renditions), so a stamp
  // may be off by less than one group (1024 samples); once in this window at most, and said.
  const inexact: string[] = [];
  for (let index = 1; index < segments.length; index++) {
    const expected = samplesToTicks(frameCounts[index - 1]! * 1152, 48000);
    const delta = ptsDelta(stamps[index - 1]!, stamps[index]!);
    t.ok(Math.abs(delta - expected) < samplesToTicks(1024, 48000), `segment ${index} is stamped within a group of where segment ${index - 1}'s frames end (${chosen[index]})`);
    if (delta !== expected) inexact.push(`segment ${index}: ${delta - expected} ticks`);
  }
  if (inexact.length > 0) t.comment(`stamps off the frame count: ${inexact.join(', ')}`);
  t.ok(inexact.length <= 1, `stamps follow the frame count exactly but at most once (${inexact.length})`);

  // Joined (each tag stripped, as a player does), the frames decode to the tone without a gap.
  const mp3 = Buffer.concat(segments.map((segment) => segment.subarray(TIMESTAMP_TAG_BYTES)));
  const reading = await identifyTone(mp3, [440, 1000], { format: 'mp3' });
  t.equal(reading.tone, 440, `the MP3 segments carry the tone (${reading.rmsDb.toFixed(1)} dBFS)`);
  const pcm = await decodePcm(mp3, { format: 'mp3' });
  t.ok(pcm.length >= 16000 * (CONSECUTIVE - 0.2), `${(pcm.length / 16000).toFixed(2)} s decoded`);
  t.equal(longestDropoutSeconds(pcm, 16000), 0, 'no gap anywhere across the segment boundaries');

  // The AAC rendition, same MSNs: MPEG-TS as ever, the same tone, no gap.
  const aacUris = chosen.map((uri) => uri.replace(/^mp3\//, 'hifi/').replace(/\.mp3$/, '.ts'));
  const aacResponses = await Promise.all(aacUris.map((uri) => fetchOk(`${base}/${uri}`)));
  t.ok(aacResponses.every((response) => response.headers.get('content-type') === 'video/mp2t'));
  const adts = Buffer.concat(await Promise.all(aacResponses.map(async (response) => adtsOf(new Uint8Array(await response.arrayBuffer())))));
  t.equal((await identifyTone(adts, [440, 1000])).tone, 440, 'the AAC rendition carries the same tone');
  t.equal(longestDropoutSeconds(await decodePcm(adts), 16000), 0, 'and no gap either');
  t.equal((await fetch(`${base}/${chosen[0]!.replace(/\.mp3$/, '.ts')}`)).status, 404, 'an MP3 segment has no .ts twin');
});
