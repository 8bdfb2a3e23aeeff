/**
 * The Dockerfile still builds this package (docs/architecture.md, "Deploy recipes"): there is
 * no container engine here, so the test reads the Dockerfile and replays it on the checkout.
 * The build stage's COPY lines into a scratch directory and its TypeScript build, as written;
 * then the runtime stage's COPY lines into an /app of its own, whose ENTRYPOINT script must run
 * an origin that serves the player page and /healthz. Besides: the base image's Node satisfies
 * the package's engines, the ENV names are overrides onair reads, the Debian packages it
 * installs are the ones scripts/setup.sh installs, and the exposed ports are onair's defaults.
 * A broken copy of the Dockerfile (a source that is gone, a build step that differs) is refused.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { ENVIRONMENT_OVERRIDES, parseConfigText } from '../../src/config/load-config.js';
import { freeTcpPort } from '../helpers/ports.js';
import { waitUntil } from '../helpers/wait-until.js';
import { ROOT } from './manifests.js';

const run = promisify(execFile);
const DOCKERFILE = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  engines: { node: string };
  scripts: Record<string, string>;
};

/** One channel, for configs that need one (an origin does not open its input). */
const CHANNEL = `  - id: fip
    renditions: [{ id: hifi, bitrate: 96k }]
    inputs: [{ id: main, url: "srt://127.0.0.1:9000?mode=listener", srt: { passphrase: "change-me-please" } }]
`;

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
}

/** Stages of a Dockerfile: comments dropped, `\` continuations joined. */
export function parseDockerfile(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op, args] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    if (!op || args === undefined) throw new Error(`cannot read: ${line}`);
    if (op.toUpperCase() === 'FROM') {
      const [image, , name] = args.split(/\s+/);
      stages.push({ image: image!, name, instructions: [] });
    } else stages.at(-1)!.instructions.push({ op: op.toUpperCase(), args: args.replace(/\s+/g, ' ') });
  }
  return stages;
}

/** COPY arguments: sources, destination, and --from. */
function copyArgs(args: string): { from?: string; sources: string[]; destination: string } {
  const words = args.split(' ');
  const from = words[0]!.startsWith('--from=') ? words.shift()!.slice('--from='.length) : undefined;
  const destination = words.pop()!;
  return { from, sources: words, destination };
}

/** Files of the build context a COPY source names (a trailing `*` may match nothing, as Docker allows). */
function contextMatches(source: string): string[] {
  if (!source.includes('*')) return existsSync(join(ROOT, source)) ? [source] : [];
  const prefix = source.slice(0, source.indexOf('*'));
  return readdirSync(join(ROOT, dirname(source))).filter((name) => name.startsWith(prefix.split('/').pop()!)).map((name) => join(dirname(source), name));
}

/** What does not match the package in a Dockerfile's text; empty when it still builds this package. */
export function dockerfileProblems(text: string): string[] {
  const problems: string[] = [];
  const stages = parseDockerfile(text);
  if (stages.length !== 2) return [`expected a build and a runtime stage, found ${stages.length}`];
  const [build, runtime] = stages as [Stage, Stage];
  const nodeMajor = Number(/^node:(\d+)/.exec(runtime.image)?.[1]);
  const minimum = Number(/>=\s*(\d+)/.exec(PACKAGE.engines.node)?.[1]);
  for (const stage of stages) if (!stage.image.startsWith(`node:${nodeMajor}`)) problems.push(`${stage.image}: both stages on one Node`);
  if (!(nodeMajor >= minimum)) problems.push(`${runtime.image}: Node ${nodeMajor} does not satisfy engines ${PACKAGE.engines.node}`);

  for (const { op, args } of build.instructions.filter((instruction) => instruction.op === 'COPY')) {
    for (const source of copyArgs(args).sources) {
      if (contextMatches(source).length === 0 && !source.endsWith('*')) problems.push(`${op} ${source}: not in the package`);
    }
  }
  const builds = build.instructions.filter((instruction) => instruction.op === 'RUN').flatMap((instruction) => instruction.args.split(' && '));
  if (!builds.includes(`npx ${PACKAGE.scripts.build}`)) problems.push(`the build stage does not run the package's build (${PACKAGE.scripts.build})`);

  const entrypoint = JSON.parse(runtime.instructions.find((instruction) => instruction.op === 'ENTRYPOINT')?.args ?? '[]') as string[];
  const script = entrypoint.find((word) => word.endsWith('.js'));
  if (script !== `/app/${PACKAGE.bin.onair}`) problems.push(`ENTRYPOINT runs ${script}, the package's bin is ${PACKAGE.bin.onair}`);
  const copied = runtime.instructions.filter((instruction) => instruction.op === 'COPY').map((instruction) => copyArgs(instruction.args));
  const fromBuild = copied.filter((copy) => copy.from === build.name).flatMap((copy) => copy.sources);
  if (!fromBuild.some((source) => `/app/${PACKAGE.bin.onair}`.startsWith(`${source}/`))) problems.push('the runtime stage does not copy the built CLI');
  for (const { from, sources } of copied) {
    if (from === undefined) for (const source of sources) if (contextMatches(source).length === 0) problems.push(`COPY ${source}: not in the package`);
  }

  for (const { args } of [...build.instructions, ...runtime.instructions].filter((instruction) => instruction.op === 'ENV')) {
    for (const [, name] of args.matchAll(/(?:^|\s)([A-Z_]+)=/g)) {
      if (name!.startsWith('ONAIR_') && !(name! in ENVIRONMENT_OVERRIDES)) problems.push(`ENV ${name}: onair reads no such variable`);
    }
  }
  const setup = readFileSync(join(ROOT, 'scripts', 'setup.sh'), 'utf8');
  const installed = runtime.instructions
    .filter((instruction) => instruction.op === 'RUN')
    .flatMap((instruction) => [...instruction.args.matchAll(/apt-get install -y --no-install-recommends ([^&]+)/g)].flatMap((match) => match[1]!.trim().split(' ')));
  // tini is the container's init; everything else is what onair runs, which setup.sh installs on a host.
  for (const name of installed) if (name !== 'tini' && !new RegExp(`\\b${name}\\b`).test(setup)) problems.push(`apt package ${name}: not installed by scripts/setup.sh`);
  if (!installed.includes('ffmpeg')) problems.push('the runtime image has no ffmpeg');

  const defaults = parseConfigText(`channels:\n${CHANNEL}`, {}, 'defaults');
  const exposed = runtime.instructions.filter((instruction) => instruction.op === 'EXPOSE').flatMap((instruction) => instruction.args.split(' '));
  if (!exposed.includes(String(defaults.origin.port))) problems.push(`EXPOSE lacks the origin's default port ${defaults.origin.port}`);
  return problems;
}

t.test('the Dockerfile matches the package, and broken copies do not', async (t) => {
  t.same(dockerfileProblems(DOCKERFILE), []);
  const mutations: [string, (text: string) => string][] = [
    ['a source that is gone', (text) => text.replace('COPY src ./src', 'COPY source ./src')],
    ['another build command', (text) => text.replace('npx tsc -p tsconfig.build.json', 'npx tsc -p tsconfig.json')],
    ['an entrypoint that is not the bin', (text) => text.replace('/app/dist/src/cli.js', '/app/dist/cli.js')],
    ['Node older than engines', (text) => text.replaceAll('node:20-bookworm-slim', 'node:18-bookworm-slim')],
    ['an override onair does not read', (text) => text.replace('ONAIR_ORIGIN_HOST=0.0.0.0', 'ONAIR_HOST=0.0.0.0')],
    ['no built CLI in the runtime stage', (text) => text.replace('COPY --from=build /app/dist/src ./dist/src', 'COPY --from=build /app/dist/bench ./dist/bench')],
  ];
  for (const [what, mutate] of mutations) {
    const broken = mutate(DOCKERFILE);
    t.not(broken, DOCKERFILE, `${what}: the mutation applies`);
    t.ok(dockerfileProblems(broken).length > 0, `${what}: ${dockerfileProblems(broken)[0]}`);
  }
});

t.test('replayed on the checkout, the Dockerfile builds an /app whose entrypoint serves an origin', async (t) => {
  const scratch = await mkdtemp(join(tmpdir(), 'onair-docker-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const [build, runtime] = parseDockerfile(DOCKERFILE) as [Stage, Stage];
  const buildApp = join(scratch, 'build');
  const app = join(scratch, 'app');

  // The build stage: its COPY lines from the context, then its RUN steps; npm install and
  // prune need the registry, so node_modules is the checkout's (a link), and they are skipped.
  await mkdir(buildApp, { recursive: true });
  await symlink(join(ROOT, 'node_modules'), join(buildApp, 'node_modules'));
  for (const { op, args } of build.instructions) {
    if (op === 'COPY') {
      const { sources, destination } = copyArgs(args);
      for (const source of sources.flatMap(contextMatches)) {
        const target = destination.endsWith('/') ? join(buildApp, destination, source.split('/').pop()!) : join(buildApp, destination);
        await cp(join(ROOT, source), target, { recursive: true });
      }
    } else if (op === 'RUN') {
      for (const step of args.split(' && ')) {
        if (/^npm (install|prune)\b/.test(step)) continue;
        const [command, ...rest] = step.split(' ');
        t.equal(command, 'npx', `build step: ${step}`);
        const built = await run(join(ROOT, 'node_modules', '.bin', rest[0]!), rest.slice(1), { cwd: buildApp }).then(
          () => '',
          (error: { stdout: string; stderr: string }) => `${error.stdout}${error.stderr}`,
        );
        t.equal(built, '', `${step} succeeds in the build stage`);
      }
    }
  }

  // The runtime stage's /app: what it copies from the build stage and the context.
  await mkdir(app, { recursive: true });
  for (const { op, args } of runtime.instructions.filter((instruction) => instruction.op === 'COPY')) {
    const { from, sources, destination } = copyArgs(args);
    for (const source of sources) {
      const origin = from ? join(buildApp, source.replace(/^\/app\//, '')) : join(ROOT, source);
      const target = destination.endsWith('/') ? join(app, destination, source.split('/').pop()!) : join(app, destination);
      if (source.endsWith('node_modules')) await symlink(join(ROOT, 'node_modules'), target);
      else {
        t.ok(existsSync(origin), `${op} ${source}: present`);
        await cp(origin, target, { recursive: true });
      }
    }
  }
  const entrypoint = JSON.parse(runtime.instructions.find((instruction) => instruction.op === 'ENTRYPOINT')!.args) as string[];
  const script = join(app, entrypoint.find((word) => word.endsWith('.js'))!.replace(/^\/app\//, ''));
  t.ok(existsSync(script), 'the ENTRYPOINT script exists in /app');

  const port = await freeTcpPort();
  const adminPort = await freeTcpPort();
  const configPath = join(scratch, 'channels.yaml');
  await writeFile(configPath, `store: memory\norigin: { host: 127.0.0.1, port: ${port} }\nadmin: { port: ${adminPort} }\nchannels:\n${CHANNEL}`);
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ONAIR_')));
  const child = spawn(process.execPath, [script, 'origin', '--config', configPath], { cwd: scratch, env: { ...env, ONAIR_LOG_LEVEL: 'warn' }, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(async () => {
    child.kill('SIGTERM');
    await exited;
  });
  await waitUntil(t, 'the origin answers /healthz', () => fetch(`http://127.0.0.1:${port}/healthz`).then((response) => response.ok, () => false), 20_000);
  const page = await fetch(`http://127.0.0.1:${port}/`);
  t.equal(page.status, 200, 'the player page is served from the /app the Dockerfile assembles');
  t.match(await page.text(), /<html/i);
});
