/**
 * The fMP4 muxer's Opus and FLAC tracks (src/media/fmp4-muxer.ts;
 * docs/architecture.md, "Opus and FLAC renditions"): golden sample entries, checked byte for byte against what FFmpeg 5.1's
 * MP4 muxer writes for the same streams (less its `btrt` box, and for FLAC the frame sizes and
 * MD5 a live stream cannot know), and the samples of a fragment: Opus packets with the control
 * header stripped, FLAC frames whole.
 */
import t from 'tap';
import { codecsAttribute, Fmp4Muxer, fmp4MuxerFor, formatFor, formatOfFrame, sampleEntry } from '../../src/media/fmp4-muxer.js';
import { silentFlacFrame } from '../../src/media/flac.js';
import { opusChunk, silentOpusUnit } from '../../src/media/opus.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

t.test('the Opus sample entry: AudioSampleEntry at 48 kHz, dOps with PreSkip 312 (as FFmpeg writes it)', async (t) => {
  t.equal(
    hex(sampleEntry(formatFor('opus', 48000, 2)!)),
    '000000374f707573' + '000000000000' + '0001' + '0000000000000000' + '0002' + '0010' + '0000' + '0000' + 'bb800000' +
      '00000013644f7073' + '00' + '02' + '0138' + '0000bb80' + '0000' + '00',
  );
  t.equal(formatFor('opus', 44100, 2), undefined, 'Opus runs at 48 kHz only');
});

t.test('the FLAC sample entry: fLaC with the sample size in bits, dfLa holding STREAMINFO', async (t) => {
  t.equal(
    hex(sampleEntry(formatFor('flac', 48000, 2, 16)!)),
    '00000056664c6143' + '000000000000' + '0001' + '0000000000000000' + '0002' + '0010' + '0000' + '0000' + 'bb800000' +
      '00000032' + '64664c61' + '00000000' + '80000022' + '04000400' + '000000' + '000000' + '0bb802f0' + '00000000' + '00'.repeat(16),
  );
  t.match(hex(sampleEntry(formatFor('flac', 44100, 1, 24)!)), /^00000056664c6143000000000000000100000000000000000001001800000000ac440000/, '24 bit: samplesize 24');
});

t.test('CODECS: opus and fLaC; the format of a first frame', async (t) => {
  t.equal(codecsAttribute({ codec: 'opus' }), 'opus');
  t.equal(codecsAttribute({ codec: 'flac' }), 'fLaC');
  t.same(formatOfFrame('flac', silentFlacFrame({ sampleRate: 48000, channelCount: 2, bitsPerSample: 24 }).data), { codec: 'flac', sampleRate: 48000, channelCount: 2, bitsPerSample: 24 });
  t.same(formatOfFrame('opus', silentOpusUnit(2).data), { codec: 'opus', sampleRate: 48000, channelCount: 2 });
});

t.test('a fragment holds one sample per Opus packet (control header stripped) and per FLAC frame (whole)', async (t) => {
  const opus = fmp4MuxerFor({ id: 'opus', codec: 'opus', sampleRate: 48000, channelCount: 2 });
  // Two groups: the first with two packets (starting at 0 and 960), the second with one (1920).
  const chunks = [opusChunk([silentOpusUnit(2), silentOpusUnit(2)], 2, 90_000), opusChunk([silentOpusUnit(2)], 2, 90_000 + 1920)];
  const fragment = opus.muxSegment(chunks.map((chunk) => ({ data: chunk.data, pts: chunk.pts!, durationTicks: 1920 })));
  // moof: tfhd with the default duration 960, tfdt at 90000 ticks = 48000 samples, trun of three 3-byte samples.
  t.ok(hex(fragment).includes('74666864' + '00020008' + '00000001' + '000003c0'), 'tfhd: default-base-is-moof, duration 960');
  t.ok(hex(fragment).includes('74666474' + '01000000' + '00000000' + '0000bb80'), 'tfdt: 48000 samples');
  t.ok(hex(fragment).includes('7472756e' + '00000201' + '00000003' + '00000070' + '00000003'.repeat(3)), 'trun: three samples of 3 bytes');
  t.ok(hex(fragment).endsWith('6d646174' + 'fcfffe'.repeat(3)), 'mdat: the three packets, no control headers');
  const flac = new Fmp4Muxer({ format: formatFor('flac', 48000, 1, 16)! });
  const frame = silentFlacFrame({ sampleRate: 48000, channelCount: 1, bitsPerSample: 16 });
  const flacFragment = flac.muxSegment([{ data: frame.data, pts: 0 }, { data: frame.data, pts: 1920 }]);
  t.ok(hex(flacFragment).endsWith('6d646174' + hex(frame.data).repeat(2)), 'mdat: the two frames whole');
  t.ok(hex(flacFragment).includes('74666864' + '00020008' + '00000001' + '00000400'), 'default sample duration 1024');
});
