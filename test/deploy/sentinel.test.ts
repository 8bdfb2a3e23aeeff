/**
 * The recipes' Redis Sentinel setup fails over for real
 * (docs/architecture.md, "Deploy recipes"): a redis-server primary and its replica started with the replication flags of
 * deploy/compose.yaml, and three redis-sentinel processes started from the shipped
 * deploy/redis/sentinel.conf (only addresses moved to free loopback ports). The Sentinels
 * agree on the master group the onair configs name; when the primary stops, its replica is
 * promoted, by the quorum and timeouts of the shipped file.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { parseConfigText } from '../../src/config/load-config.js';
import { parseRedisUrl } from '../../src/store/redis-url.js';
import { ScratchProcesses } from '../helpers/child-processes.js';
import { freeTcpPort } from '../helpers/ports.js';
import { redisCli, spawnRedisProcess } from '../helpers/redis-server.js';
import { waitUntil } from '../helpers/wait-until.js';
import { DEPLOY, readYaml } from './manifests.js';

const SENTINEL_CONF = readFileSync(join(DEPLOY, 'redis', 'sentinel.conf'), 'utf8');
const compose = readYaml(join(DEPLOY, 'compose.yaml')) as { services: Record<string, { command: string[] }> };

/** The redis-server flags a compose service runs with, minus the announced name (loopback here). */
function serverFlags(service: string, replaceHost: (host: string) => string): string[] {
  const flags = compose.services[service]!.command.slice(1);
  const announce = flags.indexOf('--replica-announce-ip');
  if (announce >= 0) flags.splice(announce, 2);
  const replicaOf = flags.indexOf('--replicaof');
  if (replicaOf >= 0) flags.splice(replicaOf + 1, 2, ...replaceHost(`${flags[replicaOf + 1]} ${flags[replicaOf + 2]}`).split(' '));
  return flags.filter((flag) => flag !== '--appendonly' && flag !== 'yes');
}

const masterAddress = async (sentinelPort: number, master: string): Promise<string> =>
  (await redisCli(['-p', String(sentinelPort), 'SENTINEL', 'get-master-addr-by-name', master], 2000).catch(() => '')).trim().split('\n').join(':');

t.test('three Sentinels from the shipped config watch the primary and promote its replica when it stops', async (t) => {
  const scratch = new ScratchProcesses('onair-deploy-failover-');
  t.teardown(() => scratch.stop());
  const primaryPort = await freeTcpPort();
  const replicaPort = await freeTcpPort();
  const storage = ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--dir', scratch.dir];
  const toLoopback = (address: string): string => address.replace(/^redis-primary 6379$/, `127.0.0.1 ${primaryPort}`);
  const primary = await spawnRedisProcess(primaryPort, ['--port', String(primaryPort), ...storage, ...serverFlags('redis-primary', toLoopback)]);
  scratch.children.push(primary);
  const replica = await spawnRedisProcess(replicaPort, ['--port', String(replicaPort), ...storage, ...serverFlags('redis-replica', toLoopback)]);
  scratch.children.push(replica);
  await waitUntil(t, 'the replica is in sync', async () => (await redisCli(['-p', String(replicaPort), 'INFO', 'replication'])).includes('master_link_status:up'), 10_000);

  // The master group every onair config of the recipes names.
  const masters = new Set(
    ['onair/channels.yaml', 'k8s/channels.yaml'].map((path) => {
      const target = parseRedisUrl(parseConfigText(readFileSync(join(DEPLOY, path), 'utf8'), {}, path).store);
      return target.mode === 'sentinel' ? target.masterName : '';
    }),
  );
  t.same([...masters], ['onair'], 'both recipes name one master group');
  const [master] = [...masters] as [string];

  const sentinelPorts: number[] = [];
  for (let index = 0; index < 3; index++) {
    const port = await freeTcpPort();
    const conf = SENTINEL_CONF.replace(/^port \d+$/m, `port ${port}\nbind 127.0.0.1\ndir ${scratch.dir}`).replace(' redis-primary 6379 ', ` 127.0.0.1 ${primaryPort} `);
    const path = join(scratch.dir, `sentinel-${index}.conf`);
    await writeFile(path, conf);
    scratch.children.push(await spawnRedisProcess(port, [path, '--sentinel']));
    sentinelPorts.push(port);
  }
  for (const port of sentinelPorts) {
    await waitUntil(t, `Sentinel ${port} names the primary`, async () => (await masterAddress(port, master)) === `127.0.0.1:${primaryPort}`, 10_000);
  }
  // Each Sentinel must know the other two before a quorum of 2 can act.
  await waitUntil(
    t,
    'the Sentinels know each other',
    async () => (await redisCli(['-p', String(sentinelPorts[0]), 'SENTINEL', 'ckquorum', master], 2000).catch(() => '')).startsWith('OK 3 usable'),
    15_000,
  );

  primary.kill('SIGKILL');
  // down-after-milliseconds (5 s in the shipped file), then a vote and the promotion.
  for (const port of sentinelPorts) {
    await waitUntil(t, `Sentinel ${port} names the promoted replica`, async () => (await masterAddress(port, master)) === `127.0.0.1:${replicaPort}`, 30_000);
  }
  t.match(await redisCli(['-p', String(replicaPort), 'INFO', 'replication']), /role:master/, 'the replica is the primary now');
});
