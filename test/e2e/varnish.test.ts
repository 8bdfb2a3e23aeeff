/**
 * The shipped Varnish config (deploy/varnish/default.vcl) on a real varnishd in front of a
 * real onair (memory store, a tone over SRT, 1 s segments): what is cached and for how
 * long, that a playlist update reaches clients within its max-age, that misses are not
 * pinned, that origin load stays nearly flat as listeners grow, that admin paths are refused
 * without reaching the origin, that Varnish's built-in rules still keep no-store answers
 * (/healthz) out of the cache, that progressive mounts are piped (streamed, never cached), and
 * that a dead origin's recent objects are still served (grace).
 */
import t from 'tap';
import { originUrl, startRole, startSender, testConfig, waitFor, waitForThreeSegments } from '../helpers/onair-harness.js';
import { parsePlaylist } from '../helpers/m3u8.js';
import { openStream } from '../helpers/progressive-listener.js';
import { rawExchange } from '../helpers/raw-http.js';
import { startVarnish } from '../helpers/varnish.js';
import { sleep } from '../helpers/wait-until.js';

const PLAYLIST = '/fip/fip_hifi.m3u8';

async function lastSegment(base: string): Promise<{ msn: number; uri: string }> {
  const { manifest } = parsePlaylist(await (await fetch(`${base}${PLAYLIST}`)).text());
  const msn = (manifest.mediaSequence ?? 0) + manifest.segments.length - 1;
  return { msn, uri: manifest.segments.at(-1)!.uri };
}

const config = await testConfig({ segmentSeconds: 1 });
const onair = await startRole(t, config, 'start');
startSender(t, config);
const origin = originUrl(config);
await waitForThreeSegments(origin);
const varnish = await startVarnish(t, { backendPort: config.origin.port });

t.test('segments are cached as immutable and playlists for their max-age, with Age kept', async (t) => {
  const { uri } = await lastSegment(varnish.url);
  const first = await fetch(`${varnish.url}/fip/${uri}`);
  const second = await fetch(`${varnish.url}/fip/${uri}`);
  t.equal(second.status, 200);
  t.equal(second.headers.get('x-cache'), 'HIT', 'the second request for a segment is a hit');
  t.match(second.headers.get('cache-control'), /immutable/, "the origin's Cache-Control goes through");
  t.ok(second.headers.get('age') !== null, 'Age is kept for the CDN');
  t.same(new Uint8Array(await second.arrayBuffer()), new Uint8Array(await first.arrayBuffer()));

  const before = await lastSegment(varnish.url);
  const cached = await fetch(`${varnish.url}${PLAYLIST}`);
  t.equal(cached.headers.get('x-cache'), 'HIT', 'a playlist fetched again within its max-age is a hit');
  // max-age is 1 s at TD 1 s, plus up to 2 s of grace while the origin is healthy: a new
  // segment is listed by Varnish within a few seconds, never pinned.
  const seen = await waitFor('a newer segment through Varnish', async () => {
    const now = await lastSegment(varnish.url);
    return now.msn > before.msn ? Date.now() : undefined;
  }, 5000);
  t.ok(seen, 'a playlist update reached clients through Varnish');
});

t.test('a 404 is not pinned: the next segment is served as soon as it exists', async (t) => {
  const { msn, uri } = await lastSegment(origin);
  const next = uri.replace(/^(\w+)\/\d+-/, `$1/${msn + 1}-`);
  const miss = await fetch(`${varnish.url}/fip/${next}`);
  t.equal(miss.status, 404, 'not there yet');
  await waitFor('the next segment at the origin', async () => ((await fetch(`${origin}/fip/${next}`)).status === 200 ? true : undefined), 5000);
  const listedAt = Date.now();
  await waitFor('the next segment through Varnish', async () => ((await fetch(`${varnish.url}/fip/${next}`)).status === 200 ? true : undefined), 3000);
  t.ok(Date.now() - listedAt <= 1500, `served through Varnish ${Date.now() - listedAt} ms after it existed (404s cached 1 s at most)`);
});

t.test('admin paths are refused by Varnish with a JSON 404 and never reach the origin', async (t) => {
  const before = await varnish.backendRequests();
  const refused: [string, string][] = [
    ['GET', '/metrics'],
    ['GET', '/metrics?format=text'],
    ['GET', '//metrics'],
    ['GET', '/api/channels'],
    ['GET', '/API/docs/json'],
    ['PUT', '/api/channels/fip/input'],
    ['POST', '/api/reload'],
    ['POST', '/ingest/access-log'],
    ['GET', '/listeners.json'],
    ['GET', '/admin/metadata?mode=updinfo'],
  ];
  for (const [method, path] of refused) {
    const response = await fetch(`${varnish.url}${path}`, { method, body: method === 'GET' ? undefined : '{"input":"main"}' });
    t.equal(response.status, 404, `${method} ${path}: 404`);
    t.equal(response.headers.get('content-type'), 'application/json; charset=utf-8');
    t.equal(((await response.json()) as { error: string }).error, 'not_found');
  }
  const port = Number(new URL(varnish.url).port);
  const absolute = await rawExchange(port, Buffer.from('GET http://radio.example/metrics HTTP/1.1\r\nHost: radio.example\r\nConnection: close\r\n\r\n'), {
    methods: ['GET'],
    halfClose: false,
    timeoutMs: 3000,
  });
  t.equal(absolute.responses[0]?.status, 404, 'an absolute-form request line too');
  t.equal(await varnish.backendRequests(), before, 'none of them reached the origin');
  t.equal((await fetch(`${varnish.url}/fip/fip.m3u8`)).status, 200, 'playlists still go through');
  t.equal((await fetch(onair.metricsUrl)).status, 200, 'the metrics are on the admin listener, for the operator');
});

t.test("a no-store answer is not cached (Varnish's built-in rules run after ours): /healthz reaches the origin every time", async (t) => {
  const before = await varnish.backendRequests();
  const first = await fetch(`${varnish.url}/healthz`);
  const second = await fetch(`${varnish.url}/healthz`);
  t.equal(first.status, 200);
  t.equal(second.status, 200);
  t.equal(second.headers.get('cache-control'), 'no-store');
  t.equal(second.headers.get('x-cache'), 'MISS', 'the second request is not a hit');
  t.ok((await varnish.backendRequests()) - before >= 2, 'both were fetched from the origin');
});

t.test('progressive mounts are piped through Varnish: live bytes flow on, nothing is cached, and the origin counts each listener', async (t) => {
  const port = Number(new URL(varnish.url).port);
  const listeners = await Promise.all([openStream(port, '/fip-hifi.aac'), openStream(port, '/fip-hifi.aac?player=2')]);
  t.teardown(() => listeners.forEach((listener) => listener.close()));
  for (const listener of listeners) {
    t.equal(listener.head.status, 200);
    t.equal(listener.header('content-type'), 'audio/aac');
    t.equal(listener.header('x-cache'), undefined, 'piped: Varnish did not deliver it from its cache');
  }
  const afterBurst = listeners.map((listener) => listener.body().length);
  await sleep(3000);
  listeners.forEach((listener, index) => {
    t.ok(listener.body().length > afterBurst[index]! + 10_000, `listener ${index}: new audio kept arriving through Varnish (${afterBurst[index]} → ${listener.body().length} bytes)`);
  });
  const counted = onair.origin!.onairMounts.stats().mounts.find((mount) => mount.rendition === 'hifi')!.listeners;
  t.equal(counted, 2, 'one backend connection per listener: the origin counts both');
  listeners.forEach((listener) => listener.close());
  await waitFor('the origin to see both leave', async () => (onair.origin!.onairMounts.stats().mounts.every((mount) => mount.listeners === 0) ? true : undefined), 5000);

  const before = await varnish.backendRequests();
  const status = await fetch(`${varnish.url}/status-json.xsl`);
  await fetch(`${varnish.url}/status-json.xsl`);
  t.equal(status.status, 200);
  t.equal(((await status.json()) as { icestats: { source: unknown[] } }).icestats.source.length, 3);
  t.ok((await varnish.backendRequests()) - before >= 2, 'the status is never served from the cache');
});

/** `listeners` players polling the playlist every second and fetching each new segment, for `seconds`. */
async function listen(base: string, listeners: number, seconds: number): Promise<{ errors: number }> {
  let errors = 0;
  const deadline = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: listeners }, async (_, index) => {
      const fetched = new Set<string>();
      await sleep((index * 997) % 1000); // players arrive spread over a second
      while (Date.now() < deadline) {
        try {
          const playlist = await fetch(`${base}${PLAYLIST}`);
          if (playlist.status !== 200) errors += 1;
          const { manifest } = parsePlaylist(await playlist.text());
          for (const segment of manifest.segments.slice(-2)) {
            if (fetched.has(segment.uri)) continue;
            fetched.add(segment.uri);
            const response = await fetch(`${base}/fip/${segment.uri}`);
            if (response.status !== 200) errors += 1;
            await response.arrayBuffer();
          }
        } catch {
          errors += 1;
        }
        await sleep(1000);
      }
    }),
  );
  return { errors };
}

t.test('origin requests stay nearly flat as listeners grow from 10 to 200', async (t) => {
  const origin10 = await varnish.backendRequests();
  const few = await listen(varnish.url, 10, 6);
  const origin200 = await varnish.backendRequests();
  const many = await listen(varnish.url, 200, 6);
  const after = await varnish.backendRequests();
  const forFew = origin200 - origin10;
  const forMany = after - origin200;
  t.equal(few.errors + many.errors, 0, 'no listener saw an error');
  t.ok(forMany <= 2 * forFew + 5, `origin requests: ${forFew} for 10 listeners, ${forMany} for 200 (each over 6 s)`);
});

t.test('with the origin down, Varnish still serves recent segments and the last playlist (grace)', async (t) => {
  const { uri } = await lastSegment(varnish.url);
  await fetch(`${varnish.url}/fip/${uri}`);
  const closing = Date.now();
  await onair.close();
  // Varnish holds keep-alive connections for a minute: the origin must not wait for them.
  t.ok(Date.now() - closing < 5000, `onair stopped in ${Date.now() - closing} ms with Varnish connected`);
  // The health probe needs a couple of failures to mark the origin sick.
  await sleep(3500);
  const segment = await fetch(`${varnish.url}/fip/${uri}`);
  t.equal(segment.status, 200, 'a recent segment is still served');
  const playlist = await fetch(`${varnish.url}${PLAYLIST}`);
  t.equal(playlist.status, 200, 'the last playlist is served from grace instead of an error');
});
