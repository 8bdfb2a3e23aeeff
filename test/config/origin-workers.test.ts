/** `origin.workers` (src/config/config-schema.ts): a number or auto, with a Redis store only. */
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { isOnairError } from '../../src/errors.js';
import { rawTestChannel } from '../helpers/channel-config.js';

const REDIS = 'redis://127.0.0.1:6379/0';

function refusal(raw: Record<string, unknown>): string {
  try {
    resolveConfig(raw);
  } catch (error) {
    if (isOnairError(error) && error.code === 'ONAIR_CONFIG_INVALID') return error.message;
    throw error;
  }
  return 'accepted';
}

t.test('origin.workers takes a number of workers or auto, and is absent by default', async (t) => {
  t.equal(resolveConfig({ store: REDIS, channels: [rawTestChannel()] }).origin.workers, undefined);
  t.equal(resolveConfig({ store: REDIS, origin: { workers: 4 }, channels: [rawTestChannel()] }).origin.workers, 4);
  t.equal(resolveConfig({ store: REDIS, origin: { workers: 'auto' }, channels: [rawTestChannel()] }).origin.workers, 'auto');
});

t.test('a bad count, or workers with the memory store, is refused naming origin.workers', async (t) => {
  for (const workers of [0, 65, 1.5, 'all']) {
    t.match(refusal({ store: REDIS, origin: { workers }, channels: [rawTestChannel()] }), /origin\.workers: expected/, `workers: ${workers}`);
  }
  t.match(refusal({ origin: { workers: 2 }, channels: [rawTestChannel()] }), /origin\.workers: expected a Redis store/);
});
