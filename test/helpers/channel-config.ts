/** The channel most unit tests use: `fip` with lofi 32k and hifi 192k, one SRT listener input. */
import type { ChannelConfig } from '../../src/config/config-schema.js';
import { resolveConfig } from '../../src/config/load-config.js';

/** The raw (file-like) channel, with `overrides` on top (e.g. `{ lowLatency: true }`). */
export function rawTestChannel(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'fip',
    renditions: [
      { id: 'lofi', bitrate: '32k' },
      { id: 'hifi', bitrate: '192k' },
    ],
    inputs: [{ id: 'main', url: 'srt://0.0.0.0:9000?mode=listener', srt: { passphrase: 'onair-test-passphrase' } }],
    ...overrides,
  };
}

/** That channel resolved as the config loader does, for `hls.segmentSeconds` = segmentSeconds. */
export function testChannel(overrides: Record<string, unknown> = {}, segmentSeconds = 4): ChannelConfig {
  return resolveConfig({ hls: { segmentSeconds }, channels: [rawTestChannel(overrides)] }).channels[0]!;
}
