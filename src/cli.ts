#!/usr/bin/env node
/**
 * onair command line: `start`, `ingest`, `origin`, `check`, `sign`, `record`, `demo`.
 * Config errors exit with status 2 and one message naming the key path;
 * SIGINT/SIGTERM stop everything cleanly, FFmpeg children included.
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { stringify } from 'yaml';
import { formatBitrate, parseDurationSeconds } from './config/units.js';
import { loadConfigFile } from './config/load-config.js';
import { unauthenticatedListeners, workersSchema, type OnairConfig } from './config/config-schema.js';
import { startDemo } from './demo.js';
import { demoConfig } from './demo.js';
import { isOnairError, OnairError } from './errors.js';
import { createLogger as createProcessLogger } from './logging/create-logger.js';
import { redactSecrets, redactUrl } from './logging/redact.js';
import { startOnair, tlsListener } from './onair.js';
import { CLUSTER_ADMIN_URL_ENV, startOriginCluster } from './onair-cluster.js';
import { workerCount } from './origin/origin-cluster.js';
import { runRecordCommand } from './recording/record-command.js';
import { channelPathPrefix, signPath, TOKEN_PARAMETER } from './origin/signed-urls.js';

const USAGE = `Usage: onair <command> [--config channels.yaml]

Commands:
  start    ingest and origin in one process
  ingest   packager only: reads the inputs, writes segments and playlists to the store
  origin   HTTP origin only: serves what the store holds (several may share one Redis)
           [--workers N|auto]: N worker processes on the origin port (a Redis store); auto: one per core
  check    validate the config and print it resolved (exit 2 on error)
  sign     print a signed master playlist path of a protected channel:
           sign --config channels.yaml --channel fip [--ttl 3600 (seconds, or 30m, 2h)]
  record   recorded sessions: record list | record stitch <session> | record rm <session>
           --config channels.yaml [--channel fip]
  demo     the whole pipeline on the embedded store with a built-in test signal

Environment: ONAIR_STORE, ONAIR_ORIGIN_HOST, ONAIR_ORIGIN_PORT, ONAIR_LOG_LEVEL, ONAIR_SIGNING_KEY override the file.
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      channel: { type: 'string' },
      ttl: { type: 'string', default: '3600' },
      workers: { type: 'string' },
    },
  });
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return command || values.help ? 0 : 1;
  }
  if (command === 'demo') return runDemo();
  if (!['start', 'ingest', 'origin', 'check', 'sign', 'record'].includes(command)) {
    process.stderr.write(`onair: unknown command "${command}"\n\n${USAGE}`);
    return 1;
  }
  if (!values.config) {
    process.stderr.write(`onair ${command}: --config <file> is required\n`);
    return 1;
  }
  const config = await loadConfigFile(values.config);
  if (command === 'check') {
    // The certificate files as start-up reads them: a missing or mismatched pair is a config error here too.
    await tlsListener(config.origin.tls, 'origin.tls');
    await tlsListener(config.admin.tls, 'admin.tls');
    await tlsListener(config.api.tls, 'api.tls');
    const warnings = configWarnings(config);
    for (const warning of warnings) process.stderr.write(`onair check: warning: ${warning}\n`);
    process.stdout.write(describeConfig(config, warnings));
    return 0;
  }
  if (command === 'sign') return runSign(config, values.channel, values.ttl);
  if (command === 'record') {
    return runRecordCommand(config, { action: positionals[1], session: positionals[2], channel: values.channel }, {
      out: (line) => process.stdout.write(`${line}\n`),
      err: (line) => process.stderr.write(`${line}\n`),
    });
  }
  const workers = originWorkers(command, values.workers, config);
  if (workers !== undefined && cluster.isPrimary) return runOriginCluster(config, values.config, workers);
  const worker = cluster.isWorker ? cluster.worker : undefined;
  const logger = worker ? createLogger(config).child({ worker: worker.id }) : createLogger(config);
  // Listen for signals before starting, so a stop during start-up still closes cleanly.
  // A worker stops on the primary's SIGTERM only: Ctrl+C reaches the primary, which stops it.
  const stopRequested = firstSignal(logger, worker ? ['SIGTERM'] : undefined);
  if (worker) process.on('SIGINT', () => undefined);
  // A rejection nothing handled is a bug somewhere: logged with a code and counted, never the end of every channel.
  let countRejection = (): void => undefined;
  const onUnhandledRejection = (reason: unknown): void => {
    const error = new OnairError('ONAIR_UNHANDLED_REJECTION', reason instanceof Error ? reason.message : String(reason), { cause: reason });
    logger.error({ code: error.code, err: reason }, 'unhandled promise rejection');
    countRejection();
  };
  process.on('unhandledRejection', onUnhandledRejection);
  const running = await startOnair({
    config,
    configPath: values.config,
    role: command as 'start' | 'ingest' | 'origin',
    logger,
    clusterWorker: worker ? { id: worker.id, adminUrl: process.env[CLUSTER_ADMIN_URL_ENV] ?? '' } : undefined,
  });
  countRejection = () => running.metrics.unhandledRejections.inc();
  // SIGHUP re-reads the config file, like POST /api/reload (a bad file is logged and ignored),
  // and the TLS certificates and keys (a bad pair is logged and the old one kept).
  return runUntilStopped(logger, stopRequested, running, () => void running.reloadCertificates());
}

/**
 * Runs until the first signal, then closes: SIGHUP meanwhile re-reads the config file (a bad
 * file is logged and ignored), after `onHangup` (the TLS certificates).
 */
async function runUntilStopped(logger: Logger, stopRequested: Promise<unknown>, running: { reload(): Promise<unknown>; close(): Promise<void> }, onHangup?: () => void): Promise<number> {
  const reloadOnHangup = (): void => {
    onHangup?.();
    running.reload().catch((error: unknown) => logger.error({ err: error }, 'config reload refused; the running config is kept'));
  };
  process.on('SIGHUP', reloadOnHangup);
  await stopRequested;
  process.off('SIGHUP', reloadOnHangup);
  await stopLogged(logger, () => running.close());
  return 0;
}

/** `--workers` (or `origin.workers`) of `onair origin`: the number of worker processes, or undefined for one process. */
function originWorkers(command: string, flag: string | undefined, config: OnairConfig): number | undefined {
  if (flag === undefined) return command === 'origin' && config.origin.workers !== undefined ? workerCount(config.origin.workers) : undefined;
  if (command !== 'origin') throw new OnairError('ONAIR_CONFIG_INVALID', '--workers: only `onair origin` runs workers');
  const parsed = workersSchema.safeParse(/^\d+$/.test(flag) ? Number(flag) : flag);
  if (!parsed.success) throw new OnairError('ONAIR_CONFIG_INVALID', `--workers: ${parsed.error.issues[0]?.message ?? 'expected a number of workers or auto'}`);
  if (config.store === 'memory') {
    throw new OnairError('ONAIR_CONFIG_INVALID', '--workers: expected a Redis store: every worker is a process of its own, and the memory store is not shared');
  }
  return workerCount(parsed.data);
}

/** The primary of `onair origin --workers`: forks the workers, serves the admin listener, stops them all on a signal. */
async function runOriginCluster(config: OnairConfig, configPath: string, workers: number): Promise<number> {
  const logger = createLogger(config);
  const stopRequested = firstSignal(logger);
  const running = await startOriginCluster({ config, configPath, logger, workers });
  return runUntilStopped(logger, stopRequested, running);
}

async function runDemo(): Promise<number> {
  const config = demoConfig(process.env);
  const logger = createLogger(config);
  const stopRequested = firstSignal(logger);
  const demo = await startDemo(config, logger);
  const base = demo.onair.originUrl!.replace('127.0.0.1', 'localhost');
  process.stdout.write(
    `\nonair demo is running: a test tone goes over SRT into the packager.\n` +
      `Open ${base}/fip/fip.m3u8 in a player (VLC, ffplay, Safari, hls.js); the first segments appear after ~${config.hls.segmentSeconds * 2} s.\n` +
      `Icecast-style: ${base}/fip-hifi.aac and ${base}/fip-mp3.mp3 (with titles: Icy-MetaData: 1), status at ${base}/status-json.xsl.\n` +
      `The player page: ${base}/\n` +
      `Press Ctrl+C to stop.\n\n`,
  );
  await stopRequested;
  await stopLogged(logger, () => demo.close());
  return 0;
}

/** Tokens minted here last at most ten years. */
const MAX_TOKEN_TTL_SECONDS = 10 * 365 * 86400;

/** Prints `/{ch}/{ch}.m3u8?token=…`: the token covers every URL of the channel for `ttl`. */
function runSign(config: OnairConfig, channelId: string | undefined, ttl: string): number {
  const channel = config.channels.find((candidate) => candidate.id === channelId);
  if (!channel) return signRefused(channelId ? `no channel "${channelId}" in the config` : '--channel <id> is required');
  if (channel.access !== 'signed') return signRefused(`channel "${channel.id}" is public: only channels with access: signed take tokens`);
  const ttlSeconds = parseDurationSeconds(ttl);
  if (ttlSeconds === undefined || ttlSeconds < 1 || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
    return signRefused('--ttl: expected a duration between 1s and ten years, like 3600, 30m or 2h');
  }
  const token = signPath({
    // The config refuses a signed channel without a key.
    key: config.signing.key!,
    pathPrefix: channelPathPrefix(channel.id),
    expiresAt: Math.ceil(Date.now() / 1000 + ttlSeconds),
  });
  process.stdout.write(`/${channel.id}/${channel.id}.m3u8?${TOKEN_PARAMETER}=${token}\n`);
  return 0;
}

function signRefused(message: string): number {
  process.stderr.write(`onair sign: ${message}\n`);
  return 1;
}

/** JSON lines on stderr, human-readable when stderr is a terminal; secrets redacted, repeats rate-limited. */
function createLogger(config: OnairConfig): Logger {
  return createProcessLogger({ level: config.log.level });
}

/** What `check` warns about: inputs that accept audio from anyone who reaches them. */
function configWarnings(config: OnairConfig): string[] {
  return unauthenticatedListeners(config).map(
    ({ path, url }) => `${path} (${redactUrl(url)}) accepts audio from any sender that reaches it (allowUnauthenticated: true)`,
  );
}

/** The resolved config as YAML, secrets (passphrases, keys, tokens, credentials in URLs) shown as ***. */
function describeConfig(config: OnairConfig, warnings: string[]): string {
  const printable = redactSecrets({
    ...config,
    channels: config.channels.map((channel) => ({
      ...channel,
      renditions: channel.renditions.map((rendition) => ({ ...rendition, bitrate: formatBitrate(rendition.bitrate) })),
    })),
  });
  const notes =
    config.store === 'memory'
      ? '# store: memory is embedded in one process: no shared state, no hot standby (a standby packager needs a shared Redis store)\n'
      : '# hot standby: run a second `onair ingest` with this config and store; one leads each channel through a lease in the store\n';
  const warningLines = warnings.map((warning) => `# warning: ${warning}\n`).join('');
  return `# onair: config is valid\n${notes}${warningLines}${stringify(printable)}`;
}

/** Resolves on the first SIGINT/SIGTERM (or `signals`); a second signal exits at once. */
function firstSignal(logger: Logger, signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal }, 'stopping');
      resolve();
    };
    for (const signal of signals) process.on(signal, onSignal);
  });
}

async function stopLogged(logger: Logger, stop: () => Promise<void>): Promise<void> {
  try {
    await stop();
  } catch (error) {
    logger.error({ err: error }, 'error while stopping');
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (isOnairError(error)) {
      process.stderr.write(`onair: ${error.message}\n`);
      process.exit(error.code === 'ONAIR_CONFIG_INVALID' || error.code === 'ONAIR_CONFIG_UNREADABLE' ? 2 : 1);
    }
    process.stderr.write(`onair: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
