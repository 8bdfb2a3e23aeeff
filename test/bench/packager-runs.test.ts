/**
 * bench:packager's sides measure what they say (the built dist/bench, which `npm test` builds
 * first): on 20 s of real AAC from FFmpeg's encoder, the onair worker packages MPEG-TS and
 * fMP4, with and without Low-Latency parts, and each FFmpeg muxer (HLS TS, HLS fMP4, DASH,
 * DASH with 0.5 s chunks) writes segments that are counted, init segments apart. The byte
 * figures are exact, so the fMP4 targets of issue 14 are checked here as behaviour: fMP4
 * costs less container than MPEG-TS on the same raw payload, with and without parts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

type Runs = typeof import('../../bench/packager-runs.js');
type Fixtures = typeof import('../../bench/aac-fixture.js');
const DIST_BENCH = join(import.meta.dirname, '..', '..', 'dist', 'bench');
const SECONDS = 20;
const ADTS_HEADER_BYTES = 7;
const TS_PACKET_BYTES = 188;

t.test('every side of bench:packager counts its segments, payload and init bytes', async (t) => {
  const runs = (await import(join(DIST_BENCH, 'packager-runs.js'))) as Runs;
  const fixtures = (await import(join(DIST_BENCH, 'aac-fixture.js'))) as Fixtures;
  const cacheDirectory = await mkdtemp(join(tmpdir(), 'onair-bench-test-'));
  t.teardown(() => rm(cacheDirectory, { recursive: true, force: true }));
  const fixture = (await fixtures.ensureFixtures({ cacheDirectory, seconds: SECONDS, bitrates: ['32k'], parallel: 1, progress: () => {} })).get('32k')!;
  t.equal(fixture.rawBytes, fixture.bytes - fixture.frames * ADTS_HEADER_BYTES, 'raw payload = ADTS bytes − a 7-byte header per frame');

  const onair = { path: fixture.path, bitrate: '32k', sampleRate: fixtures.FIXTURE_SAMPLE_RATE };
  const ts = await runs.runOnairWorker(onair);
  const fmp4 = await runs.runOnairWorker({ ...onair, container: 'fmp4' });
  const tsLl = await runs.runOnairWorker({ ...onair, partSeconds: 0.5 });
  const fmp4Ll = await runs.runOnairWorker({ ...onair, container: 'fmp4', partSeconds: 0.5 });
  for (const [name, run] of Object.entries({ ts, fmp4, tsLl, fmp4Ll })) {
    t.ok(run.segments >= SECONDS / 4 - 1, `${name}: ${run.segments} segments of 4 s`);
    t.equal(run.adtsBytes - run.rawBytes, (run.audioSeconds * onair.sampleRate / 1024) * ADTS_HEADER_BYTES, `${name}: raw = ADTS − headers of the packaged frames`);
    t.ok(run.wireBytes > run.rawBytes, `${name}: the wire carries the payload and a container`);
    t.ok(run.cpuSeconds > 0, `${name}: CPU measured`);
  }
  t.equal(ts.wireBytes % TS_PACKET_BYTES, 0, 'MPEG-TS segments are whole packets');
  t.equal(tsLl.wireBytes % TS_PACKET_BYTES, 0, 'MPEG-TS parts are whole packets');
  t.equal(ts.initBytes, 0, 'no init segment for MPEG-TS');
  t.ok(fmp4.initBytes > 0 && fmp4Ll.initBytes === fmp4.initBytes, 'the fMP4 channel has an init segment');
  t.ok(tsLl.wireBytes > ts.wireBytes, 'parts cost MPEG-TS more container');
  t.ok(fmp4Ll.wireBytes > fmp4.wireBytes, 'parts cost fMP4 more container (a moof per part)');
  t.ok(fmp4.wireBytes < ts.wireBytes, 'fMP4 costs less than MPEG-TS over the same frames');
  t.ok(fmp4Ll.wireBytes < tsLl.wireBytes, 'with 0.5 s parts too');

  const formats = ['hls', 'hls-fmp4', 'dash', 'dash-chunks'] as const;
  const ffmpeg = Object.fromEntries(await Promise.all(formats.map(async (format) => [format, await runs.runFfmpeg(fixture, format, 0.5)] as const)));
  for (const format of formats) {
    const run = ffmpeg[format]!;
    t.ok(run.segments >= SECONDS / 4, `${format}: ${run.segments} segments`);
    t.ok(run.wireBytes > run.rawBytes, `${format}: the wire carries the payload and a container`);
  }
  t.equal(ffmpeg.hls!.initBytes, 0, 'FFmpeg HLS TS: no init segment');
  t.equal(ffmpeg.hls!.wireBytes % TS_PACKET_BYTES, 0, 'FFmpeg HLS TS: whole packets');
  for (const format of ['hls-fmp4', 'dash', 'dash-chunks'] as const) t.ok(ffmpeg[format]!.initBytes > 0, `${format}: its init segment counted apart`);
  t.ok(ffmpeg['dash-chunks']!.wireBytes > ffmpeg.dash!.wireBytes, 'DASH with 0.5 s chunks writes a moof per chunk');
});
