/**
 * A private, throw-away redis-server for tests: free loopback port, no persistence.
 * The handle can stop and start the server again on the SAME port, so chaos tests can
 * take Redis away mid-stream and bring it back to the clients already connected.
 *
 *   const redis = await startRedisServer();
 *   t.teardown(() => redis.stop());
 *
 * With `{ persist: true }` the server writes an append-only file (fsync on every write)
 * to a private temp dir, so `restart()` (or `stop()` then `start()`, even after SIGKILL)
 * comes back with the dataset. The dir is removed when the test process exits.
 *
 * The process helpers (`spawnRedisProcess`, `redisCli`) are shared with
 * redis-cluster.ts and redis-sentinel.ts.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { killAndWait } from './child-processes.js';
import { freeTcpPort } from './ports.js';

export { killAndWait };

export const REDIS_SERVER_PATH = process.env.ONAIR_REDIS_SERVER ?? '/usr/bin/redis-server';
export const REDIS_CLI_PATH = process.env.ONAIR_REDIS_CLI ?? '/usr/bin/redis-cli';

const READY_TIMEOUT_MS = 5000;
const STOP_GRACE_MS = 2000;
const CLI_TIMEOUT_MS = 20_000;

export interface RedisServerOptions {
  /** Keep the dataset across stop/start: AOF with fsync always, in a temp dir (default false). */
  persist?: boolean;
}

export interface RedisServerHandle {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** True while the process is running. */
  readonly running: boolean;
  /** Stops the server and waits for its exit; SIGKILL simulates a crash. Idempotent. */
  stop(options?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /**
   * Starts it again on the same port and waits until it answers PING: with an empty
   * dataset, or with the persisted one when started with `persist`.
   */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(options?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /** Freezes (SIGSTOP) or thaws (SIGCONT) the server: connections stay open, nothing answers. */
  freeze(frozen: boolean): void;
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  // Another process may take the free port before redis-server binds it: try a few ports.
  for (let attempt = 1; ; attempt++) {
    const handle = createHandle(await freeTcpPort(), options);
    try {
      await handle.start();
      return handle;
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

function createHandle(port: number, options: RedisServerOptions): RedisServerHandle {
  let child: ChildProcess | undefined;
  // Never leave a redis-server behind, even if the test process dies without teardown.
  const killOnExit = (): void => {
    child?.kill('SIGKILL');
  };
  let storageArgs = ['--save', '', '--appendonly', 'no'];
  if (options.persist) {
    const dataDir = mkdtempSync(join(tmpdir(), 'onair-redis-'));
    storageArgs = ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dataDir];
    // The dataset must outlive stop() for start() to bring it back; it goes with the test process.
    process.once('exit', () => rmSync(dataDir, { recursive: true, force: true }));
  }

  const handle: RedisServerHandle = {
    url: `redis://127.0.0.1:${port}`,
    port,
    get running() {
      return child !== undefined;
    },
    async start() {
      if (child) return;
      child = await spawnRedisProcess(port, ['--port', String(port), '--bind', '127.0.0.1', ...storageArgs]);
      process.once('exit', killOnExit);
    },
    async stop(stopOptions = {}) {
      const running = child;
      if (!running) return;
      child = undefined;
      process.off('exit', killOnExit);
      running.kill('SIGCONT'); // a frozen server cannot act on SIGTERM
      await killAndWait(running, stopOptions.signal ?? 'SIGTERM');
    },
    async restart(restartOptions = {}) {
      await handle.stop(restartOptions);
      await handle.start();
    },
    freeze(frozen) {
      child?.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
    },
  };
  return handle;
}

/**
 * Spawns redis-server with `args` (a leading config file path is fine) and resolves once
 * it answers PING on `port`; rejects (and kills it) when it exits or stays silent.
 */
export async function spawnRedisProcess(port: number, args: string[]): Promise<ChildProcess> {
  const child = spawn(REDIS_SERVER_PATH, [...args, '--loglevel', 'warning'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  spawnError.catch(() => {});

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`redis-server exited at start on port ${port}:\n${output}`);
    const answered = await Promise.race([ping(port), spawnError]);
    if (answered) return child;
    await sleep(25);
  }
  await killAndWait(child, 'SIGKILL');
  throw new Error(`redis-server did not answer PING on port ${port} within ${READY_TIMEOUT_MS} ms:\n${output}`);
}


/** Runs redis-cli with `args` (bounded); resolves with its standard output. */
export function redisCli(args: string[], timeoutMs = CLI_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(REDIS_CLI_PATH, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(new Error(`redis-cli ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/** True when a PING on the port gets +PONG (raw RESP, no client library involved). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
    });
  });
}
