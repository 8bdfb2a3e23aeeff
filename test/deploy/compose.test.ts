/**
 * deploy/compose.yaml (docs/architecture.md, "Deploy recipes"): valid against the Compose
 * Specification's JSON schema (and a broken copy is not), every file it mounts present, the
 * onair config it mounts passing `onair check`, and its ports, environment, health checks,
 * Prometheus targets, Varnish backends and Sentinel names agreeing with that config. The
 * Prometheus config goes through `promtool check config`, the Varnish wrapper through
 * varnishd's compiler with the shipped VCL as the container sees it.
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parseConfigText, ENVIRONMENT_OVERRIDES } from '../../src/config/load-config.js';
import type { OnairConfig } from '../../src/config/config-schema.js';
import { parseRedisUrl } from '../../src/store/redis-url.js';
import { composeValidator, DEPLOY, readYaml, ROOT } from './manifests.js';

const run = promisify(execFile);
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const COMPOSE_PATH = join(DEPLOY, 'compose.yaml');

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  healthcheck?: { test: string[] };
  networks?: string[] | Record<string, { ipv4_address?: string } | null>;
}
interface Compose {
  services: Record<string, Service>;
  networks: Record<string, { ipam?: { config: { subnet: string }[] } }>;
}

const compose = readYaml(COMPOSE_PATH) as Compose;
const services = Object.entries(compose.services);
const onairServices = services.filter(([, service]) => service.image?.startsWith('onair:'));

/** `./host/path:/container/path[:ro]` → both sides (host path resolved against deploy/); named volumes left out. */
function bindMounts(service: Service): { source: string; target: string }[] {
  return (service.volumes ?? [])
    .map((volume) => volume.split(':'))
    .filter(([source]) => source!.startsWith('.') || source!.startsWith('/'))
    .map(([source, target]) => ({ source: resolve(DEPLOY, source!), target: target! }));
}

/** The onair config a service runs: the host file mounted where its --config points. */
function configOf(service: Service): string {
  const command = service.command ?? [];
  const target = command[command.indexOf('--config') + 1];
  const mount = bindMounts(service).find((candidate) => candidate.target === target);
  if (!mount) throw new Error(`no mount at ${target}`);
  return mount.source;
}

async function loadConfig(path: string): Promise<OnairConfig> {
  return parseConfigText(await readFile(path, 'utf8'), {}, path);
}

t.test('compose.yaml is valid against the Compose Specification schema, and a broken copy is not', async (t) => {
  const validate = composeValidator();
  t.same(validate(compose), [], 'deploy/compose.yaml');

  // Broken copies: a misspelt key, a wrong type, an unknown depends_on condition, a port list that is no list.
  const text = await readFile(COMPOSE_PATH, 'utf8');
  const { parse } = await import('yaml');
  const mutations: [string, (text: string) => string][] = [
    ['a misspelt service key', (source) => source.replace('    healthcheck: *origin-health', '    healthchek: *origin-health')],
    ['an unknown depends_on condition', (source) => source.replace('condition: service_healthy }', 'condition: service_ready }')],
    ['restart as a list', (source) => source.replace('  restart: unless-stopped\n  volumes:', '  restart: [always]\n  volumes:')],
    ['ports as a string', (source) => source.replace('    ports:\n      - "8080:80"', '    ports: "8080:80"')],
  ];
  for (const [what, mutate] of mutations) {
    const broken = mutate(text);
    t.not(broken, text, `${what}: the mutation applies`);
    t.ok(validate(parse(broken, { merge: true })).length > 0, `${what}: refused`);
  }
});

t.test('every file compose.yaml mounts or builds from exists', async (t) => {
  let mounts = 0;
  for (const [name, service] of services) {
    for (const { source, target } of bindMounts(service)) {
      mounts += 1;
      t.ok(existsSync(source), `${name}: ${source} exists`);
      // A target ending in a file name gets a file; a directory would make Docker mount a directory there.
      if (/\.\w+$/.test(target)) t.ok(existsSync(source) && statSync(source).isFile(), `${name}: ${source} is a file`);
    }
    if (service.build) {
      const context = resolve(DEPLOY, service.build.context);
      t.ok(existsSync(join(context, service.build.dockerfile ?? 'Dockerfile')), `${name}: its Dockerfile exists`);
      t.equal(context, ROOT, `${name}: builds the package at the repository root`);
    }
  }
  t.ok(mounts >= 12, `${mounts} mounts checked`);
});

t.test('the onair config compose.yaml mounts passes `onair check`', async (t) => {
  const paths = new Set(onairServices.map(([, service]) => configOf(service)));
  t.equal(paths.size, 1, 'every onair service runs the same config (a hot-standby pair and its origins must)');
  for (const path of paths) {
    // Without the ONAIR_* overrides of this environment: the file alone must be valid.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ONAIR_')));
    const { stdout } = await run(process.execPath, [CLI, 'check', '--config', path], { env });
    t.match(stdout, /^# onair: config is valid/, path);
    t.match(stdout, /# hot standby:/, 'a shared store: the pair can stand by for each other');
  }
});

t.test('roles, ports, environment and health checks agree with the onair config', async (t) => {
  const roles = onairServices.map(([name, service]) => [name, service.command?.[0]]);
  t.same(roles.filter(([, role]) => role === 'ingest').length, 2, 'two `onair ingest` (the hot-standby pair)');
  t.same(roles.filter(([, role]) => role === 'origin').length, 2, 'two `onair origin`');
  for (const [name, service] of onairServices) {
    const config = await loadConfig(configOf(service));
    // Environment names: only the overrides onair reads.
    for (const key of Object.keys(service.environment ?? {})) t.ok(key in ENVIRONMENT_OVERRIDES, `${name}: ${key} is an override onair reads`);
    const role = service.command![0];
    // Published ports: the ingest's SRT listener, nothing of the origin's or admin's.
    const srtPorts = config.channels.flatMap((channel) => channel.inputs.map((input) => /^srt:\/\/[^/:]+:(\d+)/.exec(input.url)?.[1])).filter(Boolean);
    const published = (service.ports ?? []).map((port) => port.split(':').at(-1));
    if (role === 'ingest') t.same(published, srtPorts.map((port) => `${port}/udp`), `${name}: publishes its SRT listener`);
    else t.same(published, [], `${name}: publishes nothing (Varnish is the entry)`);
    // Health checks: onair's own endpoints on the config's ports.
    const check = service.healthcheck!.test.join(' ');
    if (role === 'origin') t.match(check, `http://127.0.0.1:${config.origin.port}/healthz`, `${name}: /healthz on origin.port`);
    else t.match(check, `http://127.0.0.1:${config.admin.port}/metrics`, `${name}: /metrics on admin.port`);
    t.equal(config.admin.host, '0.0.0.0', 'the admin listener reachable by Prometheus on the compose network');
  }
});

t.test('Sentinel, Redis and the store URL name the same hosts and master group', async (t) => {
  const [, origin] = onairServices.find(([, service]) => service.command?.[0] === 'origin')!;
  const config = await loadConfig(configOf(origin));
  const target = parseRedisUrl(config.store);
  if (target.mode !== 'sentinel') throw new Error('the compose store is not Sentinel');
  t.equal(target.sentinels.length, 3, 'three Sentinels');
  for (const sentinel of target.sentinels) {
    const service = compose.services[sentinel.host];
    t.ok(service, `${sentinel.host} is a service`);
    const conf = await readFile(bindMounts(service!)[0]!.source, 'utf8');
    t.match(conf, new RegExp(`^port ${sentinel.port}$`, 'm'), `${sentinel.host} listens on ${sentinel.port}`);
    const monitor = /^sentinel monitor (\S+) (\S+) (\d+) (\d+)$/m.exec(conf);
    t.equal(monitor?.[1], target.masterName, 'the master group of the store URL');
    t.ok(compose.services[monitor![2]!], `the primary it monitors (${monitor![2]}) is a service`);
  }
  const replica = compose.services['redis-replica']!.command!.join(' ');
  t.match(replica, '--replicaof redis-primary 6379', 'the replica follows the primary');
  for (const name of ['redis-primary', 'redis-replica']) t.match(compose.services[name]!.command!.join(' '), '--maxmemory-policy noeviction', `${name}: noeviction (onair refuses an evicting policy)`);
});

t.test('Prometheus scrapes every onair process on admin.port, with the shipped rules (promtool)', async (t) => {
  const prometheus = compose.services.prometheus!;
  const configPath = bindMounts(prometheus).find((mount) => mount.target === '/etc/prometheus/prometheus.yml')!.source;
  const checked = await run('promtool', ['check', 'config', configPath]).catch((error: { stdout: string; stderr: string }) => error);
  t.match(checked.stdout, /SUCCESS: .* is valid prometheus config file syntax/, checked.stderr);
  t.match(checked.stdout, /SUCCESS: \d+ rules found/, 'the rule file it names loads');
  // The rule file as the container sees it: mounted beside the config.
  const rules = bindMounts(prometheus).find((mount) => mount.target === '/etc/prometheus/alerts.yml')!;
  t.equal(rules.source, join(DEPLOY, 'prometheus', 'alerts.yml'), 'the shipped alert rules');
  const scrape = readYaml(configPath) as { rule_files: string[]; scrape_configs: { static_configs: { targets: string[] }[] }[] };
  t.same(scrape.rule_files, ['alerts.yml']);
  const targets = scrape.scrape_configs.flatMap((job) => job.static_configs.flatMap((group) => group.targets)).sort();
  const expected = [];
  for (const [name, service] of onairServices) expected.push(`${name}:${(await loadConfig(configOf(service))).admin.port}`);
  t.same(targets, expected.sort(), 'each onair service once, on its admin port');
});

t.test('Grafana provisions the shipped dashboard on the Prometheus service', async (t) => {
  const mounts = bindMounts(compose.services.grafana!);
  const dashboard = mounts.find((mount) => mount.source === join(DEPLOY, 'grafana', 'onair.json'));
  t.ok(dashboard, 'the shipped dashboard is mounted');
  const provider = readYaml(mounts.find((mount) => mount.target.includes('/provisioning/dashboards/'))!.source) as {
    providers: { options: { path: string } }[];
  };
  t.equal(provider.providers[0]!.options.path, dirname(dashboard!.target), 'the provider reads the folder the dashboard is mounted in');
  const datasource = readYaml(mounts.find((mount) => mount.target.includes('/provisioning/datasources/'))!.source) as {
    datasources: { type: string; url: string }[];
  };
  t.equal(datasource.datasources[0]!.type, 'prometheus');
  t.equal(new URL(datasource.datasources[0]!.url).hostname, 'prometheus', 'the Prometheus service');
});

t.test('Varnish runs the shipped VCL in front of both origins (compiled by varnishd as the container sees it)', async (t) => {
  const varnish = compose.services.varnish!;
  const mounts = bindMounts(varnish);
  t.ok(mounts.some((mount) => mount.source === join(DEPLOY, 'varnish', 'default.vcl')), 'the shipped default.vcl is mounted');
  const wrapper = await readFile(mounts.find((mount) => mount.target === '/etc/varnish/default.vcl')!.source, 'utf8');
  const backends = [...wrapper.matchAll(/\.host = "([^"]+)";\s*\.port = "(\d+)";/g)].map((match) => `${match[1]}:${match[2]}`);
  const origins = [];
  for (const [name, service] of onairServices) {
    if (service.command?.[0] === 'origin') origins.push(`${name}:${(await loadConfig(configOf(service))).origin.port}`);
  }
  t.same(backends.sort(), origins.sort(), 'one backend per origin service, on origin.port');
  // The origins believe Varnish's X-Forwarded-For: its fixed address is a trusted proxy.
  const address = (varnish.networks as Record<string, { ipv4_address: string }>).onair!.ipv4_address;
  const [, origin] = onairServices.find(([, service]) => service.command?.[0] === 'origin')!;
  t.ok((await loadConfig(configOf(origin))).origin.trustedProxies.includes(address), `origin.trustedProxies has ${address}`);

  // /etc/varnish as the container sees it, the service names resolved to loopback for the compiler.
  const scratch = await mkdtemp(join(tmpdir(), 'onair-deploy-vcl-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  for (const { source, target } of mounts) {
    await mkdir(dirname(join(scratch, target)), { recursive: true });
    await cp(source, join(scratch, target));
  }
  const main = join(scratch, 'etc/varnish/default.vcl');
  await writeFile(main, wrapper.replace(/\.host = "[^"]+";/g, '.host = "127.0.0.1";'));
  const compiled = await run('/usr/sbin/varnishd', ['-C', '-j', 'none', '-f', main, '-n', join(scratch, 'work'), ...varnish.command!], { maxBuffer: 64 * 1024 * 1024 }).then(
    () => ({ ok: true, stderr: '' }),
    (error: { stderr: string }) => ({ ok: false, stderr: error.stderr }),
  );
  t.ok(compiled.ok, `varnishd compiles it: ${compiled.stderr.slice(-2000)}`);
});
