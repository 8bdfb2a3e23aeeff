/**
 * Checks, before anything starts, that the ports a role will bind are free and that the
 * FFmpeg tools an ingest needs are installed, so a taken port or a missing tool is one
 * clear error (naming the key, or the install line) and nothing half-starts.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { srtListenerAddress, type OnairConfig } from './config/config-schema.js';
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
  if (role === 'origin') return;
  if (role === 'ingest') {
    const { host, port } = config.metrics;
    if (port !== 0 && !(await tcpPortFree(host, port))) {
      throw new OnairError('ONAIR_PORT_IN_USE', `${host}:${port} is already in use (or cannot be bound)`, { where: 'metrics.port' });
    }
  }
  for (const [channelIndex, channel] of config.channels.entries()) {
    for (const [inputIndex, input] of channel.inputs.entries()) {
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

/** `ffmpeg` and `ffprobe` (FFMPEG_PATH / FFPROBE_PATH, else the PATH), for the roles that encode. */
export function checkFfmpegInstalled(role: Role): void {
  if (role === 'origin') return;
  const missing = (['ffmpeg', 'ffprobe'] as const).filter((tool) => {
    const fromEnv = process.env[tool === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH'];
    return !(fromEnv ? isExecutable(fromEnv) : findOnPath(tool));
  });
  if (missing.length > 0) {
    throw new OnairError('ONAIR_FFMPEG_MISSING', `${missing.join(' and ')} not found; install FFmpeg with SRT support, e.g. \`sudo apt-get install ffmpeg\``);
  }
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
