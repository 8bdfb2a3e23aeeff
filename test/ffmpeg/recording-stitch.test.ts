/**
 * The refusals of the recordings' stitch and probe (src/ffmpeg/recording-stitch.ts); their
 * success is test/e2e/recording.test.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { probeMedia, stitchSegments } from '../../src/ffmpeg/recording-stitch.js';

t.test('stitching refuses relative or no segment paths, and reports what FFmpeg could not read; probing garbage fails', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'onair-stitch-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const spec = { listPath: join(dir, 'segments.txt'), outputPath: join(dir, 'out.m4a') };
  await t.rejects(stitchSegments({ ...spec, segmentPaths: [] }), RangeError);
  await t.rejects(stitchSegments({ ...spec, segmentPaths: ['0.ts'] }), RangeError);
  await writeFile(join(dir, '0.ts'), 'not a transport stream');
  await t.rejects(stitchSegments({ ...spec, segmentPaths: [join(dir, '0.ts')] }), { code: 'ONAIR_FFMPEG_FAILED', message: /FFmpeg could not stitch/ });
  const aborted = new AbortController();
  aborted.abort();
  await t.rejects(stitchSegments({ ...spec, segmentPaths: [join(dir, '0.ts')] }, { signal: aborted.signal }), /aborted/);
  await t.rejects(probeMedia(join(dir, '0.ts')));
});
