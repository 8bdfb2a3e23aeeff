/**
 * Checks, before anything starts, that the ports a role will bind are free and that the
 * FFmpeg tools an ingest needs are installed, so a taken port or a missing tool is one
 * clear error (naming the key, or the install line) and nothing half-starts.
 */
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { icecastSourceAddress, srtListenerAddress, type OnairConfig } from './config/config-schema.js';
import { OnairError } from './errors.js';
import { findOnPath, isExecutable } from './ffmpeg/ffmpeg-launcher.js';

export type Role = 'start' | 'ingest' | 'origin';

export async function checkPortsFree(config: OnairConfig, role: Role): Promise<void> {
  if (role !== 'ingest') {
    const { host, port } = config.origin;
    if (port !== 0 && !(await tcpPortFree(host, port))) {
      throw new OnairError('ONAIR_PORT_IN_USE', `${host}:${port} is already in use (or cannot be bound)`, { where: 'origin.port' });
    }
  }
  const admin = adminAddress(config, role);
  const [adminPort] = admin.ports;
  if (admin.ports.length === 1 && adminPort !== 0 && !(await tcpPortFree(admin.host, adminPort!))) {
    throw new OnairError('ONAIR_PORT_IN_USE', `${admin.host}:${adminPort} is already in use (or cannot be bound)`, { where: admin.where });
  }
  if (role === 'origin') return;
  for (const [channelIndex, channel] of config.channels.entries()) {
    for (const [inputIndex, input] of channel.inputs.entries()) {
      const source = icecastSourceAddress(input.url);
      if (source && !(await tcpPortFree(source.host, source.port))) {
        throw new OnairError('ONAIR_PORT_IN_USE', `${source.host}:${source.port} is already in use (Icecast source input)`, {
          where: `channels[${channelIndex}].inputs[${inputIndex}].url`,
        });
      }
      const listener = srtListenerAddress(input.url);
      if (!listener) continue;
      if (!(await udpPortFree(listener.host, listener.port))) {
        throw new OnairError('ONAIR_PORT_IN_USE', `UDP ${listener.host}:${listener.port} is already in use (SRT listener)`, {
          where: `channels[${channelIndex}].inputs[${inputIndex}].url`,
        });
      }
    }
  }
}

/** The admin listener's port when `admin.port` is unset, for `start` and `origin`. */
export const DEFAULT_ADMIN_PORT = 8081;
/** The ports an `onair ingest` with no admin port set tries in turn (9464 was its metrics port), then any free one. */
export const INGEST_ADMIN_PORTS: readonly number[] = [...Array.from({ length: 10 }, (_, index) => 9464 + index), 0];

/**
 * Where a role's admin listener binds (/metrics, /api, /listeners.json, /ingest/access-log):
 * one port, which must be free (`where` names its key), or candidates tried in turn.
 * `admin.port` wins; an `onair ingest` without it reads the deprecated `metrics.host` /
 * `metrics.port` (its address before the admin listener existed), else tries
 * INGEST_ADMIN_PORTS, so several packagers on one host all start; `start` and `origin`
 * take DEFAULT_ADMIN_PORT.
 */
export function adminAddress(config: OnairConfig, role: Role): { host: string; ports: readonly number[]; where: string } {
  const legacy = role === 'ingest' && config.admin.port === undefined ? config.metrics : {};
  const host = legacy.host ?? config.admin.host;
  if (config.admin.port !== undefined) return { host, ports: [config.admin.port], where: 'admin.port' };
  if (legacy.port !== undefined) return { host, ports: [legacy.port], where: 'metrics.port' };
  return { host, ports: role === 'ingest' ? INGEST_ADMIN_PORTS : [DEFAULT_ADMIN_PORT], where: 'admin.port' };
}

/** The install line every refusal below prints (Debian's and Ubuntu's FFmpeg are built with libsrt). */
const INSTALL_LINE = 'install FFmpeg with SRT support, e.g. `sudo apt-get install ffmpeg`';

/**
 * `ffmpeg` and `ffprobe` (FFMPEG_PATH / FFPROBE_PATH, else the PATH), for the roles that
 * encode, and SRT support in that ffmpeg (`ffmpeg -protocols` lists srt as an input): SRT is
 * the contribution protocol, and a reload may add an SRT input to a running ingest.
 */
export function checkFfmpegInstalled(role: Role): void {
  if (role === 'origin') return;
  const paths = { ffmpeg: toolPath('ffmpeg'), ffprobe: toolPath('ffprobe') };
  const missing = (['ffmpeg', 'ffprobe'] as const).filter((tool) => paths[tool] === undefined);
  if (missing.length > 0) {
    throw new OnairError('ONAIR_FFMPEG_MISSING', `${missing.join(' and ')} not found; ${INSTALL_LINE}`);
  }
  const protocols = inputProtocols(paths.ffmpeg!);
  if (!protocols.includes('srt')) {
    throw new OnairError(
      'ONAIR_FFMPEG_MISSING',
      `${paths.ffmpeg} has no SRT support (\`ffmpeg -protocols\` does not list srt as an input); ${INSTALL_LINE}`,
    );
  }
}

function toolPath(tool: 'ffmpeg' | 'ffprobe'): string | undefined {
  const fromEnv = process.env[tool === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH'];
  if (fromEnv) return isExecutable(fromEnv) ? fromEnv : undefined;
  return findOnPath(tool);
}

/** The input protocols `ffmpeg -protocols` lists (between its "Input:" and "Output:" lines). */
function inputProtocols(ffmpeg: string): string[] {
  const listed = spawnSync(ffmpeg, ['-hide_banner', '-protocols'], { encoding: 'utf8', timeout: 10_000 });
  const lines = (listed.stdout ?? '').split('\n').map((line) => line.trim());
  const start = lines.indexOf('Input:');
  const end = lines.indexOf('Output:');
  if (start < 0) return [];
  return lines.slice(start + 1, end > start ? end : undefined).filter((line) => line !== '');
}

function tcpPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function udpPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind({ address: host, port, exclusive: true }, () => socket.close(() => resolve(true)));
  });
}
