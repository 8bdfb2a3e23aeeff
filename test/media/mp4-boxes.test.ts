/**
 * ISO BMFF box builders (src/media/mp4-boxes.ts) and the fMP4 muxer's small boxes
 * (src/media/fmp4-muxer.ts), byte for byte against ISO/IEC 14496-12 / 14496-1 / 14496-14
 * and ISO/IEC 23009-1's emsg, worked out by hand in the comments.
 */
import t from 'tap';
import { audioSpecificConfig, esdsBox, ftypBox, id3EmsgBox, moofBox, sampleEntry, type AudioTrackFormat } from '../../src/media/fmp4-muxer.js';
import { box, descriptor, fullBox, packedLanguage, u16, u24, u32, u64, u8 } from '../../src/media/mp4-boxes.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const ascii = (text: string): string => Buffer.from(text, 'latin1').toString('hex');
const AAC_48K_STEREO: AudioTrackFormat = { codec: 'aac', sampleRate: 48000, channelCount: 2, aac: { objectType: 2, samplingIndex: 3, channelConfiguration: 2 } };
const MP3_44K_STEREO: AudioTrackFormat = { codec: 'mp3', sampleRate: 44100, channelCount: 2 };

t.test('a box is its 32-bit size, its type and its body; a full box adds version and flags', async (t) => {
  t.equal(hex(box('free')), '00000008' + ascii('free'));
  t.equal(hex(box('test', u8(1), u16(0x0203), u24(0x040506), u32(0x0708090a))), '00000012' + ascii('test') + '01' + '0203' + '040506' + '0708090a');
  t.equal(hex(fullBox('tfdt', 1, 0, u64(2 ** 33 + 5))), '00000014' + ascii('tfdt') + '01000000' + '0000000200000005', 'a 64-bit decode time past 2^32');
  t.equal(hex(fullBox('tfhd', 0, 0x020008)), '0000000c' + ascii('tfhd') + '00020008', 'flags are 24 bits after the version');
  t.throws(() => box('toolong'), RangeError);
  t.throws(() => box('free', u8(256)), RangeError, 'a value that does not fit its width is refused');
});

t.test('a descriptor size uses 7-bit groups with a continuation bit (14496-1 §8.3.3)', async (t) => {
  t.equal(hex(descriptor(0x06, u8(2))), '060102');
  const long = descriptor(0x05, new Uint8Array(200));
  t.equal(hex(long.subarray(0, 3)), '05' + '8148', '200 = 1·128 + 72');
  t.equal(long.length, 203);
});

t.test("the language 'und' packs to 0x55C4", async (t) => {
  t.equal(packedLanguage('und'), 0x55c4);
  t.throws(() => packedLanguage('EN'), RangeError);
});

t.test('the AudioSpecificConfig of AAC-LC 48 kHz stereo is 0x1190', async (t) => {
  // objectType 2 (00010), sampling index 3 (0011), channels 2 (0010), GASpecificConfig 000.
  t.equal(hex(audioSpecificConfig(AAC_48K_STEREO.aac!)), '1190');
  // 44.1 kHz (index 4), mono: 00010 0100 0001 000.
  t.equal(hex(audioSpecificConfig({ objectType: 2, samplingIndex: 4, channelConfiguration: 1 })), '1208');
});

t.test('esds for AAC: MPEG-4 audio (0x40) with the AudioSpecificConfig; for MP3: MPEG-1 audio (0x6B) and none', async (t) => {
  t.equal(
    hex(esdsBox(AAC_48K_STEREO)),
    '00000027' + ascii('esds') + '00000000' +
      '0319' + '0000' + '00' + // ES_Descriptor, 25 bytes: ES_ID 0, no flags
      '0411' + '40' + '15' + '000000' + '00000000' + '00000000' + // DecoderConfigDescriptor, 17 bytes: audio stream, sizes and rates unknown
      '0502' + '1190' + // DecoderSpecificInfo: the AudioSpecificConfig
      '060102', // SLConfigDescriptor: predefined 2 (MP4)
  );
  t.equal(hex(esdsBox(MP3_44K_STEREO)), '00000023' + ascii('esds') + '00000000' + '0315' + '0000' + '00' + '040d' + '6b' + '15' + '000000' + '00000000' + '00000000' + '060102');
});

t.test('the mp4a sample entry: data reference 1, channel count, 16-bit samples, the rate in 16.16', async (t) => {
  const entry = sampleEntry(AAC_48K_STEREO);
  t.equal(hex(entry.subarray(0, 36)), '0000004b' + ascii('mp4a') + '000000000000' + '0001' + '0000000000000000' + '0002' + '0010' + '0000' + '0000' + 'bb800000');
  t.equal(hex(entry.subarray(36)), hex(esdsBox(AAC_48K_STEREO)));
});

t.test('ftyp names the CMAF track brand for AAC, and plain iso6 for MP3', async (t) => {
  t.equal(hex(ftypBox(AAC_48K_STEREO)), '00000020' + ascii('ftyp') + ascii('cmfc') + '00000000' + ascii('cmfciso6mp41dash'));
  t.equal(hex(ftypBox(MP3_44K_STEREO)), '0000001c' + ascii('ftyp') + ascii('iso6') + '00000000' + ascii('iso6mp41dash'));
});

t.test('moof: mfhd, then tfhd (default-base-is-moof), tfdt v1 and trun whose data offset lands past the mdat header', async (t) => {
  const constant = moofBox(7, 96000, [{ size: 300, duration: 1024 }, { size: 301, duration: 1024 }]);
  t.equal(
    hex(constant),
    '00000064' + ascii('moof') +
      '00000010' + ascii('mfhd') + '00000000' + '00000007' +
      '0000004c' + ascii('traf') +
      '00000014' + ascii('tfhd') + '00020008' + '00000001' + '00000400' + // track 1, default duration 1024
      '00000014' + ascii('tfdt') + '01000000' + '0000000000017700' +
      '0000001c' + ascii('trun') + '00000201' + '00000002' + '0000006c' + '0000012c' + '0000012d', // sizes only; offset 100 + 8
  );
  const varying = moofBox(1, 0, [{ size: 417, duration: 1152 }, { size: 418, duration: 576 }]);
  const trun = varying.subarray(varying.length - 36);
  t.equal(hex(trun), '00000024' + ascii('trun') + '00000301' + '00000002' + '00000070' + '00000480000001a1' + '00000240000001a2', 'durations too when they differ; no default in tfhd');
  t.equal(new DataView(varying.buffer).getUint32(0), 0x68, 'the data offset is that moof (104 bytes: tfhd without a default) + 8');
});

t.test('an ID3 emsg is version 1 with the AOM scheme, an unknown duration and the tag as message data', async (t) => {
  const tag = Uint8Array.of(0x49, 0x44, 0x33);
  t.equal(
    hex(id3EmsgBox(48000, 2 ** 32 + 1, 9, tag)),
    '00000041' + ascii('emsg') + '01000000' + '0000bb80' + '0000000100000001' + 'ffffffff' + '00000009' +
      ascii('https://aomedia.org/emsg/ID3') + '00' + '00' + '494433',
  );
});
