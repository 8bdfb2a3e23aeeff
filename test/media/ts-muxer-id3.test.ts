/**
 * ID3 timed metadata in the MPEG-TS muxer (Apple's "Timed Metadata for HTTP Live Streaming"):
 * the PMT's descriptors byte for byte, the metadata PES read back by onair's demuxer and by
 * FFmpeg, its PTS, its continuity across segments, and a tag longer than one packet.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { AdtsReader, buildAdtsHeader } from '../../src/media/adts.js';
import { nowPlayingId3Tag } from '../../src/media/id3.js';
import type { TimedMetadata } from '../../src/media/muxer.js';
import type { NowPlaying } from '../../src/media/now-playing.js';
import { PTS_WRAP, ptsAdd, samplesToTicks } from '../../src/media/pts.js';
import { TsDemuxer, scanTsPackets, type DemuxEvent } from '../../src/media/ts-demuxer.js';
import { TsSegmentMuxer, type TimedAacFrame } from '../../src/media/ts-muxer.js';
import { readNowPlayingTag } from '../helpers/id3-reader.js';

const METADATA_PID = 0x101;
const SO_WHAT: NowPlaying = { title: 'So What', artist: 'Miles Davis', album: 'Kind of Blue', artworkUrl: 'https://art.example/kob.jpg', setAt: 1 };
const NEXT: NowPlaying = { title: 'Freddie Freeloader', artist: 'Miles Davis', setAt: 2 };

function frames(count: number, firstPts: number): TimedAacFrame[] {
  return Array.from({ length: count }, (_, index) => {
    const data = new Uint8Array(250);
    data.set(buildAdtsHeader({ sampleRate: 48000, channelCount: 2, objectType: 2, payloadLength: 243 }));
    return { data, pts: ptsAdd(firstPts, samplesToTicks(index * 1024, 48000)) };
  });
}

function demux(...segments: Uint8Array[]): { events: DemuxEvent[]; demuxer: TsDemuxer } {
  const demuxer = new TsDemuxer();
  const events = segments.flatMap((segment) => demuxer.push(segment));
  events.push(...demuxer.flush());
  return { events, demuxer };
}

function metadataPes(events: DemuxEvent[]) {
  return events.flatMap((event) => (event.kind === 'pes' && event.pid === METADATA_PID ? [event] : []));
}

t.test('the PMT lists the ID3 stream with Apple’s descriptors; its ES entry is byte for byte FFmpeg’s for timed_id3', async (t) => {
  const segment = new TsSegmentMuxer().muxSegment(frames(10, 0));
  const pmt = Buffer.from(segment.subarray(188 + 5, 188 + 5 + 58)).toString('hex');
  t.equal(
    pmt,
    '02b037' + '0001c10000' // table_id, section_length 55, program 1, version 0, current, section 0 of 0
      + 'e100' + 'f011' // PCR_PID 0x100, program_info_length 17
      + '25' + '0f' + 'ffff' + '49443320' + 'ff' + '49443320' + '00' + '1f' + '0001' // metadata_pointer_descriptor: ID3, service 0, no locator, this TS, program 1
      + '0f' + 'e100' + 'f000' // ADTS AAC on 0x100
      + '15' + 'e101' + 'f00f' + '26' + '0d' + 'ffff' + '49443320' + 'ff' + '49443320' + '00' + '0f' // metadata PES on 0x101, metadata_descriptor
      + '009ebea3', // CRC_32
  );
  // What FFmpeg 5.1's own muxer writes for a timed_id3 stream on PID 0x101 (`ffmpeg -c copy -f mpegts`).
  t.ok(pmt.includes('15e101f00f260dffff49443320ff49443320000f'), 'the same ES entry as FFmpeg’s');
  t.match(demux(segment).events[0], { kind: 'pmt', programNumber: 1, streams: [{ pid: 0x100, streamType: 0x0f }, { pid: METADATA_PID, streamType: 0x15 }] });
});

t.test('each timed metadata becomes a PES on the ID3 PID: private_stream_1, data aligned, its PTS, the tag as payload', async (t) => {
  const muxer = new TsSegmentMuxer();
  const input = frames(188, 900_000);
  const change = input[120]!.pts;
  const metadata: TimedMetadata[] = [{ pts: input[0]!.pts, nowPlaying: SO_WHAT }, { pts: change, nowPlaying: NEXT }];
  const segment = muxer.muxSegment(input, metadata);
  const packets = scanTsPackets(segment);
  t.same(packets.slice(0, 4).map((packet) => packet.pid), [0, 0x1000, 0x100, METADATA_PID], 'the first after the first audio packet (and its PCR)');
  t.ok(packets[2]!.pcr !== undefined);
  // The change: right after the audio packet in which frame 120 (250 bytes each, after a 14-byte PES header) begins.
  const changeAt = packets.findIndex((packet, index) => index > 3 && packet.pid === METADATA_PID);
  const audioBytesBefore = packets.slice(0, changeAt).reduce((sum, packet, index) => {
    if (packet.pid !== 0x100) return sum;
    const offset = index * 188;
    return sum + 184 - (segment[offset + 3]! & 0x20 ? 1 + segment[offset + 4]! : 0);
  }, 0);
  const frameStart = 14 + 120 * 250;
  t.ok(audioBytesBefore > frameStart && audioBytesBefore <= frameStart + 184, `after ${audioBytesBefore} audio bytes: frame 120 starts at ${frameStart}`);
  t.equal(packets.filter((packet) => packet.pid === METADATA_PID).length, 2, 'one packet each');
  const pesStart = 3 * 188 + 4 + 1 + segment[3 * 188 + 4]!;
  t.equal(Buffer.from(segment.subarray(pesStart, pesStart + 4)).toString('hex'), '000001bd', 'stream_id 0xbd');
  t.equal(segment[pesStart + 6], 0x84, 'data_alignment_indicator set');
  t.equal(segment[pesStart + 7], 0x80, 'PTS only');

  const { events, demuxer } = demux(segment);
  const pes = metadataPes(events);
  t.same(pes.map((event) => event.pts), [900_000, change]);
  t.same(pes.map((event) => event.streamId), [0xbd, 0xbd]);
  t.same(readNowPlayingTag(pes[0]!.payload), { title: 'So What', artist: 'Miles Davis', album: 'Kind of Blue', artworkUrl: 'https://art.example/kob.jpg' });
  t.same(readNowPlayingTag(pes[1]!.payload), { title: 'Freddie Freeloader', artist: 'Miles Davis' });
  t.ok(Buffer.from(pes[0]!.payload).equals(nowPlayingId3Tag(SO_WHAT)), 'the payload is exactly the tag');
  t.match(demuxer.stats, { continuityErrors: 0, droppedPes: 0, psiErrors: 0 });
  const audio = events.filter((event) => event.kind === 'pes' && event.pid === 0x100);
  t.equal(new AdtsReader().push(audio[0]!.kind === 'pes' ? audio[0]!.payload : new Uint8Array(), 0).length, 188, 'the audio is whole');
});

t.test('a tag longer than a packet spans packets; continuity on the ID3 PID runs on across segments and the PTS wrap', async (t) => {
  const muxer = new TsSegmentMuxer();
  const long: NowPlaying = { title: '夏'.repeat(256), artist: '🎷'.repeat(256), album: 'é'.repeat(256), setAt: 3 };
  const first = frames(94, PTS_WRAP - 90_000);
  const second = frames(94, ptsAdd(first[0]!.pts, samplesToTicks(94 * 1024, 48000)));
  const segments = [muxer.muxSegment(first, [{ pts: first[0]!.pts, nowPlaying: long }]), muxer.muxSegment(second, [{ pts: second[0]!.pts, nowPlaying: long }])];
  const tagBytes = nowPlayingId3Tag(long).length;
  t.ok(tagBytes > 2000, `a ${tagBytes}-byte tag`);
  const metadataPackets = scanTsPackets(segments[1]!).filter((packet) => packet.pid === METADATA_PID);
  t.equal(metadataPackets.length, Math.ceil((14 + tagBytes) / 184));
  t.same(metadataPackets.map((packet) => packet.pusi), metadataPackets.map((_, index) => index === 0), 'payload_unit_start on the first only');
  const { events, demuxer } = demux(...segments);
  const pes = metadataPes(events);
  t.same(pes.map((event) => event.pts), [PTS_WRAP - 90_000, second[0]!.pts % PTS_WRAP]);
  t.same(readNowPlayingTag(pes[1]!.payload), { title: long.title, artist: long.artist, album: long.album });
  t.equal(demuxer.stats.continuityErrors, 0);
});

t.test('metadata for a segment without audio still gets written, after the PMT', async (t) => {
  const segment = new TsSegmentMuxer().muxSegment([], [{ pts: 0, nowPlaying: SO_WHAT }]);
  t.same(scanTsPackets(segment).map((packet) => packet.pid), [0, 0x1000, METADATA_PID]);
});

t.test('without timed metadata the muxer ignores metadata: only audio after the PMT', async (t) => {
  const segment = new TsSegmentMuxer({ timedMetadata: false }).muxSegment(frames(10, 0), [{ pts: 0, nowPlaying: SO_WHAT }]);
  t.ok(scanTsPackets(segment).slice(2).every((packet) => packet.pid === 0x100));
  t.throws(() => new TsSegmentMuxer({ metadataPid: 0x100 }), RangeError, 'the ID3 PID is not the audio PID');
});

t.test('ffprobe shows a timed_id3 data stream with the metadata at its PTS beside the AAC of real audio', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'onair-ts-id3-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const aacPath = join(directory, 'sine.aac');
  const segmentPath = join(directory, 'segment.ts');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=4', '-ac', '2', '-ar', '48000', '-c:a', 'aac', '-b:a', '96k', '-f', 'adts', aacPath]);
  const aac = new AdtsReader().push(new Uint8Array(readFileSync(aacPath)), 900_000);
  const input = aac.map((frame) => ({ data: frame.data, pts: frame.pts! }));
  const metadata: TimedMetadata[] = [{ pts: input[0]!.pts, nowPlaying: SO_WHAT }, { pts: input[100]!.pts, nowPlaying: NEXT }];
  writeFileSync(segmentPath, new TsSegmentMuxer().muxSegment(input, metadata));
  const probe = JSON.parse(
    execFileSync('ffprobe', ['-v', 'error', '-show_streams', '-show_entries', 'packet=stream_index,pts', '-of', 'json', segmentPath]).toString(),
  ) as { streams: { index: number; codec_name: string; codec_type: string; id: string }[]; packets: { stream_index: number; pts: number }[] };
  t.match(probe.streams, [{ codec_name: 'aac', codec_type: 'audio', id: '0x100' }, { codec_name: 'timed_id3', codec_type: 'data', id: '0x101' }]);
  // (FFmpeg 5.1 reads the first 5 bytes of a 0x15 stream's PES payload as a metadata AU cell
  // header even in private_stream_1, so its packet data is not compared; onair's demuxer and
  // hls.js read the whole tag.)
  t.same(probe.packets.filter((packet) => packet.stream_index === 1).map((packet) => packet.pts), [900_000, input[100]!.pts]);
  t.equal(probe.packets.filter((packet) => packet.stream_index === 0).length, input.length, 'every audio frame still there');
  const decode = execFileSync('ffmpeg', ['-v', 'error', '-i', segmentPath, '-map', '0:a', '-f', 'null', '-'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  t.equal(decode, '', 'the audio decodes without an error');
});
