/**
 * A private Redis Sentinel setup for tests: one redis-server master (see redis-server.ts)
 * watched by one Sentinel, both on free loopback ports. The Sentinel's config file (which
 * Sentinel rewrites) lives in a temp dir that stop() removes.
 *
 *   const sentinel = await startRedisSentinel();
 *   t.teardown(() => sentinel.stop());
 *   new RedisStore({ url: sentinel.url });   // redis-sentinel://127.0.0.1:<sentinel port>/mymaster
 */
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freeTcpPort } from './ports.js';
import { ScratchProcesses } from './child-processes.js';
import { redisCli, spawnRedisProcess, startRedisServer, type RedisServerHandle } from './redis-server.js';

const MASTER_KNOWN_TIMEOUT_MS = 5000;

export interface RedisSentinelHandle {
  /** `redis-sentinel://127.0.0.1:<sentinelPort>/<masterName>` */
  readonly url: string;
  readonly masterName: string;
  readonly sentinelPort: number;
  /** The monitored master: stop/start it to simulate an outage. */
  readonly master: RedisServerHandle;
  /** Stops the Sentinel and the master and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export async function startRedisSentinel(options: { masterName?: string } = {}): Promise<RedisSentinelHandle> {
  const masterName = options.masterName ?? 'mymaster';
  const master = await startRedisServer();
  const scratch = new ScratchProcesses('onair-redis-sentinel-');
  const { dir } = scratch;
  let sentinel: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    await scratch.stop();
    await master.stop();
  };

  try {
    // The free port may be taken before Sentinel binds it: try a few.
    let sentinelPort = 0;
    for (let attempt = 1; !sentinel; attempt++) {
      const port = await freeTcpPort();
      sentinelPort = port;
      const configFile = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        configFile,
        [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 1`, ''].join('\n'),
      );
      try {
        sentinel = await spawnRedisProcess(port, [configFile, '--sentinel']);
        scratch.children.push(sentinel);
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
    await waitForMaster(sentinelPort, masterName, master.port);
    return { url: `redis-sentinel://127.0.0.1:${sentinelPort}/${masterName}`, masterName, sentinelPort, master, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Waits until the Sentinel answers the master's address for `masterName`. */
async function waitForMaster(sentinelPort: number, masterName: string, masterPort: number): Promise<void> {
  const deadline = Date.now() + MASTER_KNOWN_TIMEOUT_MS;
  for (;;) {
    const reply = await redisCli(['-p', String(sentinelPort), 'SENTINEL', 'get-master-addr-by-name', masterName], 2000).catch(() => '');
    if (reply.includes(String(masterPort))) return;
    if (Date.now() > deadline) throw new Error(`Sentinel on ${sentinelPort} does not know ${masterName} after ${MASTER_KNOWN_TIMEOUT_MS} ms`);
    await sleep(50);
  }
}
