/**
 * The whole path, all real: FFmpeg pushes a test tone over SRT (caller) into the
 * channel's SRT listener; onair's FFmpeg encodes three AAC renditions; the Node
 * packager segments, muxes and publishes to the store (memory, then a real
 * redis-server); the Fastify origin serves it; FFmpeg plays it as an HLS client while
 * a verifying listener checks every playlist and segment.
 */
import { spawn } from 'node:child_process';
import t, { type Test } from 'tap';
import { HlsVerifier, type VerifierReport } from '../helpers/hls-verifier.js';
import { parsePlaylist } from '../helpers/m3u8.js';
import {
  originUrl,
  playlistSegmentCount,
  RENDITIONS,
  startRole,
  startSender,
  testConfig,
  waitFor,
} from '../helpers/onair-harness.js';
import { startRedisServer } from '../helpers/redis-server.js';

const PLAY_SECONDS = 20;

/** FFmpeg as an HLS client: plays `seconds` of the live stream, decoding it; returns its error output. */
function playWithFfmpeg(url: string, seconds: number): Promise<{ code: number | null; errors: string }> {
  return new Promise((resolve) => {
    const child = spawn('ffmpeg', ['-nostdin', '-v', 'error', '-i', url, '-map', '0:a:0', '-t', String(seconds), '-f', 'null', '-'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let errors = '';
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 40) * 1000);
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, errors });
    });
  });
}

function assertCleanReport(t: Test, report: VerifierReport, minimumSegments: number): void {
  t.same(report.errors, [], 'the verifying listener saw no broken rule');
  for (const rendition of RENDITIONS) {
    t.ok(report.segments[rendition]!.length >= minimumSegments, `${rendition}: ${report.segments[rendition]!.length} segments checked`);
  }
}

for (const storeKind of ['memory', 'redis'] as const) {
  t.test(`live stream through the ${storeKind} store plays in FFmpeg without one error`, async (t) => {
    let storeUrl = 'memory';
    if (storeKind === 'redis') {
      const redis = await startRedisServer();
      t.teardown(() => redis.stop());
      storeUrl = `${redis.url}/0`;
    }
    const config = await testConfig({ store: storeUrl, segmentSeconds: 1 });
    await startRole(t, config, 'start');
    startSender(t, config);
    const base = originUrl(config);
    await waitFor('four segments', async () => ((await playlistSegmentCount(`${base}/fip/fip_hifi.m3u8`)) >= 4 ? true : undefined));

    const verifier = new HlsVerifier({ baseUrl: base, channel: 'fip', renditions: RENDITIONS, pollIntervalMs: 400 });
    verifier.start();
    const played = await playWithFfmpeg(`${base}/fip/fip.m3u8`, PLAY_SECONDS);
    const report = await verifier.stop();

    t.equal(played.code, 0, 'FFmpeg exits cleanly');
    t.equal(played.errors.trim(), '', 'FFmpeg printed no error while decoding');
    assertCleanReport(t, report, PLAY_SECONDS - 4);
    t.equal(report.targetDuration, 1, 'TARGETDURATION is the configured segment length');
    t.ok(report.maxNewSegmentGapMs <= 1500, `new segments arrived at most ${report.maxNewSegmentGapMs} ms apart (≤ 1.5 × TD)`);

    const master = parsePlaylist(await (await fetch(`${base}/fip/fip.m3u8`)).text()).manifest;
    t.equal(master.playlists?.length, 3, 'master lists the three renditions');
    for (const variant of master.playlists ?? []) {
      const rendition = variant.uri.replace(/^fip_|\.m3u8$/g, '');
      t.equal(variant.attributes.CODECS, 'mp4a.40.2', `${rendition}: CODECS is AAC-LC`);
      const bandwidth = Number(variant.attributes.BANDWIDTH);
      const sizes = await Promise.all(
        report.segments[rendition]!.slice(-5).map(async (segment) => {
          const body = await fetch(`${base}/fip/${segment.uri}`);
          return body.status === 200 ? ((await body.arrayBuffer()).byteLength * 8) / segment.extinf : 0;
        }),
      );
      t.ok(Math.max(...sizes) <= bandwidth, `${rendition}: no segment exceeds BANDWIDTH ${bandwidth}`);
      t.ok(Math.max(...sizes) < bandwidth * 1.25, `${rendition}: measured peak is within 125 % of BANDWIDTH`);
    }
  });
}

t.test('a restarted packager continues the playlist: MSN up, one discontinuity, no reused URI', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const config = await testConfig({ store: `${redis.url}/0`, segmentSeconds: 1 });
  await startRole(t, config, 'origin');
  let ingest = await startRole(t, config, 'ingest');
  startSender(t, config);
  const base = originUrl(config);
  await waitFor('four segments', async () => ((await playlistSegmentCount(`${base}/fip/fip_hifi.m3u8`)) >= 4 ? true : undefined));

  const verifier = new HlsVerifier({ baseUrl: base, channel: 'fip', renditions: RENDITIONS, pollIntervalMs: 300 });
  verifier.start();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  await ingest.close();
  ingest = await startRole(t, config, 'ingest');
  const before = (await fetch(`${base}/fip/fip_hifi.m3u8`).then((response) => response.text())).match(/#EXT-X-MEDIA-SEQUENCE:(\d+)/)![1];
  await waitFor(
    'six segments after the restart',
    async () => {
      const text = await (await fetch(`${base}/fip/fip_hifi.m3u8`)).text();
      const afterDiscontinuity = text.split('#EXT-X-DISCONTINUITY\n')[1];
      return afterDiscontinuity && afterDiscontinuity.split('#EXTINF').length - 1 >= 6 ? true : undefined;
    },
    40_000,
  );
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const report = await verifier.stop();

  t.same(report.errors, [], 'the verifying listener saw no broken rule across the restart');
  t.equal(report.discontinuities, 1, 'exactly one EXT-X-DISCONTINUITY, at the restart');
  for (const rendition of RENDITIONS) {
    const segments = report.segments[rendition]!;
    const msns = segments.map((segment) => segment.msn);
    t.same(msns, [...msns].sort((a, b) => a - b), `${rendition}: MSNs only go up`);
    t.equal(new Set(segments.map((segment) => segment.uri)).size, segments.length, `${rendition}: every URI is new`);
    t.ok(msns.every((msn, index) => index === 0 || msn === msns[index - 1]! + 1), `${rendition}: no MSN is skipped`);
    const restartedAt = segments.findIndex((segment) => segment.discontinuity);
    t.ok(restartedAt > 0, `${rendition}: segments from both runs were checked`);
    t.not(segments[restartedAt]!.uri.split('-')[1], segments[restartedAt - 1]!.uri.split('-')[1], `${rendition}: the new run writes new URIs`);
  }
  t.ok(Number(before) >= 0, 'the media sequence survived the restart');
});
