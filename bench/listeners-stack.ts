/**
 * What bench:listeners runs against, started on free loopback ports and always stopped:
 *
 * - a real onair (`node dist/src/cli.js start --config <generated yaml>`, memory store, one
 *   channel, two renditions) fed by a test tone that FFmpeg pushes over SRT to the channel's
 *   listener input, as the demo does (TestSignalSender; its FFmpeg dies with this process);
 * - optionally varnishd with deploy/varnish/default.vcl, its backend pointed at that onair.
 *
 * Every child is SIGKILLed, and the scratch directory removed, if this process exits before
 * `stop()`; `stop()` ends them politely (SIGTERM, SIGKILL after 3 s). Also here: the CPU time
 * of a process tree from /proc, and Varnish's count of requests sent to the origin.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { TestSignalSender } from '../src/ffmpeg/test-signal-sender.js';
import { parseMasterPlaylist, parseMediaPlaylist } from './listeners-playlist.js';
import { answers, freeTcpPort, freeUdpPort, processCpuSeconds, sleep, stopChild } from './system.js';

const CLI_PATH = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const VCL_PATH = fileURLToPath(new URL('../../deploy/varnish/default.vcl', import.meta.url));
export const VARNISHD_PATH = process.env.ONAIR_VARNISHD ?? '/usr/sbin/varnishd';
const STOP_GRACE_MS = 3000;
const STREAM_READY_TIMEOUT_MS = 60_000;
const VARNISH_READY_TIMEOUT_MS = 15_000;
const OUTPUT_LIMIT = 8000;

export const CHANNEL_ID = 'radio';
/** Two renditions, as a radio publishes a low and a high bit rate; listeners are split evenly. */
export const RENDITIONS = [
  { id: 'lofi', bitrate: '32k' },
  { id: 'midfi', bitrate: '96k' },
] as const;
export const MASTER_PATH = `/${CHANNEL_ID}/${CHANNEL_ID}.m3u8`;

export interface RunningOrigin {
  port: number;
  pid: number;
}

export interface RunningVarnish {
  port: number;
  /** Requests Varnish has sent to the origin so far (MAIN.backend_req). */
  backendRequests(): Promise<number>;
  /** CPU seconds of varnishd and its cache process so far. */
  cpuSeconds(): number;
}

/** The scratch directory and every child started in it; one `stop()` ends them all. */
export class BenchStack {
  readonly directory = mkdtempSync(join(tmpdir(), 'onair-bench-listeners-'));
  private readonly children: { process: ChildProcess; output: () => string }[] = [];
  private readonly senders: TestSignalSender[] = [];
  private stopped = false;
  private readonly killOnExit = (): void => {
    for (const child of this.children) child.process.kill('SIGKILL');
    rmSync(this.directory, { recursive: true, force: true });
  };

  constructor() {
    process.once('exit', this.killOnExit);
  }

  /** onair with one channel fed by a test tone; resolves once every media playlist lists `minimumSegments`. */
  async startOrigin(options: { segmentSeconds: number; minimumSegments: number }): Promise<RunningOrigin> {
    const port = await freeTcpPort();
    const srtPort = await freeUdpPort();
    const configPath = join(this.directory, 'channels.yaml');
    const config = {
      store: 'memory',
      origin: { host: '127.0.0.1', port },
      admin: { port: 0 },
      hls: { segmentSeconds: options.segmentSeconds },
      log: { level: 'warn' },
      channels: [{ id: CHANNEL_ID, renditions: RENDITIONS, inputs: [{ id: 'main', url: `srt://127.0.0.1:${srtPort}?mode=listener`, srt: { passphrase: 'onair-test-passphrase' } }] }],
    };
    writeFileSync(configPath, stringify(config));
    // ONAIR_* variables would override the generated file.
    const environment = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('ONAIR_')));
    const child = this.spawnTracked(process.execPath, [CLI_PATH, 'start', '--config', configPath], { env: environment });
    const sender = new TestSignalSender({ outputUrl: `srt://127.0.0.1:${srtPort}?mode=caller&passphrase=onair-test-passphrase`, initialDelayMs: 1000 });
    this.senders.push(sender);
    sender.start();
    await this.waitForStream(port, child, options.minimumSegments);
    return { port, pid: child.process.pid! };
  }

  async startVarnish(backendPort: number): Promise<RunningVarnish> {
    const vcl = readFileSync(VCL_PATH, 'utf8').replace(/\.port = "\d+";/, `.port = "${backendPort}";`);
    const vclPath = join(this.directory, 'default.vcl');
    writeFileSync(vclPath, vcl);
    const workdir = join(this.directory, 'varnish');
    const port = await freeTcpPort();
    const child = this.spawnTracked(VARNISHD_PATH, ['-F', '-j', 'none', '-a', `127.0.0.1:${port}`, '-f', vclPath, '-n', workdir, '-s', 'malloc,64m', '-T', 'none'], {});
    const deadline = Date.now() + VARNISH_READY_TIMEOUT_MS;
    while (!(await answers(`http://127.0.0.1:${port}/healthz`))) {
      if (child.process.exitCode !== null) throw new Error(`varnishd exited at start:\n${child.output()}`);
      if (Date.now() > deadline) throw new Error(`varnishd did not answer within ${VARNISH_READY_TIMEOUT_MS} ms:\n${child.output()}`);
      await sleep(100);
    }
    const pid = child.process.pid!;
    return {
      port,
      backendRequests: () => varnishCounter(workdir, 'MAIN.backend_req'),
      cpuSeconds: () => [pid, ...childPids(pid)].reduce((sum, each) => sum + processCpuSeconds(each), 0),
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.senders.map((sender) => sender.close()));
    await Promise.all(this.children.reverse().map((child) => stopChild(child.process, STOP_GRACE_MS)));
    process.off('exit', this.killOnExit);
    rmSync(this.directory, { recursive: true, force: true });
  }

  private spawnTracked(command: string, args: string[], options: { env?: NodeJS.ProcessEnv }): { process: ChildProcess; output: () => string } {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-OUTPUT_LIMIT);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.once('error', (error) => collect(Buffer.from(`\n[spawn error] ${error.message}`)));
    const tracked = { process: child, output: () => output };
    this.children.push(tracked);
    return tracked;
  }

  private async waitForStream(port: number, child: { process: ChildProcess; output: () => string }, minimumSegments: number): Promise<void> {
    const deadline = Date.now() + STREAM_READY_TIMEOUT_MS;
    for (;;) {
      if (child.process.exitCode !== null) throw new Error(`onair exited at start:\n${child.output()}`);
      if (await segmentsListed(port, minimumSegments)) return;
      if (Date.now() > deadline) {
        throw new Error(`onair's playlists did not list ${minimumSegments} segments within ${STREAM_READY_TIMEOUT_MS} ms:\n${child.output()}`);
      }
      await sleep(500);
    }
  }
}

/** True when every media playlist of the channel lists at least `minimum` segments. */
async function segmentsListed(port: number, minimum: number): Promise<boolean> {
  try {
    const master = await fetch(`http://127.0.0.1:${port}${MASTER_PATH}`);
    if (!master.ok) return false;
    for (const path of parseMasterPlaylist(await master.text(), MASTER_PATH)) {
      const media = await fetch(`http://127.0.0.1:${port}${path}`);
      if (!media.ok || parseMediaPlaylist(await media.text(), path).segments.length < minimum) return false;
    }
    return true;
  } catch {
    return false; // not listening yet
  }
}


function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function varnishCounter(workdir: string, counter: string): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('varnishstat', ['-n', workdir, '-1', '-f', counter], { timeout: 5000 }, (error, stdout) => {
      if (error) return reject(error);
      const match = new RegExp(`${counter.replace('.', '\\.')}\\s+(\\d+)`).exec(stdout);
      if (!match) return reject(new Error(`no ${counter} in varnishstat output: ${stdout}`));
      resolve(Number(match[1]));
    });
  });
}





