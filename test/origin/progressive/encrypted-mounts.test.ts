/**
 * Progressive mounts of encrypted channels
 * (docs/architecture.md, "Recordings and mounts of encrypted channels"): a real packager of an `aes-128` (TS) and of a `cbcs` (fMP4) channel,
 * fed real AAC of a 440 Hz tone, stores ciphertext; a real origin on loopback serves the
 * channel's mount to its token only, decrypting each segment and part with its key from the
 * store. Every frame a listener gets is a frame of the source, the stream FFmpeg decodes is the
 * tone, and a key missing from the store skips its segments (counted), never sending ciphertext.
 */
import { pino } from 'pino';
import t from 'tap';
import { resolveConfig } from '../../../src/config/load-config.js';
import { ChannelPackager } from '../../../src/hls/channel-packager.js';
import { initSegmentName, parseSegmentName, segmentName } from '../../../src/hls/published-names.js';
import { contentKeyId } from '../../../src/hls/segment-encryption.js';
import type { WindowSegment } from '../../../src/hls/sequence-state.js';
import { AdtsReader, type AacFrame } from '../../../src/media/adts.js';
import { clearInitSegment } from '../../../src/media/cbcs.js';
import { parseInitSegment } from '../../../src/media/fmp4-demux.js';
import { segmentAudio } from '../../../src/media/segment-audio.js';
import { buildOrigin } from '../../../src/origin/origin-server.js';
import { signPath } from '../../../src/origin/signed-urls.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { rawTestChannel } from '../../helpers/channel-config.js';
import { DelegatingStore } from '../../helpers/delegating-store.js';
import { openStream } from '../../helpers/progressive-listener.js';
import { identifyTone } from '../../helpers/tone.js';
import { toneAacFrames } from '../../helpers/tone-frames.js';
import { waitUntil } from '../../helpers/wait-until.js';

const KEY = 'k'.repeat(32);
const TONE_HZ = 440;
const ROTATION = 2;
const logger = pino({ level: 'silent' });

/** The store as the origin sees it, but the content key `missing()` names is not found (expired, or a store that lost it). */
class KeyLosingStore extends DelegatingStore {
  constructor(
    private readonly memory: MemoryStore,
    private readonly missing: () => number | undefined,
  ) {
    super(memory);
  }

  /** Parts (`{msn}-{run}.{part}.ts`) the origin read. */
  partReads = 0;

  override getSegment(channel: string, rendition: string, name: string): Promise<Uint8Array | null> {
    if (parseSegmentName(name)?.part !== undefined) this.partReads += 1;
    return super.getSegment(channel, rendition, name);
  }

  getContentKey(channel: string, keyId: number): Promise<Uint8Array | null> {
    return keyId === this.missing() ? Promise.resolve(null) : this.memory.getContentKey(channel, keyId);
  }
}

const payloadHex = (frame: AacFrame): string => Buffer.from(frame.data.subarray(7)).toString('hex');

for (const [scheme, lowLatency] of [['aes-128', false], ['aes-128', true], ['cbcs', false], ['cbcs', true]] as const) {
  const container = scheme === 'cbcs' ? 'fmp4' : 'ts';
  const what = `${scheme === 'cbcs' ? 'a' : 'an'} ${scheme} channel${lowLatency ? ' with LL-HLS parts (each encrypted on its own)' : ''}`;

  t.test(`${what}: its mount needs its token and serves the source's frames, decrypted: FFmpeg decodes the tone; a missing key skips its segments`, async (t) => {
    const store = new MemoryStore();
    await store.start();
    t.teardown(() => store.close());
    const config = resolveConfig({
      hls: { segmentSeconds: 1 },
      signing: { key: KEY },
      channels: [rawTestChannel({ access: 'signed', container, encryption: scheme, keyRotationSegments: ROTATION, ...(lowLatency ? { lowLatency: true, partSeconds: 0.25 } : {}) })],
    });
    const channel = config.channels[0]!;
    const packager = new ChannelPackager({ channel, segmentSeconds: 1, windowSegments: 12, store, logger, contentKeys: store });
    await packager.start();
    t.teardown(() => packager.close(100));
    const published: WindowSegment[] = [];
    packager.on('segment', (entry: WindowSegment) => published.push(entry));
    // The key of the third key period (counting from the first segment's) is missing for the origin.
    const missingKey = (): number | undefined => (published[0] === undefined ? undefined : contentKeyId(published[0].msn, ROTATION) + 2);
    const originStore = new KeyLosingStore(store, missingKey);

    const app = await buildOrigin({
      store,
      channels: [{ id: 'fip', renditions: ['lofi', 'hifi'] }],
      targetDurationSeconds: 1,
      signing: { key: KEY, signedChannels: () => new Set(['fip']) },
      encryptedChannels: () => new Set(['fip']),
      progressive: {
        store: originStore,
        mounts: [{ channel: 'fip', rendition: 'hifi', codec: 'aac', bitrate: 192_000, sampleRate: 48000, audioChannels: 2, encryption: { scheme, rotationSegments: ROTATION } }],
        burstSeconds: 2,
      },
    });
    t.teardown(() => app.close());
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;

    const frames = await toneAacFrames(12, TONE_HZ);
    const sourcePayloads = new Set(frames.map(payloadHex));
    let fed = 0;
    const feed = async (seconds: number): Promise<void> => {
      for (const end = Math.min(frames.length, fed + Math.round((seconds * 48000) / 1024)); fed < end; fed++) {
        packager.pushFrameGroup([frames[fed]!, frames[fed]!]);
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    await feed(3);
    await waitUntil(t, 'two segments published', () => packager.stats.segmentsPublished >= 2, 10_000);

    const refused = await fetch(`http://127.0.0.1:${port}/fip-hifi.aac`);
    t.equal(refused.status, 403, 'without the token: refused');
    await refused.body?.cancel();
    const token = signPath({ key: KEY, pathPrefix: '/fip/', expiresAt: Math.floor(Date.now() / 1000) + 600 });
    const listener = await openStream(port, `/fip-hifi.aac?token=${token}`);
    t.teardown(() => listener.close());
    t.equal(listener.head.status, 200, "the channel's token opens its mount");
    t.equal(listener.header('content-type'), 'audio/aac');

    // Live: the rest of the tone, through the period whose key is missing and on.
    for (let quarter = 0; quarter < 4 * 8; quarter++) {
      await feed(0.25);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await waitUntil(t, 'ten segments published', () => packager.stats.segmentsPublished >= 10, 10_000);
    const lastMsn = published.at(-1)!.msn;
    const stats = (): { undecryptable: number } => app.onairMounts.stats().mounts[0]!;
    await waitUntil(t, 'the mount read past the missing key', () => stats().undecryptable >= 2, 10_000);
    // What the store holds, read as a clear channel's mount would read it: no frame of the source.
    const last = published.at(-1)!;
    const stored = (await store.getSegment('fip', 'hifi', segmentName(lastMsn, last.run, container === 'ts' ? 'ts' : 'm4s')))!;
    const storedInit = container === 'fmp4' ? await store.getSegment('fip', 'hifi', initSegmentName(last.run, contentKeyId(lastMsn, ROTATION))) : null;
    const track = storedInit ? parseInitSegment(clearInitSegment(storedInit)) : undefined;
    const asStored = segmentAudio(stored, container, track).frames;
    t.equal(asStored.filter((frame) => sourcePayloads.has(Buffer.from(frame.data.subarray(7)).toString('hex'))).length, 0, `the stored segment is ciphertext: none of its ${asStored.length} frames read as they are is the source's`);
    const received = (): AacFrame[] => new AdtsReader().push(listener.body());
    await waitUntil(t, 'frames of ten seconds received', () => received().length >= 8 * 47 - 2 * 47 - 10, 10_000);
    listener.close();

    const served = received();
    const foreign = served.filter((frame) => !sourcePayloads.has(payloadHex(frame)));
    t.equal(foreign.length, 0, `every one of the ${served.length} frames served is a frame of the source (no ciphertext)`);
    if (lowLatency) t.ok(originStore.partReads > 0, `the mount read LL-HLS parts (${originStore.partReads}) and decrypted each on its own`);
    if (lowLatency) t.ok(stats().undecryptable >= 2, `the parts and segments of the missing key were skipped, counted (${stats().undecryptable})`);
    else t.equal(stats().undecryptable, 2, 'the two segments of the missing key were skipped, counted');
    const missingSeconds = (2 * 1024 * 47) / 48000;
    const servedSeconds = (served.length * 1024) / 48000;
    t.ok(servedSeconds > 5, `${servedSeconds.toFixed(2)} s of audio served (about ${missingSeconds.toFixed(1)} s skipped)`);
    const reading = await identifyTone(Buffer.concat(served.map((frame) => frame.data)), [TONE_HZ, 1000]);
    t.equal(reading.tone, TONE_HZ, `FFmpeg decodes the mount to the source tone (${reading.rmsDb.toFixed(1)} dBFS)`);
  });
}
