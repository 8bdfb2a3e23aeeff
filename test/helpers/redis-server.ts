/**
 * A private, throw-away redis-server for tests: free loopback port, no persistence.
 * The handle can stop and start the server again on the SAME port, so chaos tests can
 * take Redis away mid-stream and bring it back to the clients already connected.
 *
 *   const redis = await startRedisServer();
 *   t.teardown(() => redis.stop());
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freeTcpPort } from './ports.js';

export const REDIS_SERVER_PATH = process.env.ONAIR_REDIS_SERVER ?? '/usr/bin/redis-server';

const READY_TIMEOUT_MS = 5000;
const STOP_GRACE_MS = 2000;

export interface RedisServerHandle {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** True while the process is running. */
  readonly running: boolean;
  /** Stops the server and waits for its exit; SIGKILL simulates a crash. Idempotent. */
  stop(options?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /** Starts it again on the same port (empty dataset) and waits until it answers PING. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
}

export async function startRedisServer(): Promise<RedisServerHandle> {
  // Another process may take the free port before redis-server binds it: try a few ports.
  for (let attempt = 1; ; attempt++) {
    const handle = createHandle(await freeTcpPort());
    try {
      await handle.start();
      return handle;
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

function createHandle(port: number): RedisServerHandle {
  let child: ChildProcess | undefined;
  // Never leave a redis-server behind, even if the test process dies without teardown.
  const killOnExit = (): void => {
    child?.kill('SIGKILL');
  };

  const handle: RedisServerHandle = {
    url: `redis://127.0.0.1:${port}`,
    port,
    get running() {
      return child !== undefined;
    },
    async start() {
      if (child) return;
      child = await spawnRedisServer(port);
      process.once('exit', killOnExit);
    },
    async stop(options = {}) {
      const running = child;
      if (!running) return;
      child = undefined;
      process.off('exit', killOnExit);
      await killAndWait(running, options.signal ?? 'SIGTERM');
    },
    async restart() {
      await handle.stop();
      await handle.start();
    },
  };
  return handle;
}

async function spawnRedisServer(port: number): Promise<ChildProcess> {
  const child = spawn(
    REDIS_SERVER_PATH,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
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

async function killAndWait(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
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

/** A port the OS considers free right now: bind port 0 on loopback, read it, close. */
