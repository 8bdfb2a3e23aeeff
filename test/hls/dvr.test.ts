/**
 * The DVR window (`dvrSeconds`): an extra playlist per rendition over the last dvrSeconds,
 * whose tail is the live window, whose discontinuity sequence gives every segment the same
 * discontinuity count as the live playlist does, and whose segments stay readable as long.
 */
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { ChannelPackager } from '../../src/hls/channel-packager.js';
import { renditionOfMediaPlaylist } from '../../src/origin/origin-options.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FrameSource } from '../helpers/aac-frames.js';
import { testChannel } from '../helpers/channel-config.js';
import { parsePlaylist } from '../helpers/m3u8.js';

const DVR_SECONDS = 20;

async function startPackager(t: Test) {
  const channel = testChannel({ dvrSeconds: DVR_SECONDS }, 1);
  const store = new MemoryStore();
  await store.start();
  const packager = new ChannelPackager({ channel, segmentSeconds: 1, windowSegments: 6, store, logger: pino({ level: 'silent' }) });
  await packager.start();
  t.teardown(async () => {
    await packager.close();
    await store.close();
  });
  return { packager, store, source: new FrameSource() };
}

/** Pushes frames (letting publishes run) until `count` more segments are published. */
async function publish(packager: ChannelPackager, source: FrameSource, count: number): Promise<void> {
  const target = packager.stats.segmentsPublished + count;
  for (let frame = 0; frame < 100_000 && packager.stats.segmentsPublished < target; frame++) {
    packager.pushFrameGroup(source.next());
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Each segment's URI → its discontinuity count as a player computes it (DSN, +1 per tag). */
function discontinuityCounts(body: string): Map<string, number> {
  const { manifest } = parsePlaylist(body);
  const counts = new Map<string, number>();
  let count = manifest.discontinuitySequence ?? 0;
  for (const segment of manifest.segments) {
    if (segment.discontinuity) count += 1;
    counts.set(segment.uri, count);
  }
  return counts;
}

t.test('the DVR playlist lists the last dvrSeconds, ends with the live window, and agrees on every discontinuity count', async (t) => {
  const { packager, store, source } = await startPackager(t);
  await publish(packager, source, 8);
  packager.markDiscontinuity();
  await publish(packager, source, 10);
  packager.markDiscontinuity();
  await publish(packager, source, 12);

  const live = (await store.getPlaylist('fip', 'fip_hifi.m3u8'))!.body;
  const dvrText = (await store.getPlaylist('fip', 'fip_hifi_dvr.m3u8'))!.body;
  const dvr = parsePlaylist(dvrText);
  t.strictSame(dvr.warnings, []);
  t.notMatch(dvrText, 'EXT-X-PLAYLIST-TYPE', 'a sliding window: no playlist type');
  const seconds = dvr.manifest.segments.reduce((sum, segment) => sum + segment.duration, 0);
  t.ok(seconds >= DVR_SECONDS && seconds < DVR_SECONDS + 1.1, `${seconds.toFixed(2)} s listed for dvrSeconds ${DVR_SECONDS}`);
  const liveSegments = parsePlaylist(live).manifest.segments;
  t.strictSame(
    dvr.manifest.segments.slice(-liveSegments.length).map((segment) => segment.uri),
    liveSegments.map((segment) => segment.uri),
    'its tail is the live window',
  );
  t.equal(dvr.manifest.mediaSequence! + dvr.manifest.segments.length, parsePlaylist(live).manifest.mediaSequence! + liveSegments.length, 'same last MSN');

  const liveCounts = discontinuityCounts(live);
  const dvrCounts = discontinuityCounts(dvrText);
  t.ok(dvr.manifest.segments.filter((segment) => segment.discontinuity).length >= 1, 'a discontinuity lies in the DVR-only part');
  for (const [uri, count] of liveCounts) t.equal(dvrCounts.get(uri), count, `${uri}: same discontinuity count in both`);
  for (const segment of dvr.manifest.segments) {
    const [rendition, name] = segment.uri.split('/') as [string, string];
    t.ok(await store.getSegment('fip', rendition, name), `${segment.uri} is readable`);
  }
  t.ok(packager.segmentTtlSeconds() >= 2 * DVR_SECONDS, `segments live ${packager.segmentTtlSeconds()} s: past the DVR window`);
});

t.test('playlist names: a rendition, its DVR playlist, and a rendition called dvr', async (t) => {
  const renditions = new Set(['hifi', 'dvr']);
  t.equal(renditionOfMediaPlaylist(renditions, 'fip', 'fip_hifi.m3u8'), 'hifi');
  t.equal(renditionOfMediaPlaylist(renditions, 'fip', 'fip_hifi_dvr.m3u8'), 'hifi');
  t.equal(renditionOfMediaPlaylist(renditions, 'fip', 'fip_dvr.m3u8'), 'dvr');
  t.equal(renditionOfMediaPlaylist(renditions, 'fip', 'fip_dvr_dvr.m3u8'), 'dvr');
  t.equal(renditionOfMediaPlaylist(renditions, 'fip', 'fip_lofi_dvr.m3u8'), undefined);
  t.equal(renditionOfMediaPlaylist(renditions, 'fip', 'jazz_hifi.m3u8'), undefined);
});
