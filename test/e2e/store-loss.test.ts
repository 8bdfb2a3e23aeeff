/**
 * A URI is never reused, even after the store lost everything (docs/architecture.md, Sequence):
 * a real `onair start` on a real redis-server, a real FFmpeg tone over SRT, and
 * the shipped Varnish config in front caching segments as immutable. onair is stopped, Redis
 * is emptied (FLUSHALL) and onair starts again with another tone: the new playlists must
 * name other URIs and other MSNs than anything served before, and Varnish, which still holds
 * the old segments, must serve the new audio for every new URI.
 */
import t from 'tap';
import { parseSegmentUri } from '../../src/hls/published-names.js';
import { parsePlaylist } from '../helpers/m3u8.js';
import { originUrl, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { redisCli, startRedisServer } from '../helpers/redis-server.js';
import { startVarnish } from '../helpers/varnish.js';

const READY = /"msg":"ingest started"/;
const RENDITION = 'hifi';

interface Listed {
  mediaSequence: number;
  uris: string[];
  /** PROGRAM-DATE-TIME of the first segment listed (ms). */
  firstProgramDateTime: number;
}

async function listed(base: string): Promise<Listed | undefined> {
  const response = await fetch(`${base}/fip/fip_${RENDITION}.m3u8`);
  if (response.status !== 200) return undefined;
  const { manifest } = parsePlaylist(await response.text());
  return {
    mediaSequence: manifest.mediaSequence ?? 0,
    uris: manifest.segments.map((segment) => segment.uri),
    firstProgramDateTime: manifest.segments[0]?.programDateTime ?? 0,
  };
}

async function segmentBytes(base: string, uri: string): Promise<{ status: number; cache: string | null; bytes: Buffer }> {
  const response = await fetch(`${base}/fip/${uri}`);
  return { status: response.status, cache: response.headers.get('x-cache'), bytes: Buffer.from(await response.arrayBuffer()) };
}

t.test('after FLUSHALL and a restart, URIs and MSNs are new and Varnish serves the new audio', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const config = await testConfig({ store: redis.url, segmentSeconds: 1 });
  const origin = originUrl(config);
  const firstSender = startSender(t, config, 440);
  const before = await startOnairProcess(t, { role: 'start', config, readyPattern: READY });
  const varnish = await startVarnish(t, { backendPort: config.origin.port });

  // Players behind Varnish: every segment listed over a few seconds is fetched, hence cached.
  const cached = new Map<string, Buffer>();
  const msnsBefore = new Set<number>();
  await waitFor('ten segments cached by Varnish', async () => {
    const playlist = await listed(varnish.url);
    for (const uri of playlist?.uris ?? []) {
      if (cached.has(uri)) continue;
      const { status, bytes } = await segmentBytes(varnish.url, uri);
      if (status === 200) cached.set(uri, bytes);
      msnsBefore.add(parseSegmentUri(uri)!.msn);
    }
    return cached.size >= 10 ? true : undefined;
  });
  const hits = await Promise.all([...cached.keys()].slice(-3).map((uri) => segmentBytes(varnish.url, uri)));
  t.same(hits.map((hit) => hit.cache), ['HIT', 'HIT', 'HIT'], 'Varnish holds the segments it served');

  await before.stop();
  await firstSender.close();
  t.equal((await redisCli(['-p', String(redis.port), 'FLUSHALL'])).trim(), 'OK', 'the store lost everything');
  t.equal((await redisCli(['-p', String(redis.port), 'DBSIZE'])).trim(), '0');

  const restartedAt = Date.now();
  startSender(t, config, 880);
  const after = await startOnairProcess(t, { role: 'start', config, readyPattern: READY });
  t.match(after.output(), /no stored sequence state: starting at the wall-clock MSN/, 'the new run starts from the wall clock');
  const newPlaylist = await waitFor(
    'six segments of the new run through Varnish',
    async () => {
      const playlist = await listed(varnish.url);
      return playlist && playlist.uris.length >= 6 && playlist.firstProgramDateTime >= restartedAt ? playlist : undefined;
    },
    30_000,
  );

  const reused = newPlaylist.uris.filter((uri) => cached.has(uri));
  t.strictSame(reused, [], 'no URI of the new playlist was served before');
  const newMsns = newPlaylist.uris.map((uri) => parseSegmentUri(uri)!.msn);
  t.strictSame(newMsns.filter((msn) => msnsBefore.has(msn)), [], 'no MSN of the new playlist was served before');
  t.ok(newPlaylist.mediaSequence > Math.max(...msnsBefore), `the media sequence jumped forward (${Math.max(...msnsBefore)} → ${newPlaylist.mediaSequence})`);
  const runsBefore = new Set([...cached.keys()].map((uri) => parseSegmentUri(uri)!.run));
  const runsAfter = new Set(newPlaylist.uris.map((uri) => parseSegmentUri(uri)!.run));
  t.equal(runsBefore.size, 1);
  t.ok(![...runsAfter].some((run) => runsBefore.has(run)), 'the new run has another run id');

  // Every URI listed now is the new audio through Varnish: the bytes the origin holds now,
  // none of the bytes cached before the loss.
  const oldBytes = new Set([...cached.values()].map((bytes) => bytes.toString('base64')));
  for (const uri of newPlaylist.uris) {
    const throughVarnish = await segmentBytes(varnish.url, uri);
    const fromOrigin = await segmentBytes(origin, uri);
    t.equal(throughVarnish.status, 200, `${uri} is served`);
    t.ok(throughVarnish.bytes.equals(fromOrigin.bytes), `${uri}: Varnish serves what the origin holds now`);
    t.notOk(oldBytes.has(throughVarnish.bytes.toString('base64')), `${uri}: not audio cached before the loss`);
  }
});
