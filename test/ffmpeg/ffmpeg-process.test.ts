/**
 * pipeFfmpeg's exit report when FFmpeg exits well after closing its output. On a loaded
 * machine a niced FFmpeg can take longer than fluent-ffmpeg's 20 ms grace between closing
 * stdout and exiting; fluent-ffmpeg then called the clean exit "Output stream closed", and
 * the safety source aired silence instead of its fallback file.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { findOnPath } from '../../src/ffmpeg/ffmpeg-launcher.js';
import { pipeFfmpeg, type FfmpegExit } from '../../src/ffmpeg/ffmpeg-process.js';

// The real FFmpeg, then 300 ms between its output closing and the exit: what a busy machine does.
const directory = mkdtempSync(join(tmpdir(), 'onair-slow-exit-'));
t.teardown(() => rmSync(directory, { recursive: true, force: true }));
const slowExit = join(directory, 'ffmpeg-slow-exit.sh');
writeFileSync(slowExit, `#!/bin/sh\n${findOnPath('ffmpeg') ?? 'ffmpeg'} "$@"\nstatus=$?\nexec >&-\nsleep 0.3\nexit $status\n`);
chmodSync(slowExit, 0o755);
process.env.FFMPEG_PATH = slowExit; // read once, at the first FFmpeg this process starts

function encodeTone(seconds: number): Promise<{ exit: FfmpegExit; bytes: number }> {
  return new Promise((resolve) => {
    let bytes = 0;
    const ffmpeg = pipeFfmpeg(
      {
        input: `sine=frequency=500:sample_rate=48000:duration=${seconds}`,
        inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', '-f', 'lavfi'],
        outputOptions: ['-c:a', 'aac', '-b:a', '64k'],
        format: 'mpegts',
      },
      { onStderrLine: () => undefined, onExit: (exit) => resolve({ exit, bytes }) },
    );
    ffmpeg.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
  });
}

t.test('a clean exit that comes well after the end of stdout is reported as clean', async (t) => {
  const { exit, bytes } = await encodeTone(0.5);
  t.same(exit, { code: 0, signal: null }, 'FFmpeg’s own exit status, not "Output stream closed"');
  t.ok(bytes > 188 * 10, `the output arrived whole (${bytes} bytes)`);
});

t.test('a failure that comes after the end of stdout is still a failure, with its reason', async (t) => {
  const { exit } = await encodeTone(-1);
  t.ok(exit.code !== null && exit.code !== 0, `FFmpeg's own exit status (${exit.code})`);
  t.match(exit.reason ?? '', /./, `the reason: ${exit.reason}`);
});
