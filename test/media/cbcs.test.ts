/**
 * CMAF cbcs sample encryption of fMP4 AAC (src/media/cbcs.ts, the protected init segment of
 * src/media/fmp4-muxer.ts): golden bytes of a protected init segment and of an encrypted
 * chunk; the cipher touches each sample's whole blocks only and nothing else of the chunk;
 * decryption restores the clear chunk; mp4box.js reads the protection; FFmpeg, given the key,
 * decrypts and decodes it exactly like the clear file, and without the key does not.
 * docs/architecture.md, "Content encryption".
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { AdtsReader, buildAdtsHeader } from '../../src/media/adts.js';
import { CLEARKEY_SYSTEM_ID, clearInitSegment, cryptChunkCbcs, cryptSampleCbcs, decryptChunkCbcs, uuidText, type CbcBlockCipher, type CbcsProtection } from '../../src/media/cbcs.js';
import { parseInitSegment } from '../../src/media/fmp4-demux.js';
import { Fmp4Muxer, formatFor, initSegmentFor } from '../../src/media/fmp4-muxer.js';
import type { TimedFrame } from '../../src/media/muxer.js';
import { parseWithMp4box } from '../helpers/mp4box.js';

const AAC_TICKS = 1920;
const KEY = Uint8Array.from({ length: 16 }, (_, index) => 0xa0 + index);
const PROTECTION: CbcsProtection = {
  keyId: Uint8Array.from({ length: 16 }, (_, index) => index + 1),
  constantIv: Uint8Array.from({ length: 16 }, (_, index) => 0x30 + index),
};

function aesCbc(key: Uint8Array, decrypt: boolean): CbcBlockCipher {
  return (blocks, iv) => {
    const cipher = decrypt ? createDecipheriv('aes-128-cbc', key, iv) : createCipheriv('aes-128-cbc', key, iv);
    cipher.setAutoPadding(false);
    return Buffer.concat([cipher.update(blocks), cipher.final()]);
  };
}
const encrypt = aesCbc(KEY, false);
const decrypt = aesCbc(KEY, true);

/** An ADTS frame whose payload's length and bytes follow from `index` (some lengths multiples of 16, some below 16). */
function adtsFrame(index: number): Uint8Array {
  const payloadLength = [5, 16, 32, 47, 200][index % 5]! + (index % 3);
  const header = buildAdtsHeader({ sampleRate: 48000, channelCount: 2, objectType: 2, payloadLength });
  const frame = new Uint8Array(header.length + payloadLength);
  frame.set(header);
  for (let at = header.length; at < frame.length; at += 1) frame[at] = (index * 31 + at) & 0xff;
  return frame;
}
const synthetic: TimedFrame[] = Array.from({ length: 40 }, (_, index) => ({ data: adtsFrame(index), pts: index * AAC_TICKS, durationTicks: AAC_TICKS }));

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function joinParts(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

t.test('the protected init segment: enca + sinf (frma mp4a, schm cbcs 1.0, tenc), a ClearKey pssh; golden bytes', async (t) => {
  const format = formatFor('aac', 48000, 2)!;
  const init = initSegmentFor(format, PROTECTION);
  const hex = Buffer.from(init).toString('hex');
  t.ok(hex.includes(Buffer.from('enca').toString('hex')), 'an enca sample entry');
  t.equal(hex.split(Buffer.from('mp4a').toString('hex')).length, 2, 'mp4a only once: as the frma, not as a sample entry');
  const sinf = '00000061' + Buffer.from('sinf').toString('hex')
    + '0000000c' + Buffer.from('frmamp4a').toString('hex')
    + '00000014' + Buffer.from('schm').toString('hex') + '00000000' + Buffer.from('cbcs').toString('hex') + '00010000'
    + '00000039' + Buffer.from('schi').toString('hex')
    + '00000031' + Buffer.from('tenc').toString('hex') + '01000000' + '00' + '00' + '01' + '00' + Buffer.from(PROTECTION.keyId).toString('hex') + '10' + Buffer.from(PROTECTION.constantIv).toString('hex');
  t.ok(hex.includes(sinf), 'sinf: frma mp4a, schm cbcs version 0x10000, tenc v1 pattern 0/0, protected, IV size 0, the KID, a 16-byte constant IV');
  const pssh = '00000034' + Buffer.from('pssh').toString('hex') + '01000000' + Buffer.from(CLEARKEY_SYSTEM_ID).toString('hex') + '00000001' + Buffer.from(PROTECTION.keyId).toString('hex') + '00000000';
  t.ok(hex.endsWith(pssh), 'the ClearKey pssh v1 with the KID closes the moov');
  t.equal(sha256(init), '726f815f3db464caddf411e48107a745724f9aa76ab8c98986b5772646625b3d', 'golden bytes of the protected init segment');
  t.equal(uuidText(CLEARKEY_SYSTEM_ID), '1077efec-c0b2-4d02-ace3-3c1e52e2fb4b');
  t.same(initSegmentFor(format), new Fmp4Muxer({ format }).initSegment(), 'without protection the init segment is the clear one');
  t.throws(() => initSegmentFor(formatFor('mp3', 48000, 2)!, PROTECTION), /AAC tracks only/);
  t.throws(() => initSegmentFor(format, { ...PROTECTION, keyId: new Uint8Array(8) }), /16 bytes/);
});

t.test('a sample: its whole blocks AES-128-CBC from the constant IV, the partial tail clear', async (t) => {
  const sample = Uint8Array.from({ length: 37 }, (_, index) => index);
  const clear = sample.slice();
  cryptSampleCbcs(sample, PROTECTION.constantIv, encrypt);
  const expected = Buffer.concat([aesCbc(KEY, false)(clear.subarray(0, 32), PROTECTION.constantIv), clear.subarray(32)]);
  t.same(Buffer.from(sample), expected);
  t.same(Buffer.from(sample.subarray(32)), Buffer.from(clear.subarray(32)), 'the 5-byte tail is clear');
  t.equal(Buffer.from(sample).toString('hex'), '408d7f4ee0b2a319c0811565a663d935b368ecc32444de008bd8da03a63918572021222324', 'golden bytes of an encrypted sample');
  const short = Uint8Array.of(1, 2, 3);
  cryptSampleCbcs(short, PROTECTION.constantIv, encrypt);
  t.same([...short], [1, 2, 3], 'a sample under 16 bytes stays clear');
  cryptSampleCbcs(sample, PROTECTION.constantIv, decrypt);
  t.same(sample, clear, 'decrypts back');
});

t.test('a chunk: only sample bytes change, each from the IV again; decryption restores it; golden bytes', async (t) => {
  const muxer = new Fmp4Muxer();
  const chunks = [synthetic.slice(0, 17), synthetic.slice(17, 18), synthetic.slice(18)].map((frames, index) => muxer.muxSegment(frames, index === 0 ? [{ pts: 10, nowPlaying: { title: 'x', setAt: 0 } }] : []));
  const samples = synthetic.map((frame) => frame.data.subarray(7));
  let encrypted = 0;
  for (const chunk of chunks) {
    const sealed = cryptChunkCbcs(chunk, PROTECTION.constantIv, encrypt);
    t.equal(sealed.length, chunk.length, 'the same length: nothing added');
    t.same(cryptChunkCbcs(sealed, PROTECTION.constantIv, decrypt), chunk, 'decrypts to the clear chunk');
    let changed = 0;
    for (let at = 0; at < chunk.length; at += 1) if (chunk[at] !== sealed[at]) changed += 1;
    encrypted += changed;
  }
  const wholeBlockBytes = samples.reduce((total, sample) => total + sample.length - (sample.length % 16), 0);
  t.ok(encrypted <= wholeBlockBytes && encrypted > wholeBlockBytes * 0.9, `changed bytes ${encrypted} are the samples' whole blocks (${wholeBlockBytes})`);
  // Each sample restarts from the IV: the encrypted samples of a chunk are the samples encrypted alone.
  const sealed = cryptChunkCbcs(chunks[0]!, PROTECTION.constantIv, encrypt);
  const first = samples[1]!.slice();
  cryptSampleCbcs(first, PROTECTION.constantIv, encrypt);
  t.ok(Buffer.from(sealed).includes(Buffer.from(first)), 'the second sample encrypted on its own is in the chunk');
  t.equal(sha256(joinParts(chunks.map((chunk) => cryptChunkCbcs(chunk, PROTECTION.constantIv, encrypt)))), 'ff5822259b2a1347ef0e707fac18009d9607741c5cfe604f39d8426210a418d1', 'golden bytes of the encrypted chunks');
  const asBuffer = Buffer.from(chunks[0]!);
  cryptChunkCbcs(asBuffer, PROTECTION.constantIv, encrypt);
  t.same(new Uint8Array(asBuffer), chunks[0], "a Buffer's clear bytes stay clear (the result is a copy, not a view)");
  t.throws(() => cryptChunkCbcs(chunks[0]!.subarray(0, chunks[0]!.length - 3), PROTECTION.constantIv, encrypt), RangeError, 'a cut chunk is refused');
});

t.test('decryptChunkCbcs is the inverse of encryption: every stored chunk back to the muxer\'s bytes, a wrong key not', async (t) => {
  const muxer = new Fmp4Muxer();
  const chunks = [synthetic.slice(0, 20), synthetic.slice(20)].map((frames) => muxer.muxSegment(frames));
  for (const chunk of chunks) {
    const sealed = cryptChunkCbcs(chunk, PROTECTION.constantIv, encrypt);
    t.same(decryptChunkCbcs(sealed, PROTECTION.constantIv, decrypt), chunk, 'the clear chunk');
    t.notSame(decryptChunkCbcs(sealed, PROTECTION.constantIv, aesCbc(KEY.map((byte) => byte ^ 1), true)), chunk, 'another key gives other bytes');
  }
  t.throws(() => decryptChunkCbcs(chunks[0]!.subarray(0, 40), PROTECTION.constantIv, decrypt), RangeError, 'a cut chunk is refused');
});

t.test('clearInitSegment gives the clear init of a protected one: mp4a without sinf, no pssh, byte for byte', async (t) => {
  for (const format of [formatFor('aac', 48000, 2)!, formatFor('aac', 44100, 1)!]) {
    const clear = initSegmentFor(format);
    const protectedInit = initSegmentFor(format, PROTECTION);
    const cleared = clearInitSegment(protectedInit);
    t.same(Buffer.from(cleared).toString('hex'), Buffer.from(clear).toString('hex'), `${format.sampleRate} Hz: the init the muxer writes without protection`);
    for (const gone of ['enca', 'sinf', 'frma', 'schm', 'tenc', 'pssh']) t.notOk(Buffer.from(cleared).includes(Buffer.from(gone)), `no ${gone}`);
    t.same(parseInitSegment(cleared), parseInitSegment(clear), 'the demuxer reads the same track from it');
    t.equal(parseInitSegment(protectedInit), undefined, 'which it does not from the protected one');
    t.same(clearInitSegment(clear), clear, 'a clear init comes back unchanged');
  }
  t.throws(() => clearInitSegment(initSegmentFor(formatFor('aac', 48000, 2)!, PROTECTION).subarray(0, 100)), RangeError, 'a cut init is refused');
});

function tempFile(t: Test, name: string, bytes: Uint8Array): string {
  const directory = mkdtempSync(join(tmpdir(), 'onair-cbcs-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const path = join(directory, name);
  writeFileSync(path, bytes);
  return path;
}

/** FFmpeg's decode (mono s16) of a file, with the decryption key when given; stderr and status kept. */
function decode(path: string, key?: Uint8Array): { pcm: Buffer; status: number | null; errors: string } {
  const args = ['-nostdin', '-v', 'error', ...(key ? ['-decryption_key', Buffer.from(key).toString('hex')] : []), '-i', path, '-f', 's16le', '-ac', '1', 'pipe:1'];
  const run = spawnSync('ffmpeg', args, { timeout: 30_000, maxBuffer: 64 << 20 });
  return { pcm: run.stdout, status: run.status, errors: run.stderr.toString() };
}

t.test('FFmpeg decrypts the protected file with the key to the clear decode; mp4box.js reads the protection', async (t) => {
  const adts = execFileSync('ffmpeg', [
    '-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=4',
    '-ac', '2', '-c:a', 'aac', '-b:a', '96k', '-f', 'adts', 'pipe:1',
  ], { timeout: 30_000, maxBuffer: 64 << 20 });
  const frames = new AdtsReader().push(adts).map((frame, index) => ({ data: frame.data, pts: index * AAC_TICKS, durationTicks: AAC_TICKS }));
  const muxer = new Fmp4Muxer();
  const chunks = [frames.slice(0, 94), frames.slice(94)].map((segment) => muxer.muxSegment(segment));
  const format = muxer.trackFormat()!;
  const clearPath = tempFile(t, 'clear.mp4', joinParts([initSegmentFor(format), ...chunks]));
  const protectedBytes = joinParts([initSegmentFor(format, PROTECTION), ...chunks.map((chunk) => cryptChunkCbcs(chunk, PROTECTION.constantIv, encrypt))]);
  const protectedPath = tempFile(t, 'cbcs.mp4', protectedBytes);
  const clear = decode(clearPath);
  t.equal(clear.errors, '');
  const decrypted = decode(protectedPath, KEY);
  t.equal(decrypted.status, 0, decrypted.errors);
  t.equal(decrypted.errors, '', 'no decoder error with the key');
  t.equal(sha256(decrypted.pcm), sha256(clear.pcm), `the decrypted decode is the clear decode, sample for sample (${clear.pcm.length / 2} samples)`);
  const wrongKey = decode(protectedPath, new Uint8Array(16));
  t.not(sha256(wrongKey.pcm), sha256(clear.pcm), 'a wrong key does not decode to the tone');

  const parsed = parseWithMp4box(protectedBytes);
  const track = parsed.info.tracks[0]!;
  t.match(track.codec, /^enca/, 'mp4box sees the enca sample entry');
  t.equal(parsed.samples.length, frames.length, 'every sample read');
});
