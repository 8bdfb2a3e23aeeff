/**
 * `onair demo` (what `npm start` runs): the whole pipeline on the embedded store. One
 * channel `fip` with three AAC renditions and an MP3 one, fed by a test tone that FFmpeg
 * pushes over a local SRT connection to the channel's SRT listener, so the real ingest path
 * runs; its now playing is set once, so the title shows in every format.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { resolveConfig } from './config/load-config.js';
import { serializeNowPlaying } from './media/now-playing.js';
import type { OnairConfig } from './config/config-schema.js';
import { TestSignalSender } from './ffmpeg/test-signal-sender.js';
import { inputUrlWithOptions } from './ingest/input-worker.js';
import { startOnair, type RunningOnair } from './onair.js';

/** The demo channel's renditions: a low, a mid and a high bit rate, as radios publish them. */
export const DEMO_RENDITIONS = [
  { id: 'lofi', bitrate: '32k' },
  { id: 'midfi', bitrate: '96k' },
  { id: 'hifi', bitrate: '192k' },
] as const;

/** The demo's MP3 rendition, for Icecast-style listeners (`/fip-mp3.mp3`); not in the HLS master. */
export const DEMO_MP3_RENDITION = { id: 'mp3', bitrate: '128k', codec: 'mp3' } as const;

/** What the demo's now playing says until someone sets another (API, Icecast admin). */
export const DEMO_NOW_PLAYING = { title: 'Test tone', artist: 'onair demo' } as const;

export function demoConfig(environment: NodeJS.ProcessEnv): OnairConfig {
  const srtPort = Number(environment.ONAIR_DEMO_SRT_PORT ?? 9000);
  return resolveConfig(
    {
      store: 'memory',
      origin: { host: '127.0.0.1', port: 8080 },
      hls: { segmentSeconds: 4, windowSegments: 6 },
      channels: [
        {
          id: 'fip',
          renditions: [...DEMO_RENDITIONS, DEMO_MP3_RENDITION],
          icy: { name: 'onair demo', description: 'a test tone through the whole pipeline', genre: 'Test' },
          // The listener takes only callers that know the passphrase, as any SRT listener must.
          inputs: [{ id: 'main', url: `srt://127.0.0.1:${srtPort}?mode=listener`, srt: { passphrase: demoPassphrase() } }],
        },
      ],
    },
    environment,
  );
}

/** A fresh SRT passphrase per run (32 hex digits): the demo's sender is the only caller that knows it. */
function demoPassphrase(): string {
  return randomBytes(16).toString('hex');
}

export interface RunningDemo {
  onair: RunningOnair;
  close(): Promise<void>;
}

export async function startDemo(config: OnairConfig, logger: Logger): Promise<RunningDemo> {
  const onair = await startOnair({ config, role: 'start', logger });
  await onair.store.putNowPlaying('fip', serializeNowPlaying({ ...DEMO_NOW_PLAYING, setAt: Date.now() }));
  const sender = new TestSignalSender({
    // The input's own URL with its SRT options (the passphrase), as a caller.
    outputUrl: inputUrlWithOptions(config.channels[0]!.inputs[0]!).replace('mode=listener', 'mode=caller'),
    logger: logger.child({ component: 'demo-sender' }),
    // The SRT listener is FFmpeg's: give it a moment to bind before calling it.
    initialDelayMs: 1000,
  });
  sender.start();
  return {
    onair,
    close: async () => {
      await sender.close();
      await onair.close();
    },
  };
}
