/**
 * Runs an onair role (`start`, `ingest`, `origin`) as a real child process of the built
 * CLI (dist/src/cli.js, built by `npm run build`), so chaos tests can do to a packager
 * what the world does: SIGKILL it, SIGSTOP it (a hung host), or stop it politely.
 *
 *   const packager = await startOnairProcess(t, { role: 'ingest', config, readyPattern: /ingest started/ });
 *   packager.kill('SIGKILL');
 *   await packager.exited;
 *
 * The config goes to a temp dir as JSON (the CLI's loader reads YAML, and JSON is YAML).
 * The process logs at `info` at least, so readiness and diagnostics have lines to read;
 * the last ~20 kB of its stdout+stderr (pino JSON lines) stay available via output().
 * t.teardown always ends it (SIGTERM, SIGKILL after 3 s), SIGKILLs FFmpeg children it
 * left behind, and removes the temp dir; if the test process exits first, the process and
 * its children are SIGKILLed from the 'exit' hook.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { OnairConfig } from '../../src/config/config-schema.js';

/** The built CLI; ONAIR_CLI may point at another build (e.g. of another checkout). */
export const CLI_PATH = process.env.ONAIR_CLI ?? join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');

const OUTPUT_LIMIT = 20_000;
const STOP_GRACE_MS = 3000;
const DEFAULT_READY_TIMEOUT_MS = 15_000;
const DESCENDANT_POLL_MS = 1000;

export interface OnairExit {
  code: number | null;
  signal: string | null;
}

export interface OnairProcess {
  readonly pid: number;
  /** Settles once when the process has exited (never rejects). */
  readonly exited: Promise<OnairExit>;
  /** The last ~20 kB of stdout+stderr, for diagnostics. */
  readonly output: () => string;
  /**
   * Its descendants right now (the FFmpeg encoders of an ingest), deepest last. Empty once
   * it has exited: children of a SIGKILLed packager are re-parented, so look before killing.
   */
  readonly children: () => number[];
  /** Sends a signal (default SIGTERM, like ChildProcess.kill); descendants seen now are SIGKILLed in teardown if they survive. */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM (and SIGCONT, in case it was SIGSTOPped), SIGKILL after 3 s; resolves with the exit. */
  stop(): Promise<OnairExit>;
}

export interface OnairProcessOptions {
  role: 'start' | 'ingest' | 'origin';
  /** A resolved OnairConfig (e.g. from testConfig) or a raw config object. */
  config: OnairConfig | object;
  /** Added to this process's environment (ONAIR_* overrides the file). */
  env?: NodeJS.ProcessEnv;
  /** Resolve only once a stdout/stderr line matches, e.g. /"msg":"origin listening"/. */
  readyPattern?: RegExp;
  /** Bound on the readiness wait (default 15 s); on timeout the process is killed and this rejects. */
  readyTimeoutMs?: number;
}

/** Cleanups of the processes still running: one 'exit' hook for all (synchronous, so SIGKILL only). */
const killOnExit = new Set<() => void>();
process.once('exit', () => {
  for (const kill of killOnExit) kill();
});

export async function startOnairProcess(t: Test, options: OnairProcessOptions): Promise<OnairProcess> {
  const directory = await mkdtemp(join(tmpdir(), `onair-${options.role}-`));
  const configPath = join(directory, 'config.json');
  await writeFile(configPath, JSON.stringify(withAudibleLogs(options.config), null, 2));

  // An inherited ONAIR_LOG_LEVEL would override the file (and might silence readiness lines).
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.ONAIR_LOG_LEVEL;
  const child = spawn(process.execPath, [CLI_PATH, options.role, '--config', configPath], {
    env: { ...env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  let output = '';
  let partialLine = '';
  const lineListeners = new Set<(line: string) => void>();
  const collect = (chunk: Buffer): void => {
    const text = chunk.toString();
    output = (output + text).slice(-OUTPUT_LIMIT);
    const lines = (partialLine + text).split('\n');
    partialLine = lines.pop()!.slice(-OUTPUT_LIMIT);
    for (const line of lines) for (const listener of lineListeners) listener(line);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);

  let hasExited = false;
  const exited = new Promise<OnairExit>((resolve) => {
    child.once('exit', (code, signal) => {
      hasExited = true;
      resolve({ code, signal });
    });
    // A failed spawn emits 'error' and maybe no 'exit': settle anyway.
    child.once('error', (error) => {
      output += `\n[spawn error] ${error.message}`;
      hasExited = true;
      resolve({ code: null, signal: null });
    });
  });

  // Every descendant ever seen (with its start time, so a reused PID is never killed),
  // so the orphans of a SIGKILLed packager can be cleaned up.
  const seenDescendants = new Map<number, string>();
  const pid = child.pid ?? -1;
  const noteDescendants = (): number[] => {
    if (hasExited || pid < 0) return [];
    try {
      const current = descendantPids(pid);
      for (const descendant of current) seenDescendants.set(descendant, startTime(descendant) ?? '');
      return current;
    } catch {
      return []; // /proc unreadable: nothing to note
    }
  };
  // Look now and then too, so children are known even if the process dies unannounced.
  const watcher = setInterval(noteDescendants, DESCENDANT_POLL_MS).unref();
  void exited.then(() => clearInterval(watcher));
  const signal = (name: NodeJS.Signals): void => {
    if (!hasExited) child.kill(name);
  };
  const killSurvivors = (): void => {
    noteDescendants();
    signal('SIGKILL');
    for (const [descendant, started] of seenDescendants) {
      if (startTime(descendant) !== started || !isAlive(descendant)) continue;
      try {
        process.kill(descendant, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  killOnExit.add(killSurvivors);

  let stopping: Promise<OnairExit> | undefined;
  const handle: OnairProcess = {
    pid,
    exited,
    output: () => output,
    children: noteDescendants,
    kill(name = 'SIGTERM') {
      noteDescendants();
      signal(name);
    },
    stop() {
      stopping ??= (async () => {
        noteDescendants();
        signal('SIGTERM');
        signal('SIGCONT');
        const timer = setTimeout(() => signal('SIGKILL'), STOP_GRACE_MS);
        try {
          return await exited;
        } finally {
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };

  t.teardown(async () => {
    await handle.stop();
    // FFmpeg children outlive a SIGKILLed packager (they are re-parented): end them too.
    killSurvivors();
    killOnExit.delete(killSurvivors);
    await rm(directory, { recursive: true, force: true });
  });

  if (options.readyPattern) {
    await waitForLine(handle, lineListeners, options.readyPattern, options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS, options.role);
  }
  return handle;
}

/** Resolves when a line matches; rejects (after killing the process) on exit or timeout, quoting the output. */
function waitForLine(handle: OnairProcess, listeners: Set<(line: string) => void>, pattern: RegExp, timeoutMs: number, role: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      listeners.delete(onLine);
      if (error) {
        handle.kill('SIGKILL');
        reject(error);
      } else resolve();
    };
    const onLine = (line: string): void => {
      if (pattern.test(line)) finish();
    };
    const timer = setTimeout(() => finish(new Error(`onair ${role} did not log ${pattern} within ${timeoutMs} ms:\n${handle.output()}`)), timeoutMs);
    listeners.add(onLine);
    // Lines that arrived before we listened count too.
    if (handle.output().split('\n').some((line) => pattern.test(line))) finish();
    void handle.exited.then((exit) => finish(new Error(`onair ${role} exited (${exit.code ?? exit.signal}) before logging ${pattern}:\n${handle.output()}`)));
  });
}

const QUIETER_THAN_INFO = new Set(['silent', 'fatal', 'error', 'warn']);

/** The config with log.level raised to `info` when it is quieter (test configs default to silent). */
function withAudibleLogs(config: object): object {
  const log = (config as { log?: { level?: string } }).log;
  if (log?.level !== undefined && !QUIETER_THAN_INFO.has(log.level)) return config;
  return { ...config, log: { ...log, level: 'info' } };
}

/** The direct children of a process (Linux /proc), e.g. the FFmpeg encoders of an onair ingest. */
export function childPids(pid: number): number[] {
  return childrenFromTasks(pid) ?? childrenByParent().get(pid) ?? [];
}

/** Children, grandchildren, ... of a process, breadth first. */
export function descendantPids(pid: number): number[] {
  let byParent: Map<number, number[]> | undefined;
  const childrenOf = (parent: number): number[] => childrenFromTasks(parent) ?? (byParent ??= childrenByParent()).get(parent) ?? [];
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const children = childrenOf(queue.shift()!);
    found.push(...children);
    queue.push(...children);
  }
  return found;
}

/** From /proc/<pid>/task/<tid>/children; undefined without CONFIG_PROC_CHILDREN (or once the process is gone). */
function childrenFromTasks(pid: number): number[] | undefined {
  try {
    const children: number[] = [];
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
      children.push(...text.split(' ').filter(Boolean).map(Number));
    }
    return children;
  } catch {
    return undefined;
  }
}

/** Every process's children, from the parent PID in each /proc/<n>/stat (one scan). */
function childrenByParent(): Map<number, number[]> {
  const byParent = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = statFields(Number(entry))?.[1];
    if (parent === undefined) continue;
    const siblings = byParent.get(Number(parent)) ?? [];
    siblings.push(Number(entry));
    byParent.set(Number(parent), siblings);
  }
  return byParent;
}

/** The fields of /proc/<pid>/stat after "pid (comm)", or undefined when the process is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Format: "pid (comm) state ppid ... starttime ..."; comm may hold spaces and parentheses.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** When a process started (clock ticks since boot): with the PID, identifies it. */
function startTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/** The process state letter from /proc (R running, S sleeping, T stopped, Z zombie, ...), or undefined when gone. */
export function processState(pid: number): string | undefined {
  return statFields(pid)?.[0];
}

/**
 * True while a process exists and is not a zombie (a SIGSTOPped one counts as alive).
 * Unlike `process.kill(pid, 0)`, an exited child nobody has reaped yet counts as gone.
 */
export function isAlive(pid: number): boolean {
  const state = processState(pid);
  return state !== undefined && state !== 'Z';
}
