/**
 * The control API's now playing (src/api/now-playing-routes.ts) with fastify.inject over a
 * memory store: PUT stores the cleaned update and answers it, GET reads it back; bearer auth
 * as every API call; unknown channel 404; a bad field 400 naming it; invalid UTF-8 in the raw
 * body refused with 400 (JSON.parse would have aired U+FFFD); over-long text truncated.
 */
import Fastify from 'fastify';
import t, { type Test } from 'tap';
import { controlApi } from '../../src/api/control-api.js';
import { resolveConfig } from '../../src/config/load-config.js';
import { MAX_NOW_PLAYING_TEXT, parseNowPlaying } from '../../src/media/now-playing.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const TOKEN = 'operator-token-0123456789';
const CONFIG = resolveConfig({ channels: [{ id: 'fip', renditions: [{ id: 'hifi', bitrate: '96k' }], inputs: [{ id: 'main', url: '/tmp/x.aac' }] }] });

async function api(t: Test) {
  const store = new MemoryStore();
  const app = Fastify({ logger: false });
  await app.register(controlApi, { prefix: '/api', tokens: [TOKEN], store, channels: () => CONFIG.channels, ingest: () => undefined, listeners: () => undefined });
  t.teardown(() => app.close());
  const put = (body: string | Buffer, channel = 'fip', token = TOKEN) =>
    app.inject({ method: 'PUT', url: `/api/channels/${channel}/now-playing`, payload: body, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
  const get = (channel = 'fip') => app.inject({ method: 'GET', url: `/api/channels/${channel}/now-playing`, headers: { authorization: `Bearer ${TOKEN}` } });
  return { app, store, put, get };
}

t.test('PUT stores the update for every origin and answers it; GET reads it back', async (t) => {
  const { store, put, get } = await api(t);
  t.equal((await get()).statusCode, 404, 'nothing set yet');
  const update = { title: 'Blue in Green', artist: 'Miles Davis', album: 'Kind of Blue', artworkUrl: 'https://img.example/kob.jpg', durationSeconds: 337.5 };
  const answer = await put(JSON.stringify(update));
  t.equal(answer.statusCode, 200);
  t.match(answer.json(), { ...update, setAt: Number });
  t.equal(answer.headers['cache-control'], 'no-store');
  t.match(parseNowPlaying(await store.getNowPlaying('fip')), update, 'in the store, as origins read it');
  t.match((await get()).json(), update);
});

t.test('the bearer token is required, an unknown channel is 404', async (t) => {
  const { put } = await api(t);
  t.equal((await put('{"title":"x"}', 'fip', 'wrong-token-0123456789')).statusCode, 403);
  const unknown = await put('{"title":"x"}', 'nope');
  t.equal(unknown.statusCode, 404);
  t.equal(unknown.json().error, 'not_found');
});

t.test('an invalid update is 400 naming the field; over-long text is truncated, control characters stripped', async (t) => {
  const { put } = await api(t);
  for (const [body, field] of [
    ['{"artist":"no title"}', 'title'],
    ['{"title":42}', 'title'],
    ['{"title":"x","durationSeconds":-1}', 'durationSeconds'],
    ['{"title":"x","artworkUrl":"javascript:alert(1)"}', 'artworkUrl'],
    ['{"title":"x","mood":"blue"}', 'mood'],
    ['["title"]', ''],
    ['{"title":', 'body'],
  ] as const) {
    const answer = await put(body);
    t.equal(answer.statusCode, 400, body);
    t.equal(answer.json().error, 'now_playing_invalid', body);
    if (field !== '') t.match(answer.json().message, new RegExp(`^${field}:`), `${body} names ${field}`);
  }
  const long = await put(JSON.stringify({ title: `é${'a'.repeat(1000)}\u0007\n` }));
  t.equal(long.statusCode, 200);
  t.equal([...long.json().title].length, MAX_NOW_PLAYING_TEXT, 'truncated to the documented length');
  const controls = await put(JSON.stringify({ title: 'A\u0000B\u001bC\u009fD' }));
  t.equal(controls.json().title, 'ABCD');
});

t.test('invalid UTF-8 in the body is refused with 400, not replaced', async (t) => {
  const { put, store } = await api(t);
  const body = Buffer.concat([Buffer.from('{"title":"caf'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
  const answer = await put(body);
  t.equal(answer.statusCode, 400);
  t.equal(answer.json().error, 'invalid_encoding');
  t.equal(await store.getNowPlaying('fip'), null, 'nothing stored');
  const valid = await put(Buffer.from('{"title":"café ♪"}'));
  t.equal(valid.json().title, 'café ♪', 'valid multi-byte text passes');
});
