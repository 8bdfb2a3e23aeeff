/**
 * The onair side of `npm run bench:origin`: one process that serves a realistic live channel
 * from onair's origin, as `onair origin` with the memory store would, for the bench's load.
 *
 * It builds the content the packager would have written after a while on air: channel `fip`,
 * rendition `hifi` (128 kb/s AAC-LC 48 kHz stereo), a window of 6 segments of 4 s, each a real
 * MPEG-TS segment from TsSegmentMuxer (synthetic ADTS frames of the 128 kb/s size, ≈ 66 KB),
 * and the media and master playlists from playlist-writer.ts with PROGRAM-DATE-TIME tags. It
 * puts the segments into a MemoryStore and publishes the playlists, then starts buildOrigin on
 * 127.0.0.1:0 with logging off.
 *
 * With `--content-dir DIR` it also writes the very same bytes under DIR, at the URL paths the
 * origin serves them (`fip/fip_hifi.m3u8`, `fip/hifi/<msn>-<run>.ts`, …), so nginx can serve
 * identical files from disk.
 *
 * It prints one JSON line (`OriginWorkerReady`) on stdout once listening, and exits on SIGTERM
 * or SIGINT, or when its stdin closes (the bench process went away without killing it).
 *
 *   node dist/bench/origin-worker.js [--content-dir DIR]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildContent, CHANNEL_ID, RENDITION_ID, SEGMENT_TTL_SECONDS } from './origin-content.js';
import { buildOrigin } from '../src/origin/origin-server.js';
import { MemoryStore } from '../src/store/memory-store.js';

export interface OriginWorkerReady {
  port: number;
  pid: number;
  /** URL paths of the benched resources: the media playlist and the newest segment. */
  playlistPath: string;
  segmentPath: string;
  segmentBytes: number;
  playlistBytes: number;
}

async function writeContent(directory: string, files: Map<string, Uint8Array>): Promise<void> {
  for (const [path, bytes] of files) {
    const target = join(directory, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, bytes);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { 'content-dir': { type: 'string' } } });
  const content = buildContent();
  if (values['content-dir']) await writeContent(values['content-dir'], content.files);

  const store = new MemoryStore();
  await store.start();
  for (const segment of content.segments) {
    await store.putSegment(CHANNEL_ID, RENDITION_ID, segment.name, segment.bytes, SEGMENT_TTL_SECONDS);
  }
  await store.publish({ channel: CHANNEL_ID, playlists: content.playlists, state: JSON.stringify(content.state) });

  const app = await buildOrigin({
    store,
    channels: [{ id: CHANNEL_ID, renditions: [RENDITION_ID] }],
    targetDurationSeconds: content.state.targetDuration,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the origin is not listening on a TCP port');

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    // process.exit (not a natural end) so that `--cpu-prof` still writes its profile.
    app.close().then(() => store.close()).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop).on('close', stop).resume();

  const newest = content.segments[content.segments.length - 1]!;
  const mediaName = `${CHANNEL_ID}_${RENDITION_ID}.m3u8`;
  const ready: OriginWorkerReady = {
    port: address.port,
    pid: process.pid,
    playlistPath: `/${CHANNEL_ID}/${mediaName}`,
    segmentPath: `/${CHANNEL_ID}/${RENDITION_ID}/${newest.name}`,
    segmentBytes: newest.bytes.byteLength,
    playlistBytes: Buffer.byteLength(content.playlists[mediaName]!, 'utf8'),
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`origin-worker: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
