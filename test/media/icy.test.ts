/**
 * ICY metadata (src/media/icy.ts): block bytes as a table, and the interleaver putting a block
 * after exactly every `metaint` audio bytes whatever the chunk sizes, with a title change on
 * the wire at the next block.
 */
import t from 'tap';
import { EMPTY_ICY_BLOCK, icyMetadataBlock, IcyInterleaver, icyTitleText, MAX_ICY_TEXT_BYTES } from '../../src/media/icy.js';

/** Reads an interleaved stream back: the audio bytes and the texts of its blocks (null for an empty one). */
function readIcy(stream: Uint8Array, metaint: number): { audio: Uint8Array; blocks: (string | null)[]; rest: number } {
  const audio: number[] = [];
  const blocks: (string | null)[] = [];
  let offset = 0;
  while (stream.length - offset > metaint) {
    audio.push(...stream.subarray(offset, offset + metaint));
    offset += metaint;
    const length = stream[offset]! * 16;
    const text = stream.subarray(offset + 1, offset + 1 + length);
    blocks.push(length === 0 ? null : Buffer.from(text).toString('utf8'));
    offset += 1 + length;
  }
  audio.push(...stream.subarray(offset));
  return { audio: Uint8Array.from(audio), blocks, rest: stream.length - offset };
}

function concat(pieces: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(pieces));
}

t.test('a metadata block is a length byte ×16 and StreamTitle text padded with NULs', async (t) => {
  const table: [string, number[]][] = [
    // "StreamTitle='A';" is 16 bytes: one unit, no padding.
    ['A', [1, ...Buffer.from("StreamTitle='A';")]],
    // 17 bytes: two units, 15 NULs.
    ['AB', [2, ...Buffer.from("StreamTitle='AB';"), ...new Array(15).fill(0)]],
    // An empty title still says so.
    ['', [1, ...Buffer.from("StreamTitle='';"), 0]],
  ];
  for (const [title, bytes] of table) t.strictSame([...icyMetadataBlock(title)], bytes, JSON.stringify(title));
  t.strictSame([...EMPTY_ICY_BLOCK], [0], 'the unchanged block is one zero byte');
});

t.test('titles are UTF-8, single quotes become ’ and NULs go, a long title is cut on a character boundary', async (t) => {
  t.equal(icyTitleText("Guns N' Roses - Don't Cry"), 'Guns N’ Roses - Don’t Cry');
  t.equal(icyTitleText('a\u0000b'), 'ab');
  const block = icyMetadataBlock('Édith Piaf - Non, je ne regrette rien');
  t.equal(block.length % 16, 1);
  t.equal(Buffer.from(block.subarray(1)).toString('utf8').replace(/\0+$/, ''), "StreamTitle='Édith Piaf - Non, je ne regrette rien';");
  const long = icyMetadataBlock('€'.repeat(3000));
  t.equal(long[0], 255, 'the longest block');
  const text = Buffer.from(long.subarray(1)).toString('utf8').replace(/\0+$/, '');
  t.match(text, /^StreamTitle='€+';$/, 'whole characters only, the closing quote kept');
  t.ok(Buffer.byteLength(text) <= MAX_ICY_TEXT_BYTES);
});

t.test('a block follows every metaint audio bytes exactly, across chunk boundaries of any size', async (t) => {
  const metaint = 100;
  const audio = Uint8Array.from({ length: 1234 }, (_, i) => i % 256);
  for (const chunkSize of [1, 7, 99, 100, 101, 250, 1234]) {
    const interleaver = new IcyInterleaver(metaint, 'Now');
    const pieces: Uint8Array[] = [];
    for (let at = 0; at < audio.length; at += chunkSize) pieces.push(...interleaver.interleave(audio.subarray(at, at + chunkSize)));
    const read = readIcy(concat(pieces), metaint);
    t.strictSame(read.audio, audio, `chunks of ${chunkSize}: the audio is intact`);
    t.equal(read.blocks.length, 12, `chunks of ${chunkSize}: one block per ${metaint} bytes`);
    t.equal(read.blocks[0], "StreamTitle='Now';" + '\0'.repeat(14), 'the first block carries the title');
    t.ok(read.blocks.slice(1).every((block) => block === null), 'then empty blocks while it does not change');
    t.equal(read.rest, 34, 'the tail waits for its block');
  }
});

t.test('a title change goes out at the next block, once; without a title the blocks are empty', async (t) => {
  const interleaver = new IcyInterleaver(10);
  const blocks = (): (string | null)[] => readIcy(concat(interleaver.interleave(new Uint8Array(10))), 10).blocks;
  t.strictSame(blocks(), [null], 'no now playing yet: an empty block');
  interleaver.setTitle('First');
  t.match(blocks()[0], /^StreamTitle='First';/);
  t.strictSame(blocks(), [null]);
  interleaver.setTitle('Second');
  interleaver.setTitle('Third');
  t.match(blocks()[0], /^StreamTitle='Third';/, 'only the latest of two quick changes');
  interleaver.setTitle('Third');
  t.strictSame(blocks(), [null], 'setting the same title again sends nothing');
});

t.test('a metaint must be a positive integer', async (t) => {
  t.throws(() => new IcyInterleaver(0), RangeError);
  t.throws(() => new IcyInterleaver(1.5), RangeError);
});
