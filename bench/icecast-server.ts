/**
 * A private Debian icecast2 (2.4) for the tests and bench:icecast: a generated config in a scratch
 * directory (logs there, no chroot, bounded sources, clients and per-listener queue), a free
 * loopback port, and the process always stopped: `stop()` sends SIGTERM (SIGKILL after a grace)
 * and removes the directory; if this process exits first, the 'exit' hook SIGKILLs it.
 *
 * Icecast refuses to run as root, so when this process is root it runs as the unprivileged user
 * `onair-test` (scripts/setup.sh --test creates it). It is spawned with that uid/gid directly
 * (what `runuser -u onair-test` does, without the extra runuser process), so `pid` is icecast2's
 * own: bench:icecast reads its CPU time and RSS from /proc/<pid>.
 *
 * Two roles (docs/architecture.md, "Icecast relay tests and benchmark"):
 * - a RELAY of an onair mount: `<relay>` pulls `/fip-hifi.aac` from onair's origin and republishes
 *   it under the same mount, ICY metadata included (relay-shoutcast-metadata);
 * - a plain server that a source client (FFmpeg's `icecast://`) feeds, for reference figures.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answers, freeTcpPort, sleep } from './system.js';

export const ICECAST_PATH = process.env.ONAIR_ICECAST ?? '/usr/bin/icecast2';
/** The unprivileged user icecast2 (and VLC) run as when the tests run as root. */
export const ICECAST_USER = 'onair-test';
/** Password of the `source` user (source clients) and of `admin` in the generated config. */
export const ICECAST_PASSWORD = 'onair-test-icecast';

const STOP_GRACE_MS = 3000;
const READY_TIMEOUT_MS = 15_000;
const OUTPUT_LIMIT = 8000;

export interface IcecastRelaySpec {
  /** The upstream (an onair origin): host and port. */
  host: string;
  port: number;
  /** Upstream mount, e.g. `/fip-hifi.aac`. */
  mount: string;
  /** Mount on this icecast2; the same as `mount` unless told. */
  localMount?: string;
}

export interface IcecastOptions {
  /** Relays this server pulls at start (never on demand: the relay connects at once). */
  relays?: IcecastRelaySpec[];
  /** Listener connections icecast2 accepts in all (`<clients>`); default 100. */
  maxClients?: number;
  /** Sources (relays count) it accepts; default 4. */
  maxSources?: number;
  /** Bytes sent at once to a new listener (`<burst-size>`); default icecast's 64 KiB. */
  burstBytes?: number;
  /** A listener this many bytes behind is dropped (`<queue-size>`); default icecast's 512 KiB. */
  queueBytes?: number;
}

export interface RunningIcecast {
  readonly port: number;
  /** icecast2's own PID (for /proc/<pid>/stat and status). */
  readonly pid: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** stdout + stderr and the error log, for diagnostics. */
  output(): string;
  /** Icecast's /status-json.xsl (icestats); rejects on the malformed JSON icecast2 2.4 answers for a moment after start. */
  status(): Promise<IcecastStatus>;
  stop(): Promise<void>;
}

export interface IcecastSource {
  listenurl: string;
  listeners?: number;
  title?: string;
  server_name?: string;
  server_type?: string;
}

export interface IcecastStatus {
  icestats: { source?: IcecastSource | IcecastSource[] };
}

/** Why icecast2 cannot run here, or undefined when it can. */
export function icecastUnavailable(): string | undefined {
  if (spawnSync(ICECAST_PATH, ['-v'], { stdio: 'ignore' }).error) return `${ICECAST_PATH} is not installed (sh scripts/setup.sh --test installs icecast2)`;
  if (isRoot() && userIds(ICECAST_USER) === undefined) return `icecast2 refuses root and the user ${ICECAST_USER} does not exist (sh scripts/setup.sh --test creates it)`;
  return undefined;
}

/** The sources icecast2 lists, as an array (it gives a lone source as an object). */
export function icecastSources(status: IcecastStatus): IcecastSource[] {
  const source = status.icestats.source;
  if (source === undefined) return [];
  return Array.isArray(source) ? source : [source];
}

export async function startIcecast(options: IcecastOptions = {}): Promise<RunningIcecast> {
  const directory = mkdtempSync(join(tmpdir(), 'onair-icecast-'));
  let child: ChildProcess | undefined;
  const killOnExit = (): void => {
    child?.kill('SIGKILL');
    rmSync(directory, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child!.kill('SIGKILL'), STOP_GRACE_MS);
      await exited.finally(() => clearTimeout(timer));
    }
    process.off('exit', killOnExit);
    rmSync(directory, { recursive: true, force: true });
  };

  try {
    const port = await freeTcpPort();
    const ids = isRoot() ? userIds(ICECAST_USER) : undefined;
    if (isRoot() && !ids) throw new Error(icecastUnavailable());
    const logDirectory = join(directory, 'log');
    mkdirSync(logDirectory);
    const configPath = join(directory, 'icecast.xml');
    writeFileSync(configPath, icecastConfig({ ...options, port, directory, logDirectory }));
    if (ids) {
      for (const path of [directory, logDirectory, configPath]) chownSync(path, ids.uid, ids.gid);
    }
    chmodSync(directory, 0o755);

    child = spawn(ICECAST_PATH, ['-c', configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: directory,
      ...(ids ? { uid: ids.uid, gid: ids.gid, env: { ...process.env, HOME: directory } } : {}),
    });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-OUTPUT_LIMIT);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.once('error', (error) => collect(Buffer.from(`\n[spawn error] ${error.message}`)));
    const describe = (): string => `${output}\n--- error.log ---\n${readTail(join(logDirectory, 'error.log'))}`;

    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await answers(`${url}/status-json.xsl`))) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`icecast2 exited at start (${child.exitCode ?? child.signalCode}):\n${describe()}`);
      if (Date.now() > deadline) throw new Error(`icecast2 did not answer within ${READY_TIMEOUT_MS} ms:\n${describe()}`);
      await sleep(100);
    }
    return {
      port,
      pid: child.pid!,
      url,
      output: describe,
      status: async () => {
        const text = await (await fetch(`${url}/status-json.xsl`)).text();
        try {
          return JSON.parse(text) as IcecastStatus;
        } catch {
          throw new Error(`icecast2's /status-json.xsl is not JSON: ${text.slice(0, 500)}`);
        }
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The icecast.xml: loopback only, no chroot, logs in the scratch directory, relays never on
 * demand. A relayed mount's ICY metadata is declared UTF-8 (onair's StreamTitle is): icecast2
 * passes the blocks to its listeners as they are, but reads them as Latin-1 for its own status
 * pages unless told.
 */
export function icecastConfig(options: IcecastOptions & { port: number; directory: string; logDirectory: string }): string {
  const relays = (options.relays ?? []).map(
    (relay) => `
  <relay>
    <server>${relay.host}</server>
    <port>${relay.port}</port>
    <mount>${escapeXml(relay.mount)}</mount>
    <local-mount>${escapeXml(relay.localMount ?? relay.mount)}</local-mount>
    <on-demand>0</on-demand>
    <relay-shoutcast-metadata>1</relay-shoutcast-metadata>
  </relay>
  <mount type="normal">
    <mount-name>${escapeXml(relay.localMount ?? relay.mount)}</mount-name>
    <charset>UTF-8</charset>
  </mount>`,
  );
  return `<icecast>
  <location>loopback</location>
  <admin>onair-test@localhost</admin>
  <hostname>127.0.0.1</hostname>
  <limits>
    <clients>${options.maxClients ?? 100}</clients>
    <sources>${options.maxSources ?? 4}</sources>
    <queue-size>${options.queueBytes ?? 524288}</queue-size>
    <client-timeout>30</client-timeout>
    <header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect>
    <burst-size>${options.burstBytes ?? 65535}</burst-size>
  </limits>
  <authentication>
    <source-password>${ICECAST_PASSWORD}</source-password>
    <relay-password>${ICECAST_PASSWORD}</relay-password>
    <admin-user>admin</admin-user>
    <admin-password>${ICECAST_PASSWORD}</admin-password>
  </authentication>
  <listen-socket>
    <port>${options.port}</port>
    <bind-address>127.0.0.1</bind-address>
  </listen-socket>
  <fileserve>1</fileserve>
  <paths>
    <basedir>${options.directory}</basedir>
    <logdir>${options.logDirectory}</logdir>
    <webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging>
    <accesslog>access.log</accesslog>
    <errorlog>error.log</errorlog>
    <loglevel>3</loglevel>
    <logsize>10000</logsize>
  </logging>
  <security>
    <chroot>0</chroot>
  </security>${relays.join('')}
</icecast>
`;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function userIds(name: string): { uid: number; gid: number } | undefined {
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function readTail(path: string): string {
  try {
    return readFileSync(path, 'utf8').slice(-OUTPUT_LIMIT);
  } catch {
    return '(none)';
  }
}


