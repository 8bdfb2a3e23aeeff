import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { isOnairError } from '../src/errors.js';
import { checkFfmpegInstalled } from '../src/preflight.js';

t.test('an ingest refuses to start without ffmpeg or ffprobe, and says how to install them', async (t) => {
  const saved = { ffmpeg: process.env.FFMPEG_PATH, ffprobe: process.env.FFPROBE_PATH };
  t.teardown(() => {
    for (const [name, value] of [['FFMPEG_PATH', saved.ffmpeg], ['FFPROBE_PATH', saved.ffprobe]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  process.env.FFPROBE_PATH = '/nonexistent/ffprobe';
  let refused: unknown;
  try {
    checkFfmpegInstalled('ingest');
  } catch (error) {
    refused = error;
  }
  t.ok(isOnairError(refused, 'ONAIR_FFMPEG_MISSING'), 'ONAIR_FFMPEG_MISSING');
  t.match((refused as Error).message, /ffprobe not found.*apt-get install ffmpeg/);
  t.doesNotThrow(() => checkFfmpegInstalled('origin'), 'an origin needs no FFmpeg');
  delete process.env.FFPROBE_PATH;
  t.doesNotThrow(() => checkFfmpegInstalled('start'), "this machine's ffmpeg and ffprobe are found on the PATH");
});

t.test('an ingest refuses an ffmpeg without SRT support, naming it and the install line', async (t) => {
  const saved = process.env.FFMPEG_PATH;
  t.teardown(() => {
    if (saved === undefined) delete process.env.FFMPEG_PATH;
    else process.env.FFMPEG_PATH = saved;
  });
  // A build without libsrt is a fault this machine's FFmpeg cannot show: a stand-in that lists
  // its protocols the way `ffmpeg -protocols` does, srt only among the outputs.
  const directory = await mkdtemp(join(tmpdir(), 'onair-preflight-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const fake = join(directory, 'ffmpeg');
  await writeFile(fake, "#!/bin/sh\nprintf 'Supported file protocols:\\nInput:\\n  file\\n  http\\n  udp\\nOutput:\\n  file\\n  srt\\n'\n", { mode: 0o755 });
  process.env.FFMPEG_PATH = fake;
  let refused: unknown;
  try {
    checkFfmpegInstalled('start');
  } catch (error) {
    refused = error;
  }
  t.ok(isOnairError(refused, 'ONAIR_FFMPEG_MISSING'), 'ONAIR_FFMPEG_MISSING');
  t.match((refused as Error).message, new RegExp(`${fake} has no SRT support.*apt-get install ffmpeg`));
  t.doesNotThrow(() => checkFfmpegInstalled('origin'), 'an origin needs no FFmpeg');
  delete process.env.FFMPEG_PATH;
  t.doesNotThrow(() => checkFfmpegInstalled('ingest'), "this machine's ffmpeg lists srt among its input protocols");
});
