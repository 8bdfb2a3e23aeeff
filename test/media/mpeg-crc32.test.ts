import t from 'tap';
import { mpegCrc32 } from '../../src/media/mpeg-crc32.js';

t.test('mpegCrc32 matches the CRC-32/MPEG-2 check value', async (t) => {
  t.equal(mpegCrc32(new TextEncoder().encode('123456789')), 0x0376e6e7);
  t.equal(mpegCrc32(new Uint8Array(0)), 0xffffffff);
});

t.test('a section including its own CRC checks to zero', async (t) => {
  // The PAT FFmpeg writes: program 1 on PMT PID 0x1000, TSID 1, version 0.
  const pat = Uint8Array.from(Buffer.from('00b00d0001c100000001f0002ab104b2', 'hex'));
  t.equal(mpegCrc32(pat), 0);
  t.equal(mpegCrc32(pat, 0, pat.length - 4), 0x2ab104b2);
});
