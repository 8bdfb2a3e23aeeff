/**
 * The deploy recipes' stack for real, without containers
 * (docs/architecture.md, "Deploy recipes"): a redis-server primary, a redis-sentinel started from the shipped
 * deploy/redis/sentinel.conf, and `onair ingest` + `onair origin` (the built CLI) with the
 * onair config of deploy/k8s (its ConfigMap), only the addresses moved to free loopback
 * ports. Every httpGet probe of the k8s workloads and every health check of
 * deploy/compose.yaml answers 200 on the real processes, and the origin serves the channel
 * that the ingest, fed a tone over SRT, publishes through the primary the Sentinel names.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { ScratchProcesses } from '../helpers/child-processes.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { freeTcpPort, freeUdpPort } from '../helpers/ports.js';
import { redisCli, spawnRedisProcess, startRedisServer } from '../helpers/redis-server.js';
import { waitUntil } from '../helpers/wait-until.js';
import { TestSignalSender } from '../../src/ffmpeg/test-signal-sender.js';
import { parseRedisUrl } from '../../src/store/redis-url.js';
import { DEPLOY, readYaml, readYamlDocuments } from '../deploy/manifests.js';
import { readFileSync } from 'node:fs';

/** Manifests, read as kubectl reads them. */
type K8sObject = Record<string, any>;

const manifests = readYamlDocuments(readFileSync(join(DEPLOY, 'k8s', 'onair.yaml'), 'utf8')) as K8sObject[];
const configMaps = readYamlDocuments(readFileSync(join(DEPLOY, 'k8s', 'configmaps.yaml'), 'utf8')) as K8sObject[];
const configText = configMaps.find((object) => object.metadata.name === 'onair-config')!.data['channels.yaml'] as string;
const sentinelConf = configMaps.find((object) => object.metadata.name === 'redis-sentinel')!.data['sentinel.conf'] as string;
const compose = readYaml(join(DEPLOY, 'compose.yaml')) as { services: Record<string, { command?: string[]; healthcheck?: { test: string[] } }> };

t.test('probes and health checks answer on the real processes, and the channel goes through Sentinel', async (t) => {
  const primary = await startRedisServer();
  t.teardown(() => primary.stop());

  // The shipped Sentinel config, the primary's name and the ports moved to loopback.
  const scratch = new ScratchProcesses('onair-deploy-sentinel-');
  t.teardown(() => scratch.stop());
  const sentinelPort = await freeTcpPort();
  const conf = sentinelConf
    .replace(/^port \d+$/m, `port ${sentinelPort}\nbind 127.0.0.1\ndir ${scratch.dir}`)
    .replace(' redis-primary 6379 ', ` 127.0.0.1 ${primary.port} `);
  t.not(conf, sentinelConf);
  const confPath = join(scratch.dir, 'sentinel.conf');
  await writeFile(confPath, conf);
  scratch.children.push(await spawnRedisProcess(sentinelPort, [confPath, '--sentinel']));

  const raw = parse(configText) as K8sObject;
  const target = parseRedisUrl(raw.store);
  if (target.mode !== 'sentinel') throw new Error('the k8s store is not Sentinel');
  await waitUntil(
    t,
    `Sentinel knows the master group ${target.masterName}`,
    async () => (await redisCli(['-p', String(sentinelPort), 'SENTINEL', 'get-master-addr-by-name', target.masterName], 2000).catch(() => '')).includes(String(primary.port)),
    10_000,
  );

  // One process per role, each with its own free ports: config port → real port.
  const ports: Record<string, Record<number, number>> = {};
  const processes = [];
  let ingestSrtPort = 0;
  for (const role of ['ingest', 'origin'] as const) {
    const config = structuredClone(raw);
    const originPort = await freeTcpPort();
    const adminPort = await freeTcpPort();
    ports[role] = { [raw.origin.port]: originPort, [raw.admin.port]: adminPort };
    config.store = `redis-sentinel://127.0.0.1:${sentinelPort}/${target.masterName}`;
    config.origin = { ...config.origin, host: '127.0.0.1', port: originPort };
    config.admin = { host: '127.0.0.1', port: adminPort };
    const srtPort = await freeUdpPort();
    if (role === 'ingest') ingestSrtPort = srtPort;
    for (const channel of config.channels) {
      for (const input of channel.inputs) input.url = input.url.replace(/^srt:\/\/[^/:]+:\d+/, `srt://127.0.0.1:${srtPort}`);
    }
    processes.push(
      await startOnairProcess(t, {
        role,
        config,
        readyPattern: role === 'ingest' ? /"msg":"ingest started"/ : /origin listening/,
        readyTimeoutMs: 30_000,
      }),
    );
  }

  // Every httpGet probe of the onair workloads in deploy/k8s.
  let probes = 0;
  for (const workload of manifests.filter((object) => object.spec?.template)) {
    const role = (workload.metadata.name as string).replace(/^onair-/, '');
    for (const container of workload.spec.template.spec.containers as K8sObject[]) {
      const named = Object.fromEntries((container.ports as K8sObject[]).map((port) => [port.name, port.containerPort]));
      for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        const get = container[kind]?.httpGet;
        if (!get) continue;
        const port = ports[role]![typeof get.port === 'string' ? named[get.port] : get.port];
        const url = `http://127.0.0.1:${port}${get.path}`;
        await waitUntil(t, `${role} ${kind} ${get.path} answers 200`, () => fetch(url).then((response) => response.status === 200, () => false), 20_000);
        probes += 1;
      }
    }
  }
  t.ok(probes >= 6, `${probes} probes answered 200`);

  // deploy/compose.yaml's health checks: the same endpoints, by URL.
  let checks = 0;
  for (const service of Object.values(compose.services)) {
    const role = service.command?.[0];
    const url = /http:\/\/127\.0\.0\.1:(\d+)(\/\w+)/.exec(service.healthcheck?.test.join(' ') ?? '');
    if (!url || (role !== 'ingest' && role !== 'origin')) continue;
    const response = await fetch(`http://127.0.0.1:${ports[role]![Number(url[1])]}${url[2]}`);
    t.equal(response.status, 200, `compose ${role}: ${url[2]}`);
    checks += 1;
  }
  t.equal(checks, 4, 'two ingest and two origin health checks');

  // A studio feed (FFmpeg's tone, SRT caller with the config's passphrase) into the ingest,
  // which publishes through the primary Sentinel names; the origin serves it.
  const input = raw.channels[0].inputs[0];
  const studio = new TestSignalSender({ outputUrl: `srt://127.0.0.1:${ingestSrtPort}?mode=caller&passphrase=${input.srt.passphrase}` });
  studio.start();
  t.teardown(() => studio.close('SIGKILL'));
  const channel = raw.channels[0].id as string;
  const originPort = ports.origin![raw.origin.port];
  await waitUntil(
    t,
    `the origin serves /${channel}/${channel}.m3u8`,
    () => fetch(`http://127.0.0.1:${originPort}/${channel}/${channel}.m3u8`).then((response) => response.status === 200, () => false),
    30_000,
  );
  const rendition = raw.channels[0].renditions[0].id as string;
  const media = await fetch(`http://127.0.0.1:${originPort}/${channel}/${channel}_${rendition}.m3u8`);
  t.equal(media.status, 200);
  t.match(await media.text(), /#EXTINF:/, 'segments listed');
  for (const onair of processes) await onair.stop();
});
