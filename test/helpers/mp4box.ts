/** mp4box.js (an independent MP4 parser) reading bytes the fMP4 muxer wrote, for the media and ingest tests. */
import { createFile, MP4BoxBuffer, type Movie } from 'mp4box';

/** mp4box.js's view: the movie info and every sample of track 1, plus the box types at the top level. */
export function parseWithMp4box(bytes: Uint8Array): { info: Movie; samples: { dts: number; duration: number; size: number }[]; topLevel: string[] } {
  const file = createFile();
  let info: Movie | undefined;
  const samples: { dts: number; duration: number; size: number }[] = [];
  file.onError = (module: string, message: string) => {
    throw new Error(`mp4box: ${module}: ${message}`);
  };
  file.onReady = (movie: Movie) => {
    info = movie;
    file.setExtractionOptions(movie.tracks[0]!.id, undefined, { nbSamples: 100_000 });
    file.start();
  };
  file.onSamples = (_id: number, _user: unknown, received: { dts: number; duration: number; size: number }[]) => {
    for (const sample of received) samples.push({ dts: sample.dts, duration: sample.duration, size: sample.size });
  };
  const buffer = MP4BoxBuffer.fromArrayBuffer(bytes.slice().buffer, 0);
  file.appendBuffer(buffer);
  file.flush();
  if (!info) throw new Error('mp4box found no movie');
  return { info, samples, topLevel: file.boxes.map((parsed: { type: string }) => parsed.type) };
}
