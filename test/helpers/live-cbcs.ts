/**
 * A live `encryption: cbcs` channel for the players' end-to-end tests: a real `onair start`
 * (memory store) with one signed fMP4 AAC rendition, a new key every `rotation` segments,
 * FFmpeg's tone over SRT; returns the origin and a token of the channel.
 * docs/architecture.md, "Content encryption".
 */
import type { Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import type { OnairConfig } from '../../src/config/config-schema.js';
import { channelPathPrefix, signPath } from '../../src/origin/signed-urls.js';
import { loopbackSettings, originUrl, startSender } from './onair-harness.js';
import { startOnairProcess } from './onair-process.js';
import { freeUdpPort } from './ports.js';

export interface LiveCbcsChannel {
  config: OnairConfig;
  /** The origin's base URL. */
  base: string;
  /** The signed token of channel `fip`, valid for an hour. */
  token: string;
}

export async function startLiveCbcsChannel(
  t: Test,
  options: { rotation: number; hlsKeyFormats?: readonly string[]; /** `mpdLicenseBaseUrl`: the origin's own address (dashif:Laurl in the MPD). */ licenseInMpd?: boolean },
): Promise<LiveCbcsChannel> {
  const signingKey = 'an-hmac-key-of-thirty-two-characters!';
  const settings = await loopbackSettings(1);
  const raw = {
    store: 'memory',
    ...settings,
    signing: { key: signingKey },
    channels: [
      {
        id: 'fip',
        renditions: [{ id: 'hifi', bitrate: '128k' }],
        inputs: [{ id: 'main', url: `srt://127.0.0.1:${await freeUdpPort()}?mode=listener`, srt: { latency: 120, passphrase: 'onair-test-passphrase' } }],
        container: 'fmp4',
        access: 'signed',
        encryption: 'cbcs',
        keyRotationSegments: options.rotation,
        ...(options.hlsKeyFormats ? { hlsKeyFormats: options.hlsKeyFormats } : {}),
        ...(options.licenseInMpd ? { mpdLicenseBaseUrl: `http://127.0.0.1:${(settings.origin as { port: number }).port}` } : {}),
      },
    ],
  };
  const config = resolveConfig(raw);
  const token = signPath({ key: signingKey, pathPrefix: channelPathPrefix('fip'), expiresAt: Math.floor(Date.now() / 1000) + 3600 });
  await startOnairProcess(t, { role: 'start', config: raw, readyPattern: /"msg":"ingest started"/, readyTimeoutMs: 30_000 });
  startSender(t, config);
  return { config, base: originUrl(config), token };
}
