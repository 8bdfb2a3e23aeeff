/**
 * A private three-node Redis Cluster for tests (masters only, no replicas), on free
 * loopback ports whose cluster bus ports (port + 10000) are free too. Its files live in a
 * temp dir that stop() removes. restart() brings the same cluster back (the node config
 * files keep its topology; the data, never persisted, is gone).
 *
 *   const cluster = await startRedisCluster();
 *   t.teardown(() => cluster.stop());
 *   new RedisStore({ url: cluster.url });   // redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { killAndWait, ScratchProcesses } from './child-processes.js';
import { redisCli, spawnRedisProcess } from './redis-server.js';

const NODE_COUNT = 3;
/** Redis opens the cluster bus on the client port plus this. */
const BUS_PORT_OFFSET = 10_000;
const LOWEST_PORT = 20_000;
const HIGHEST_PORT = 65_535 - BUS_PORT_OFFSET;
const CLUSTER_OK_TIMEOUT_MS = 15_000;

export interface RedisClusterHandle {
  /** `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3` */
  readonly url: string;
  /** The client ports of the nodes. */
  readonly ports: readonly number[];
  /** Kills every node and starts them again on the same ports; resolves once the cluster is ok. */
  restart(options?: { signal?: 'SIGTERM' | 'SIGKILL'; downMs?: number }): Promise<void>;
  /** Stops every node (SIGTERM, SIGKILL after a grace time) and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export async function startRedisCluster(): Promise<RedisClusterHandle> {
  // Another process may take a port between the check and redis-server binding it: retry.
  for (let attempt = 1; ; attempt++) {
    try {
      return await tryStartCluster();
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

async function tryStartCluster(): Promise<RedisClusterHandle> {
  const scratch = new ScratchProcesses('onair-redis-cluster-');
  const { children, dir } = scratch;
  const stop = (): Promise<void> => scratch.stop();

  const spawnNodes = async (ports: number[]): Promise<void> => {
    for (const port of ports) {
      children.push(
        await spawnRedisProcess(port, [
          '--port', String(port),
          '--bind', '127.0.0.1',
          '--cluster-enabled', 'yes',
          '--cluster-config-file', join(dir, `nodes-${port}.conf`),
          '--dir', dir,
          '--save', '',
          '--appendonly', 'no',
        ]),
      );
    }
  };

  try {
    const ports = await freeClusterPorts(NODE_COUNT);
    await spawnNodes(ports);
    const addresses = ports.map((port) => `127.0.0.1:${port}`);
    await redisCli(['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes']);
    await waitForClusterOk(ports);
    const restart = async (options: { signal?: 'SIGTERM' | 'SIGKILL'; downMs?: number } = {}): Promise<void> => {
      if (scratch.isStopped) throw new Error('the cluster is stopped');
      const running = children.splice(0);
      await Promise.all(running.map((child) => killAndWait(child, options.signal ?? 'SIGTERM')));
      await sleep(options.downMs ?? 0);
      await spawnNodes(ports);
      await waitForClusterOk(ports);
    };
    return { url: `redis-cluster://${addresses.join(',')}`, ports, restart, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Waits until every node reports cluster_state:ok (all slots covered, as each node sees it). */
async function waitForClusterOk(ports: number[]): Promise<void> {
  const deadline = Date.now() + CLUSTER_OK_TIMEOUT_MS;
  let last = '';
  for (;;) {
    const states = await Promise.all(
      ports.map((port) => redisCli(['-p', String(port), 'CLUSTER', 'INFO'], 2000).catch((error: Error) => error.message)),
    );
    if (states.every((info) => /^cluster_state:ok\r?$/m.test(info))) return;
    last = states.join('\n');
    if (Date.now() > deadline) throw new Error(`the cluster did not reach cluster_state:ok within ${CLUSTER_OK_TIMEOUT_MS} ms:\n${last}`);
    await sleep(100);
  }
}

/** `count` distinct random ports whose bus ports are free as well, checked by binding them. */
async function freeClusterPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let tries = 0; ports.length < count; tries++) {
    if (tries > 200) throw new Error('found no free port pairs for a Redis Cluster');
    const port = LOWEST_PORT + Math.floor(Math.random() * (HIGHEST_PORT - LOWEST_PORT));
    if (ports.some((taken) => Math.abs(taken - port) < 2)) continue;
    if ((await canBind(port)) && (await canBind(port + BUS_PORT_OFFSET))) ports.push(port);
  }
  return ports;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
