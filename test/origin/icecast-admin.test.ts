/**
 * Icecast's admin metadata endpoint on the origin (src/origin/icecast-admin.ts), through
 * buildOrigin and fastify.inject over a memory store: Icecast's XML answer and the stored now
 * playing for `song=Artist - Title`, for `title`/`artist`, and in another `charset`; a wrong or
 * missing password is one 401 with Icecast's challenge whatever the mount; right password and
 * unknown mount is Icecast's "Source does not exist"; invalid UTF-8, another mode and an
 * over-long request are refused; without `origin.icecastAdmin` the path is a 404.
 */
import t, { type Test } from 'tap';
import { parseNowPlaying } from '../../src/media/now-playing.js';
import { buildOrigin } from '../../src/origin/origin-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const PASSWORD = 'admin-secret-12';
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const CHANNELS = [
  { id: 'fip', renditions: ['lofi', 'hifi'] },
  { id: 'fip-jazz', renditions: ['hifi'] },
];

async function origin(t: Test, withAdmin = true) {
  const store = new MemoryStore();
  const app = await buildOrigin({
    store,
    channels: CHANNELS,
    targetDurationSeconds: 4,
    ...(withAdmin ? { icecastAdmin: { credentials: { user: 'admin', password: PASSWORD }, store } } : {}),
  });
  t.teardown(() => app.close());
  const get = (query: string, authorization: string | null = basic('admin', PASSWORD)) =>
    app.inject({ method: 'GET', url: `/admin/metadata?${query}`, headers: authorization !== null ? { authorization } : {} });
  const stored = async (channel: string) => parseNowPlaying(await store.getNowPlaying(channel));
  return { get, stored };
}

t.test('updinfo sets the now playing of the mount\'s channel and answers Icecast\'s XML', async (t) => {
  const { get, stored } = await origin(t);
  const answer = await get('mount=/fip-hifi.aac&mode=updinfo&song=Artist%20-%20Title');
  t.equal(answer.statusCode, 200);
  t.match(answer.headers['content-type'], /^text\/xml/);
  t.equal(answer.body, '<?xml version="1.0"?>\n<iceresponse><message>Metadata update successful</message><return>1</return></iceresponse>\n');
  t.match(await stored('fip'), { artist: 'Artist', title: 'Title' });
  t.equal(await stored('fip-jazz'), null, 'the other channel is untouched');

  await get('mount=%2Ffip-jazz-hifi.mp3&mode=updinfo&title=So+What&artist=Miles+Davis');
  t.match(await stored('fip-jazz'), { artist: 'Miles Davis', title: 'So What' }, 'title and artist parameters, an .mp3 mount, a dashed channel id');
  await get('mount=/fip-lofi.aac&mode=updinfo&song=Caf%E9%20-%20Cr%E8me&charset=ISO-8859-1');
  t.match(await stored('fip'), { artist: 'Café', title: 'Crème' }, 'charset honoured');
});

t.test('a wrong or missing password is one 401 with the challenge, whatever the mount', async (t) => {
  const { get, stored } = await origin(t);
  const answers = await Promise.all([
    get('mount=/fip-hifi.aac&mode=updinfo&song=x', basic('admin', 'wrong-password')),
    get('mount=/nope-hifi.aac&mode=updinfo&song=x', basic('admin', 'wrong-password')),
    get('mount=/fip-hifi.aac&mode=updinfo&song=x', null),
    get('mount=/nope-hifi.aac&mode=updinfo&song=x', basic('source', PASSWORD)),
  ]);
  for (const answer of answers) {
    t.equal(answer.statusCode, 401);
    t.equal(answer.headers['www-authenticate'], 'Basic realm="Icecast2 Server"');
  }
  t.equal(new Set(answers.map((answer) => answer.body)).size, 1, 'the same body for an existing and an unknown mount');
  t.equal(await stored('fip'), null);
});

t.test('right password: unknown mount, bad text, another mode, a long request are refused with Icecast XML', async (t) => {
  const { get, stored } = await origin(t);
  const unknown = await get('mount=/nope-hifi.aac&mode=updinfo&song=x');
  t.equal(unknown.statusCode, 400);
  t.match(unknown.body, /<message>Source does not exist<\/message><return>0<\/return>/);
  const fipOnly = await get('mount=/fip-midfi.aac&mode=updinfo&song=x');
  t.equal(fipOnly.statusCode, 400, 'a rendition the channel does not have');
  const badUtf8 = await get('mount=/fip-hifi.aac&mode=updinfo&song=caf%C3%28');
  t.equal(badUtf8.statusCode, 400);
  t.match(badUtf8.body, /song: not valid utf-8/);
  t.equal((await get('mount=/fip-hifi.aac&mode=updinfo&song=x&charset=klingon')).statusCode, 400);
  t.equal((await get('mount=/fip-hifi.aac&mode=killclient&song=x')).statusCode, 400);
  t.equal((await get('mount=/fip-hifi.aac&mode=updinfo')).statusCode, 400, 'no song nor title');
  t.equal((await get(`mount=/fip-hifi.aac&mode=updinfo&song=${'a'.repeat(5000)}`)).statusCode, 400, 'over-long request');
  t.equal(await stored('fip'), null, 'nothing stored');
});

t.test('without origin.icecastAdmin the path is a plain 404', async (t) => {
  const { get } = await origin(t, false);
  const answer = await get('mount=/fip-hifi.aac&mode=updinfo&song=x');
  t.equal(answer.statusCode, 404);
  t.equal(answer.json().error, 'not_found');
});

t.test('an address that guesses the password is locked out with 429 + Retry-After, even with the right one', async (t) => {
  const { get, stored } = await origin(t);
  for (let attempt = 1; attempt <= 5; attempt++) {
    t.equal((await get('mount=/fip-hifi.aac&mode=updinfo&song=x', basic('admin', `guess-${attempt}`))).statusCode, 401);
  }
  const locked = await get('mount=/fip-hifi.aac&mode=updinfo&song=x');
  t.equal(locked.statusCode, 429);
  t.equal(locked.headers['retry-after'], '1');
  t.match(locked.body, /<message>Too many failed logins; try again later<\/message>/);
  t.equal(await stored('fip'), null, 'nothing was set');
});
