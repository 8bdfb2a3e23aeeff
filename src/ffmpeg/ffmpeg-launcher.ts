/**
 * No orphans: FFmpeg dies with onair. An SRT listener waiting for its caller never writes,
 * so a dead parent's closed pipe (SIGPIPE) would not end it; the kernel's parent-death
 * signal (prctl PR_SET_PDEATHSIG, set by util-linux setpriv, kept across exec) does, even
 * when onair is SIGKILLed. fluent-ffmpeg spawns one path, so that path is a tiny wrapper
 * script written once per machine (in the temporary directory, named by its content).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, lstatSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Logger } from 'pino';

let launcher: { path: string; problem?: string } | undefined;
let launcherProblemLogged = false;

/** What fluent-ffmpeg spawns: the setpriv wrapper around FFmpeg, or FFmpeg itself if that cannot be had. */
export function ffmpegLaunchPath(logger?: Logger): string {
  launcher ??= resolveLauncher();
  if (launcher.problem && logger && !launcherProblemLogged) {
    launcherProblemLogged = true;
    logger.warn({ ffmpeg: launcher.path }, `${launcher.problem}; FFmpeg runs directly and may outlive a crashed onair`);
  }
  return launcher.path;
}

/** The real binary is `FFMPEG_PATH` if set (as fluent-ffmpeg itself reads it), else `ffmpeg` on the PATH. */
function resolveLauncher(): { path: string; problem?: string } {
  const fromEnv = process.env.FFMPEG_PATH;
  const binary = (fromEnv && isExecutable(fromEnv) ? fromEnv : findOnPath('ffmpeg')) ?? 'ffmpeg';
  if (binary === 'ffmpeg') return { path: binary }; // not installed: let the spawn error say so
  const setpriv = findOnPath('setpriv');
  if (!setpriv) return { path: binary, problem: 'setpriv (util-linux) not found' };
  if (spawnSync(setpriv, ['--pdeathsig', 'KILL', '--', 'true'], { timeout: 5000 }).status !== 0) {
    return { path: binary, problem: `${setpriv} cannot set a parent-death signal` };
  }
  const script = `#!/bin/sh\n# onair: FFmpeg gets SIGKILL when its parent dies.\nexec ${shellQuote(setpriv)} --pdeathsig KILL -- ${shellQuote(binary)} "$@"\n`;
  try {
    const path = writeWrapper(script);
    return isExecutable(path) ? { path } : { path: binary, problem: `${path} cannot be executed (noexec ${tmpdir()}?)` };
  } catch (error) {
    return { path: binary, problem: `cannot write the FFmpeg wrapper in ${tmpdir()} (${(error as Error).message})` };
  }
}

/** Writes the script under a name made from its content; an existing copy is reused only if it is ours and intact. */
function writeWrapper(script: string): string {
  const hash = createHash('sha256').update(script).digest('hex').slice(0, 16);
  const path = join(tmpdir(), `onair-ffmpeg-${hash}.sh`);
  try {
    const stat = lstatSync(path);
    const ours = stat.isFile() && stat.uid === process.getuid?.() && (stat.mode & 0o022) === 0;
    if (ours && readFileSync(path, 'utf8') === script) return path;
  } catch {
    // not there yet
  }
  const temporary = `${path}.${process.pid}.${Date.now()}`;
  writeFileSync(temporary, script, { mode: 0o755, flag: 'wx' });
  try {
    renameSync(temporary, path); // atomic: a concurrent onair never runs a half-written script
    return path;
  } catch {
    return temporary; // someone else's file holds the name (shared /tmp): use our own copy
  }
}

export function findOnPath(name: string): string | undefined {
  for (const directory of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (directory === '') continue;
    const candidate = join(directory, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** access(X_OK) also fails on a noexec mount (Linux). */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
