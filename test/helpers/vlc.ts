/**
 * VLC 3 (Debian's vlc-bin + vlc-plugin-base) as an HLS client for e2e tests: `cvlc` plays a
 * URL for a while with the dummy interface, writes the decoded audio to a WAV file
 * (`--aout=afile`) and its verbose log (-vv) to a file. VLC refuses to run as root, so the
 * test runs it as the unprivileged system user that `scripts/setup.sh --test` creates
 * (`runuser -u onair-test`) when the test process is root.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The unprivileged user VLC runs as when the tests run as root (scripts/setup.sh --test creates it). */
export const VLC_USER = 'onair-test';

export interface VlcPlayback {
  /** cvlc's exit code (null if it had to be killed). */
  code: number | null;
  /** The -vv log VLC wrote. */
  log: string;
  /** Seconds of audio in the WAV file VLC wrote (0 when it wrote none). */
  audioSeconds: number;
  /** Log lines that say the decoder lost or refused audio (see DECODER_ERROR). */
  decoderErrors: string[];
}

/**
 * What VLC logs when it throws audio away: timestamps it cannot place on the clock it
 * recovers from the PCR ("Timestamp conversion failed", "Could not convert timestamp … for
 * faad"), the ES output giving up on buffering ("buffer deadlock prevented"), a PCR that
 * comes later than the clock expects (VLC then grows its delay and re-buffers), blocks dropped
 * as too late or discarded before the audio output, and faad's errors. One VLC log line each.
 */
export const DECODER_ERROR =
  /Timestamp conversion failed|Could not convert timestamp|buffer deadlock|PCR +is called too late|^faad error|discarded audio buffer|buffer too late/;

/** Why VLC cannot run here, or undefined when it can. */
export function vlcUnavailable(): string | undefined {
  if (spawnSync('cvlc', ['--help'], { stdio: 'ignore' }).error) return 'cvlc is not installed (sh scripts/setup.sh --test installs vlc-bin and vlc-plugin-base)';
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', VLC_USER], { stdio: 'ignore' }).status !== 0) {
    return `VLC refuses root and the user ${VLC_USER} does not exist (sh scripts/setup.sh --test creates it)`;
  }
  return undefined;
}

/** Plays `url` in cvlc for `seconds` (VLC's --run-time), audio to a WAV file; bounded by a kill after `seconds` + 30 s. */
export async function playWithVlc(url: string, seconds: number): Promise<VlcPlayback> {
  const directory = mkdtempSync(join(tmpdir(), 'onair-vlc-'));
  chmodSync(directory, 0o777); // VLC's user writes its log, WAV and config here
  const wavPath = join(directory, 'out.wav');
  const logPath = join(directory, 'vlc.log');
  try {
    const vlcArgs = [
      '--intf', 'dummy', '--no-video', '--aout=afile', `--audiofile-file=${wavPath}`,
      '--run-time', String(seconds), '--play-and-exit', '--no-loop', '--no-repeat',
      '-vv', '--file-logging', `--logfile=${logPath}`, '--log-verbose=2',
      url, 'vlc://quit',
    ];
    const asRoot = process.getuid?.() === 0;
    const [command, args] = asRoot ? ['runuser', ['-u', VLC_USER, '--', 'env', `HOME=${directory}`, 'cvlc', ...vlcArgs]] : ['cvlc', vlcArgs];
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, HOME: directory }, cwd: directory });
      const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
      child.once('error', () => resolve(null));
      child.once('exit', (exitCode) => {
        clearTimeout(killer);
        resolve(exitCode);
      });
    });
    const log = readOr(logPath, '');
    if (process.env.ONAIR_TEST_VLC_LOGS) writeFileSync(join(process.env.ONAIR_TEST_VLC_LOGS, `vlc-${Date.now()}.log`), log); // kept for a look
    return {
      code,
      log,
      audioSeconds: wavSeconds(wavPath),
      decoderErrors: log.split('\n').filter((line) => DECODER_ERROR.test(line)),
    };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/**
 * Duration of a PCM WAV file from its fmt and data chunks. VLC's afile may leave the data
 * chunk's size unset when it is killed, so the data runs to the end of the file then.
 */
export function wavSeconds(path: string): number {
  let bytes: Buffer;
  try {
    if (statSync(path).size < 44) return 0;
    bytes = readFileSync(path);
  } catch {
    return 0;
  }
  if (bytes.toString('latin1', 0, 4) !== 'RIFF' || bytes.toString('latin1', 8, 12) !== 'WAVE') return 0;
  let byteRate = 0;
  for (let offset = 12; offset + 8 <= bytes.length; ) {
    const id = bytes.toString('latin1', offset, offset + 4);
    const size = bytes.readUInt32LE(offset + 4);
    if (id === 'fmt ') byteRate = bytes.readUInt32LE(offset + 16);
    if (id === 'data') {
      const available = bytes.length - offset - 8;
      const dataBytes = size === 0 || size > available ? available : size;
      return byteRate > 0 ? dataBytes / byteRate : 0;
    }
    offset += 8 + size + (size % 2);
  }
  return 0;
}
