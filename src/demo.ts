/**
 * `onair demo` (what `npm start` runs): the whole pipeline on the embedded store. One
 * channel `fip` with three AAC renditions, fed by a test tone that FFmpeg pushes over a
 * local SRT connection to the channel's SRT listener, so the real ingest path runs.
 */
import type { Logger } from 'pino';
import { resolveConfig } from './config/load-config.js';
import type { OnairConfig } from './config/config-schema.js';
import { startTestSignal, type FfmpegProcess } from './ingest/ffmpeg-adapter.js';
import { backoffDelay } from './ingest/input-worker.js';
import { startOnair, type RunningOnair } from './onair.js';

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
          renditions: [
            { id: 'lofi', bitrate: '32k' },
            { id: 'midfi', bitrate: '96k' },
            { id: 'hifi', bitrate: '192k' },
          ],
          inputs: [{ id: 'main', url: `srt://127.0.0.1:${srtPort}?mode=listener` }],
        },
      ],
    },
    environment,
  );
}

export interface RunningDemo {
  onair: RunningOnair;
  close(): Promise<void>;
}

export async function startDemo(config: OnairConfig, logger: Logger): Promise<RunningDemo> {
  const onair = await startOnair({ config, role: 'start', logger });
  const target = config.channels[0]!.inputs[0]!.url.replace('mode=listener', 'mode=caller');
  const senderLogger = logger.child({ component: 'demo-sender' });
  let sender: FfmpegProcess | undefined;
  let stopped = false;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  const launch = (): void => {
    sender = startTestSignal(
      { outputUrl: target },
      {
        onStderrLine: (line) => senderLogger.debug({ ffmpeg: line }),
        onExit: (exit) => {
          if (stopped) return;
          failures += 1;
          const delay = backoffDelay(failures);
          senderLogger.info({ reason: exit.reason, retryInMs: delay }, 'test signal sender stopped; retrying');
          timer = setTimeout(launch, delay);
        },
      },
    );
  };
  // The SRT listener is FFmpeg's: give it a moment to bind before calling it.
  timer = setTimeout(launch, 1000);
  return {
    onair,
    close: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      sender?.kill('SIGTERM');
      await onair.close();
    },
  };
}
