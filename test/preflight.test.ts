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
