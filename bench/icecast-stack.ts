/**
 * What bench:icecast runs against, on free loopback ports, always stopped:
 *
 * - onair as in production: a private redis-server, `onair ingest` (one channel `fip`, one AAC
 *   rendition `hifi` at 128 kb/s, fed by an FFmpeg test tone over SRT) and `onair origin`, which
 *   serves the progressive mount /fip-hifi.aac from the store. The origin is its own process, so
 *   its CPU time and RSS are the serving cost alone (the packager and FFmpeg are elsewhere);
 * - icecast2 relaying that mount (bench/icecast-server.ts), so both serve the same bytes.
 *
 * Every child is SIGKILLed if this process exits before `stop()`; `stop()` ends them politely.
 * With `profileDirectory` the origin runs under `node --cpu-prof` and writes its profile there
 * when it stops.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { TestSignalSender } from '../src/ffmpeg/test-signal-sender.js';
import { startRedisServer, type RedisServerHandle } from '../test/helpers/redis-server.js';
import { icecastSources, startIcecast, type RunningIcecast } from './icecast-server.js';
import { freeTcpPort, freeUdpPort, sleep, stopChild } from './system.js';

const CLI_PATH = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const STOP_GRACE_MS = 5000;
const READY_TIMEOUT_MS = 60_000;
const OUTPUT_LIMIT = 8000;

export const CHANNEL_ID = 'fip';
export const RENDITION = { id: 'hifi', bitrate: '128k' } as const;
export const MOUNT_PATH = `/${CHANNEL_ID}-${RENDITION.id}.aac`;

export interface RunningOnairOrigin {
  port: number;
  /** The `onair origin` process. */
  pid: number;
}

interface Tracked {
  process: ChildProcess;
  output: () => string;
}

export class IcecastBenchStack {
  private readonly directory = mkdtempSync(join(tmpdir(), 'onair-bench-icecast-'));
  private readonly children: Tracked[] = [];
  private redis: RedisServerHandle | undefined;
  private sender: TestSignalSender | undefined;
  private icecast: RunningIcecast | undefined;
  private stopped = false;
  private readonly killOnExit = (): void => {
    for (const child of this.children) child.process.kill('SIGKILL');
    rmSync(this.directory, { recursive: true, force: true });
  };

  constructor() {
    process.once('exit', this.killOnExit);
  }

  /** redis-server, `onair ingest` fed by a tone, `onair origin`; resolves once the mount sends audio. */
  async startOnair(options: { segmentSeconds: number; maxListeners: number; profileDirectory?: string }): Promise<RunningOnairOrigin> {
    this.redis = await startRedisServer();
    const port = await freeTcpPort();
    const srtPort = await freeUdpPort();
    const configPath = join(this.directory, 'onair.yaml');
    const config = {
      store: this.redis.url,
      // Icecast's defaults for what a new listener gets and how far one may fall behind.
      origin: { host: '127.0.0.1', port, progressive: { maxListeners: options.maxListeners, burstSeconds: 4, maxBacklogBytes: '512k' } },
      admin: { port: 0 },
      hls: { segmentSeconds: options.segmentSeconds },
      log: { level: 'warn' },
      channels: [
        {
          id: CHANNEL_ID,
          renditions: [RENDITION],
          inputs: [{ id: 'main', url: `srt://127.0.0.1:${srtPort}?mode=listener`, srt: { passphrase: 'onair-test-passphrase' } }],
        },
      ],
    };
    writeFileSync(configPath, stringify(config));
    // ONAIR_* variables would override the generated file.
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('ONAIR_')));
    const ingest = this.spawnTracked(process.execPath, [CLI_PATH, 'ingest', '--config', configPath], env);
    const profile = options.profileDirectory ? ['--cpu-prof', '--cpu-prof-dir', options.profileDirectory] : [];
    const origin = this.spawnTracked(process.execPath, [...profile, CLI_PATH, 'origin', '--config', configPath], env);
    this.sender = new TestSignalSender({ outputUrl: `srt://127.0.0.1:${srtPort}?mode=caller&passphrase=onair-test-passphrase`, initialDelayMs: 1000 });
    this.sender.start();
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await sendsAudio(`http://127.0.0.1:${port}${MOUNT_PATH}`))) {
      for (const [role, child] of [['ingest', ingest], ['origin', origin]] as const) {
        if (child.process.exitCode !== null) throw new Error(`onair ${role} exited at start:\n${child.output()}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`onair's mount ${MOUNT_PATH} sent no audio within ${READY_TIMEOUT_MS} ms:\ningest: ${ingest.output()}\norigin: ${origin.output()}`);
      }
      await sleep(500);
    }
    return { port, pid: origin.process.pid! };
  }

  /** icecast2 relaying onair's mount; resolves once the relay is up and sends audio. */
  async startIcecastRelay(originPort: number, maxClients: number): Promise<RunningIcecast> {
    // Icecast's default per-listener queue (512 KiB, 32 s at 128 kb/s) and burst (64 KiB, 4 s).
    this.icecast = await startIcecast({ relays: [{ host: '127.0.0.1', port: originPort, mount: MOUNT_PATH }], maxClients });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      // icecast2 2.4 answers malformed JSON while its stats are still being filled in: try again.
      const status = await this.icecast.status().catch(() => undefined);
      const relayed = status !== undefined && icecastSources(status).some((source) => source.listenurl.endsWith(MOUNT_PATH));
      if (relayed && (await sendsAudio(`${this.icecast.url}${MOUNT_PATH}`))) return this.icecast;
      if (Date.now() > deadline) throw new Error(`icecast2 did not relay ${MOUNT_PATH} within ${READY_TIMEOUT_MS} ms:\n${this.icecast.output()}`);
      await sleep(500);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.icecast?.stop();
    await this.sender?.close();
    // The origin first (its profile is written as it exits), then the ingest, then Redis.
    for (const child of this.children.reverse()) await stopChild(child.process, STOP_GRACE_MS);
    await this.redis?.stop();
    process.off('exit', this.killOnExit);
    rmSync(this.directory, { recursive: true, force: true });
  }

  private spawnTracked(command: string, args: string[], env: NodeJS.ProcessEnv): Tracked {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-OUTPUT_LIMIT);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.once('error', (error) => collect(Buffer.from(`\n[spawn error] ${error.message}`)));
    const tracked = { process: child, output: () => output };
    this.children.push(tracked);
    return tracked;
  }
}

/** True when a GET of `url` answers 200 and at least one body byte within 5 s. */
async function sendsAudio(url: string): Promise<boolean> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 5000);
  try {
    const response = await fetch(url, { signal: controller.signal });
    if (response.status !== 200 || !response.body) return false;
    const reader = response.body.getReader();
    const { value } = await reader.read();
    await reader.cancel();
    return (value?.length ?? 0) > 0;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}


