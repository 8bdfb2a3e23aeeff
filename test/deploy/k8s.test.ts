/**
 * deploy/k8s (docs/architecture.md, "Deploy recipes"): every object valid against the
 * Kubernetes 1.33 API schemas (and broken copies not), the ConfigMaps up to date with the
 * files they are made from, the onair config passing `onair check`, and the workloads'
 * ports, probes, resources and disruption budgets agreeing with that config.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { ENVIRONMENT_OVERRIDES, parseConfigText } from '../../src/config/load-config.js';
import { parseRedisUrl } from '../../src/store/redis-url.js';
import { DEPLOY, kubernetesProblems, readYaml, readYamlDocuments, ROOT } from './manifests.js';

const run = promisify(execFile);
const K8S = join(DEPLOY, 'k8s');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');

/** Kubernetes objects, read as the API server reads them. */
type K8sObject = Record<string, any>;

const kustomization = readYaml(join(K8S, 'kustomization.yaml')) as { resources: string[] };
const manifestFiles = kustomization.resources;
const objects: (K8sObject & { file: string })[] = manifestFiles.flatMap((file) =>
  readYamlDocuments(readFileSync(join(K8S, file), 'utf8')).map((object) => ({ ...object, file })),
);
const byName = (kind: string, name: string): K8sObject => {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
};
const configMapData = (name: string): Record<string, string> => byName('ConfigMap', name).data;
const onairConfig = parseConfigText(configMapData('onair-config')['channels.yaml']!, {}, 'onair-config');
const podSpec = (workload: K8sObject): K8sObject => workload.spec.template.spec;
const container = (workload: K8sObject, name: string): K8sObject => podSpec(workload).containers.find((candidate: K8sObject) => candidate.name === name);

t.test('the kustomization lists every manifest in deploy/k8s', async (t) => {
  const manifests = readdirSync(K8S).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml' && name !== 'channels.yaml');
  t.same([...manifestFiles].sort(), manifests.sort());
});

t.test('every object is valid against the Kubernetes 1.33 API schemas', async (t) => {
  const kinds = new Set<string>();
  for (const object of objects) {
    const { file, ...manifest } = object;
    kinds.add(`${manifest.apiVersion} ${manifest.kind}`);
    t.same(await kubernetesProblems(manifest), [], `${file}: ${manifest.kind} ${manifest.metadata?.name}`);
    if (manifest.kind !== 'Namespace') t.equal(manifest.metadata.namespace, 'onair', `${manifest.kind} ${manifest.metadata.name} in the onair namespace`);
  }
  for (const kind of ['apps/v1 StatefulSet', 'apps/v1 Deployment', 'v1 Service', 'v1 ConfigMap', 'policy/v1 PodDisruptionBudget']) t.ok(kinds.has(kind), kind);
});

t.test('broken copies are refused by the same validation', async (t) => {
  const origin = () => structuredClone(byName('Deployment', 'onair-origin')) as K8sObject;
  const mutations: [string, (object: K8sObject) => void][] = [
    ['replicas as a word', (object) => (object.spec.replicas = 'two')],
    ['a container without a name', (object) => delete podSpec(object).containers[0].name],
    ['a probe port that is neither a number nor a name', (object) => (podSpec(object).containers[0].readinessProbe.httpGet.port = { name: 'http' })],
    ['a resource limit that is no quantity', (object) => (podSpec(object).containers[0].resources.limits = { memory: ['512Mi'] })],
    ['no selector', (object) => delete object.spec.selector],
    ['a kind apps/v1 does not have', (object) => (object.kind = 'DeploymentSet')],
  ];
  for (const [what, mutate] of mutations) {
    const broken = origin();
    delete broken.file;
    mutate(broken);
    const problems = await kubernetesProblems(broken);
    t.ok(problems.length > 0, `${what}: ${problems[0] ?? 'accepted'}`);
  }
  // A broken file, parsed as kubectl parses it.
  const text = readFileSync(join(K8S, 'onair.yaml'), 'utf8').replace('maxUnavailable: 1\n', 'maxUnavailable: [1]\n');
  const budget = readYamlDocuments(text).find((object) => object.kind === 'PodDisruptionBudget')!;
  t.ok((await kubernetesProblems(budget)).length > 0, 'a PodDisruptionBudget with a list for maxUnavailable');
});

t.test('the ConfigMaps hold the files they are made from, byte for byte (generate.mjs --check)', async (t) => {
  const sources: Record<string, Record<string, string>> = {
    'onair-config': { 'channels.yaml': 'k8s/channels.yaml' },
    'redis-sentinel': { 'sentinel.conf': 'redis/sentinel.conf' },
    'varnish-vcl': { 'k8s.vcl': 'varnish/k8s.vcl', 'default.vcl': 'varnish/default.vcl' },
    'prometheus-config': { 'prometheus-k8s.yml': 'prometheus/prometheus-k8s.yml', 'alerts.yml': 'prometheus/alerts.yml' },
    'grafana-provisioning': {
      'datasource.yaml': 'grafana/provisioning/datasources/prometheus.yaml',
      'dashboards.yaml': 'grafana/provisioning/dashboards/onair.yaml',
    },
    'grafana-dashboards': { 'onair.json': 'grafana/onair.json' },
  };
  for (const [name, files] of Object.entries(sources)) {
    const data = configMapData(name);
    t.same(Object.keys(data).sort(), Object.keys(files).sort(), `${name}: its keys`);
    for (const [key, path] of Object.entries(files)) t.equal(data[key], readFileSync(join(DEPLOY, path), 'utf8'), `${name}/${key} = deploy/${path}`);
  }
  const checked = await run(process.execPath, [join(K8S, 'generate.mjs'), '--check']).then(
    () => 0,
    (error: { code: number }) => error.code,
  );
  t.equal(checked, 0, 'generate.mjs --check agrees');
});

t.test('the onair config in the onair-config ConfigMap passes `onair check`', async (t) => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ONAIR_')));
  const { stdout } = await run(process.execPath, [CLI, 'check', '--config', join(K8S, 'channels.yaml')], { env });
  t.match(stdout, /^# onair: config is valid/);
  const target = parseRedisUrl(onairConfig.store);
  t.equal(target.mode, 'sentinel');
  if (target.mode !== 'sentinel') return;
  const service = byName('Service', target.sentinels[0]!.host);
  t.equal(service.spec.ports[0].port, target.sentinels[0]!.port, 'the store URL names the Sentinels Service and its port');
  t.match(configMapData('redis-sentinel')['sentinel.conf'], new RegExp(`^sentinel monitor ${target.masterName} `, 'm'), 'Sentinel watches the master group of the store URL');
});

t.test('onair workloads: roles, ports, real health endpoints as probes, resources, config mounted where --config points', async (t) => {
  const ingest = byName('StatefulSet', 'onair-ingest');
  const origin = byName('Deployment', 'onair-origin');
  for (const [workload, role] of [
    [ingest, 'ingest'],
    [origin, 'origin'],
  ] as const) {
    t.equal(workload.spec.replicas, 2, `${role}: two replicas`);
    const onair = container(workload, 'onair');
    t.same(onair.args.slice(0, 2), [role, '--config']);
    const configPath = onair.args[2] as string;
    const mount = onair.volumeMounts.find((candidate: K8sObject) => configPath.startsWith(`${candidate.mountPath}/`));
    const volume = podSpec(workload).volumes.find((candidate: K8sObject) => candidate.name === mount.name);
    t.equal(volume.configMap.name, 'onair-config', `${role}: --config ${configPath} is the onair-config ConfigMap`);
    t.ok(configPath.endsWith('/channels.yaml'), 'under its key');

    const ports = Object.fromEntries(onair.ports.map((port: K8sObject) => [port.name, port]));
    t.equal(ports.admin.containerPort, onairConfig.admin.port, `${role}: the admin port is admin.port`);
    for (const key of ['requests', 'limits']) t.ok(onair.resources[key]?.memory, `${role}: memory ${key}`);
    t.ok(onair.resources.requests.cpu, `${role}: a CPU request`);
    const probe = (name: string): string => {
      const get = onair[name].httpGet;
      const port = typeof get.port === 'string' ? ports[get.port].containerPort : get.port;
      return `${get.path} ${port}`;
    };
    // Alive: the admin listener answers (never the store: a Redis outage must not restart onair).
    t.equal(probe('livenessProbe'), `/metrics ${onairConfig.admin.port}`, `${role}: liveness on /metrics`);
    t.equal(probe('startupProbe'), `/metrics ${onairConfig.admin.port}`, `${role}: startup on /metrics`);
    if (role === 'origin') {
      t.equal(ports.http.containerPort, onairConfig.origin.port, 'origin: the http port is origin.port');
      t.equal(probe('readinessProbe'), `/healthz ${onairConfig.origin.port}`, 'origin: ready while /healthz says the store answers');
    } else {
      const srt = /^srt:\/\/[^/:]+:(\d+)/.exec(onairConfig.channels[0]!.inputs[0]!.url)![1];
      t.same([ports.srt.containerPort, ports.srt.protocol], [Number(srt), 'UDP'], 'ingest: the SRT listener port, UDP');
      t.equal(probe('readinessProbe'), `/metrics ${onairConfig.admin.port}`, 'ingest: ready on /metrics');
    }
    for (const variable of onair.env ?? []) t.ok(variable.name in ENVIRONMENT_OVERRIDES, `${role}: ${variable.name} is an override onair reads`);
  }
  // One SRT Service per packager pod: the encoder reaches both.
  for (const ordinal of [0, 1]) {
    const service = byName('Service', `onair-ingest-${ordinal}-srt`);
    t.equal(service.spec.selector['statefulset.kubernetes.io/pod-name'], `onair-ingest-${ordinal}`);
    t.same(service.spec.ports.map((port: K8sObject) => [port.protocol, port.targetPort]), [['UDP', 'srt']]);
  }
  // Varnish's backend is the origins' Service on origin.port.
  const vcl = configMapData('varnish-vcl')['k8s.vcl']!;
  const backend = /\.host = "([^"]+)";\s*\.port = "(\d+)";/.exec(vcl)!;
  const service = byName('Service', backend[1]!);
  t.same([service.spec.selector, Number(backend[2])], [origin.spec.selector.matchLabels, service.spec.ports[0].port]);
  t.equal(service.spec.ports[0].targetPort, 'http');
});

t.test('disruption budgets keep one packager and one origin up', async (t) => {
  for (const [name, workload] of [
    ['onair-ingest', byName('StatefulSet', 'onair-ingest')],
    ['onair-origin', byName('Deployment', 'onair-origin')],
  ] as const) {
    const budget = byName('PodDisruptionBudget', name);
    t.same(budget.spec.selector.matchLabels, workload.spec.selector.matchLabels, `${name}: the budget selects its pods`);
    const available = budget.spec.minAvailable ?? workload.spec.replicas - budget.spec.maxUnavailable;
    t.ok(available >= 1 && available < workload.spec.replicas, `${name}: ${available} of ${workload.spec.replicas} kept during a drain`);
  }
});

t.test('Prometheus and Grafana get the shipped rules and dashboard', async (t) => {
  const prometheus = byName('Deployment', 'prometheus');
  const items = podSpec(prometheus).volumes.find((volume: K8sObject) => volume.configMap?.name === 'prometheus-config').configMap.items;
  t.same(items.map((item: K8sObject) => item.path).sort(), ['alerts.yml', 'prometheus.yml']);
  const scrape = readYaml(join(DEPLOY, 'prometheus', 'prometheus-k8s.yml')) as { scrape_configs: { dns_sd_configs: { names: string[]; port: number }[] }[] };
  for (const job of scrape.scrape_configs) {
    for (const sd of job.dns_sd_configs) {
      t.equal(sd.port, onairConfig.admin.port, `${sd.names[0]}: admin.port`);
      t.equal(byName('Service', sd.names[0]!).spec.clusterIP, 'None', `${sd.names[0]}: a headless Service (one A record per pod)`);
    }
  }
  const grafana = byName('Deployment', 'grafana');
  const mounts = container(grafana, 'grafana').volumeMounts.map((mount: K8sObject) => mount.mountPath);
  const provider = readYaml(join(DEPLOY, 'grafana/provisioning/dashboards/onair.yaml')) as { providers: { options: { path: string } }[] };
  t.ok(mounts.includes(provider.providers[0]!.options.path), 'the dashboards ConfigMap is mounted where the provider reads');
});

t.test('the k8s Prometheus config passes promtool with the rules beside it, as the pod mounts them', async (t) => {
  const scratch = await mkdtemp(join(tmpdir(), 'onair-deploy-prometheus-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const prometheus = byName('Deployment', 'prometheus');
  const volume = podSpec(prometheus).volumes.find((candidate: K8sObject) => candidate.configMap?.name === 'prometheus-config');
  for (const item of volume.configMap.items) await writeFile(join(scratch, item.path), configMapData('prometheus-config')[item.key]!);
  const configFile = container(prometheus, 'prometheus').args.find((arg: string) => arg.startsWith('--config.file=')).split('=')[1];
  const checked = await run('promtool', ['check', 'config', join(scratch, basename(configFile))]).catch((error: { stdout: string; stderr: string }) => error);
  t.match(checked.stdout, /SUCCESS: .* is valid prometheus config file syntax/, checked.stderr);
  t.match(checked.stdout, /SUCCESS: \d+ rules found/);
});

t.test('the k8s Varnish config compiles with the shipped VCL, as the pod mounts it', async (t) => {
  const scratch = await mkdtemp(join(tmpdir(), 'onair-deploy-vcl-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const varnish = byName('Deployment', 'varnish');
  const volume = podSpec(varnish).volumes.find((candidate: K8sObject) => candidate.configMap?.name === 'varnish-vcl');
  for (const item of volume.configMap.items) {
    // The backend's Service name resolved to loopback for the compiler (varnishd resolves backends as it compiles).
    const text = configMapData('varnish-vcl')[item.key]!.replace(/\.host = "[^"]+";/g, (match) => (item.key === 'default.vcl' ? match : '.host = "127.0.0.1";'));
    await writeFile(join(scratch, item.path), text);
  }
  t.equal(configMapData('varnish-vcl')['default.vcl'], readFileSync(join(DEPLOY, 'varnish', 'default.vcl'), 'utf8'), 'the shipped VCL');
  const args = container(varnish, 'varnish').args as string[];
  const compiled = await run('/usr/sbin/varnishd', ['-C', '-j', 'none', '-f', join(scratch, 'default.vcl'), '-n', join(scratch, 'work'), ...args], {
    maxBuffer: 64 * 1024 * 1024,
  }).then(
    () => ({ ok: true, stderr: '' }),
    (error: { stderr: string }) => ({ ok: false, stderr: error.stderr }),
  );
  t.ok(compiled.ok, `varnishd compiles it: ${compiled.stderr.slice(-2000)}`);
});
