/**
 * One channel's fault stays in that channel (src/pipeline/channel-pipeline.ts, ingest-service.ts):
 * two channels run for real (FFmpeg playing a tone file into each), and one of them gets a
 * packager that throws on its third segment. No real feed can make a stage throw (the parsers
 * resynchronise on bad bytes), so the fault is injected through the one seam for it: that
 * channel's muxers (`muxersFor`). The faulty channel is restarted and airs again; the other
 * one is never touched (same pipeline, consecutive MSNs, no discontinuity); the restart is
 * counted by stage in the metrics, and the error is logged with its code.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import type { WindowSegment } from '../../src/hls/sequence-state.js';
import type { MuxerFactory } from '../../src/media/muxer.js';
import { mpegTsMuxers } from '../../src/media/ts-muxer.js';
import { OnairMetrics } from '../../src/metrics/onair-metrics.js';
import type { ChannelPipeline } from '../../src/pipeline/channel-pipeline.js';
import { IngestService } from '../../src/pipeline/ingest-service.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { waitFor } from '../helpers/onair-harness.js';
import { run } from '../helpers/recording.js';

/** MPEG-TS muxers that throw once, on the `nth` segment any of them is asked for. */
function throwingOnce(nth: number): MuxerFactory & { thrown: boolean } {
  let calls = 0;
  const factory = Object.assign(
    (rendition: { id: string }) => {
      const real = mpegTsMuxers(rendition);
      return {
        muxSegment(frames: Parameters<typeof real.muxSegment>[0]) {
          calls += 1;
          if (calls === nth && !factory.thrown) {
            factory.thrown = true;
            throw new TypeError('injected: the muxer met a state it cannot handle');
          }
          return real.muxSegment(frames);
        },
      };
    },
    { thrown: false },
  );
  return factory;
}

t.test('a channel whose packager throws restarts on its own; the other channel keeps airing untouched', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'onair-fault-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const tone = join(dir, 'tone.wav');
  const made = await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '6', tone]);
  t.equal(made.code, 0, made.stderr);
  const channel = (id: string) => ({ id, renditions: [{ id: 'hifi', bitrate: '64k' }], inputs: [{ id: 'main', url: tone }] });
  const config = resolveConfig({ hls: { segmentSeconds: 1 }, log: { level: 'silent' }, channels: [channel('fip'), channel('jazz')] });
  const store = new MemoryStore();
  await store.start();
  t.teardown(() => store.close());
  const lines: string[] = [];
  const logger = pino({ level: 'error' }, new Writable({ write: (chunk: Buffer, _encoding, done) => (lines.push(chunk.toString()), done()) }));
  const faulty = throwingOnce(3);
  const ingest = new IngestService({ config, store, logger, muxersFor: (channel) => (channel.id === 'jazz' ? faulty : undefined) });
  const metrics = new OnairMetrics();
  metrics.watchIngest(ingest);
  t.teardown(() => ingest.close());

  const fip = ingest.channels.get('fip')!;
  const fipSegments: WindowSegment[] = [];
  fip.packager.on('segment', (entry: WindowSegment) => fipSegments.push(entry));
  const firstJazz = ingest.channels.get('jazz')!;
  await ingest.start();

  await waitFor('the jazz packager to throw', async () => (faulty.thrown ? true : undefined), 30_000);
  const restarted = await waitFor('jazz restarted and airing again', async () => {
    const current: ChannelPipeline | undefined = ingest.channels.get('jazz');
    return current && current !== firstJazz && current.packager.stats.segmentsPublished >= 2 ? current : undefined;
  }, 30_000);
  const fipBefore = fipSegments.length;
  await waitFor('two more fip segments', async () => (fipSegments.length >= fipBefore + 2 ? true : undefined), 15_000);

  t.equal(firstJazz.isFaulted, true, 'the faulty pipeline was stopped');
  t.equal(restarted.isFaulted, false);
  t.same(Object.fromEntries(ingest.faults.get('jazz') ?? []), { packager: 1 }, 'one fault, counted by stage');
  t.equal(ingest.faults.get('fip'), undefined, 'fip never faulted');
  t.equal(ingest.channels.get('fip'), fip, 'fip is the same pipeline: never restarted');
  const msns = fipSegments.map((entry) => entry.msn);
  t.same(msns, msns.map((_, index) => msns[0]! + index), `fip's MSNs run on without a gap (${msns[0]}…${msns.at(-1)})`);
  t.equal(fipSegments.filter((entry) => entry.discontinuity).length, fipSegments[0]!.discontinuity ? 1 : 0, 'and without a discontinuity');
  t.ok(lines.some((line) => /"code":"ONAIR_CHANNEL_FAULT"/.test(line) && /"stage":"packager"/.test(line) && /"channel":"jazz"/.test(line)), 'the fault is logged with its code, stage and channel');
  const text = await metrics.registry.metrics();
  t.match(text, /^onair_channel_restarts_total\{channel="jazz",stage="packager"\} 1$/m, 'the restart is in the metrics');
});
