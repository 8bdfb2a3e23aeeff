/** The setpriv wrapper every FFmpeg runs under (src/ffmpeg/ffmpeg-launcher.ts). */
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import t from 'tap';
import { ffmpegLaunchPath } from '../../src/ffmpeg/ffmpeg-launcher.js';

t.test('every FFmpeg is started through a setpriv wrapper that kills it when its parent dies', async (t) => {
  const path = ffmpegLaunchPath();
  t.ok(path.startsWith(tmpdir()), `the wrapper lives in ${tmpdir()}`);
  t.equal((await stat(path)).mode & 0o777, 0o755);
  t.match(await readFile(path, 'utf8'), /^#!\/bin\/sh\n(?:#.*\n)*exec '\/usr\/bin\/setpriv' --pdeathsig KILL -- '[^']*ffmpeg' "\$@"\n$/);
  t.equal(ffmpegLaunchPath(), path, 'made once');
});
