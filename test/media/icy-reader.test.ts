/**
 * ICY metadata blocks cut out of a stream (src/media/icy-reader.ts): audio comes out byte for
 * byte without the blocks however the stream is chunked (every split point, and one byte at a
 * time), each StreamTitle is reported once per block, empty blocks pass silently, and titles
 * read as UTF-8 (Latin-1 when not valid UTF-8), apostrophes included.
 */
import t from 'tap';
import { IcyReader, streamTitleOf } from '../../src/media/icy-reader.js';

function block(text: string, encoding: BufferEncoding = 'utf8'): Buffer {
  const bytes = Buffer.from(text, encoding);
  const length = Math.ceil(bytes.length / 16);
  const result = Buffer.alloc(1 + length * 16);
  result[0] = length;
  bytes.copy(result, 1);
  return result;
}

const METAINT = 16;
const audio = Buffer.from(Array.from({ length: 16 * 5 }, (_, index) => index));
/** 5 × 16 audio bytes with a block after each 16: a title, an empty block, another title, empty, the first again. */
const blocks = [block("StreamTitle='A - One';"), Buffer.from([0]), block("StreamTitle='B - Two';StreamUrl='x';"), Buffer.from([0]), block("StreamTitle='A - One';")];
const stream = Buffer.concat(blocks.flatMap((metadata, index) => [audio.subarray(index * 16, index * 16 + 16), metadata]));

function readInChunks(chunks: Buffer[]): { audio: Buffer; titles: string[] } {
  const reader = new IcyReader(METAINT);
  const out: Uint8Array[] = [];
  const titles: string[] = [];
  for (const chunk of chunks) {
    const result = reader.push(chunk);
    out.push(...result.audio);
    titles.push(...result.titles);
  }
  return { audio: Buffer.concat(out), titles };
}

t.test('audio comes out without the blocks, whatever the chunk boundaries', async (t) => {
  const expectedTitles = ['A - One', 'B - Two', 'A - One'];
  t.same(readInChunks([stream]), { audio, titles: expectedTitles }, 'one chunk');
  for (let split = 1; split < stream.length; split += 1) {
    const result = readInChunks([stream.subarray(0, split), stream.subarray(split)]);
    if (!result.audio.equals(audio) || result.titles.join('|') !== expectedTitles.join('|')) {
      t.fail(`split at ${split}`);
      return;
    }
  }
  t.pass('every split point');
  const bytes = [...stream].map((byte) => Buffer.from([byte]));
  t.same(readInChunks(bytes), { audio, titles: expectedTitles }, 'one byte at a time');
});

t.test('StreamTitle text: UTF-8, Latin-1 fallback, apostrophes, none', async (t) => {
  t.equal(streamTitleOf(block("StreamTitle='Café ♪';").subarray(1)), 'Café ♪');
  t.equal(streamTitleOf(block("StreamTitle='Caf\u00e9';", 'latin1').subarray(1)), 'Café', 'not valid UTF-8: read as Latin-1');
  t.equal(streamTitleOf(block("StreamTitle='Don't Stop';StreamUrl='';").subarray(1)), "Don't Stop");
  t.equal(streamTitleOf(block("StreamUrl='http://x';").subarray(1)), undefined);
  t.equal(streamTitleOf(block("StreamTitle='';").subarray(1)), '');
});

t.test('a metaint that is not a positive integer is a programming error', async (t) => {
  t.throws(() => new IcyReader(0), RangeError);
  t.throws(() => new IcyReader(1.5), RangeError);
});
