/**
 * Low-Latency HLS at the origin (draft-pantos-hls-rfc8216bis §6.2.5–6.2.6): blocking
 * playlist reloads held until the part is published (woken by the store's notification),
 * 400 past the spec's limits, 503 when held past 3 target durations, the preload-hinted
 * part held rather than 404, delta updates, and a playlist without parts ignoring the
 * directives. A real packager on a MemoryStore publishes the parts the test feeds it; the
 * origin's hold timers run on a manual clock, which the tests move instead of waiting.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { ChannelPackager } from '../../src/hls/channel-packager.js';
import { buildOrigin, type BuildOriginOptions } from '../../src/origin/origin-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { StoredPlaylist } from '../../src/store/store.js';
import { FrameSource } from '../helpers/aac-frames.js';
import { testChannel } from '../helpers/channel-config.js';
import { DelegatingStore } from '../helpers/delegating-store.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitUntil } from '../helpers/wait-until.js';

/** 1 s segments in four 0.25 s parts: TD 1, so a request is held 3 s at most. */
const SEGMENT_SECONDS = 1;

class CountingStore extends DelegatingStore {
  playlistReads = 0;

  override async getPlaylist(channel: string, name: string): Promise<StoredPlaylist | null> {
    this.playlistReads += 1;
    return this.inner.getPlaylist(channel, name);
  }
}

async function startLowLatency(t: Test, lowLatency = true, limits: BuildOriginOptions['limits'] = {}) {
  const channel = testChannel({ lowLatency, partSeconds: 0.25 }, SEGMENT_SECONDS);
  const memory = new MemoryStore();
  await memory.start();
  const store = new CountingStore(memory);
  const packager = new ChannelPackager({ channel, segmentSeconds: SEGMENT_SECONDS, windowSegments: 12, store, logger: pino({ level: 'silent' }) });
  await packager.start();
  const clock = new ManualClock();
  const app = await buildOrigin({ store, channels: [{ id: 'fip', renditions: ['lofi', 'hifi'] }], targetDurationSeconds: 1, clock, limits });
  await app.ready();
  t.teardown(async () => {
    await app.close();
    await packager.close();
    await memory.close();
  });
  const source = new FrameSource();
  /** Feeds frames until `count` more parts (or segments, without low latency) are published. */
  const publish = async (count = 1): Promise<void> => {
    const published = (): number => packager.stats.partsPublished + packager.stats.segmentsPublished;
    const target = published() + count;
    for (let frame = 0; frame < 5000 && published() < target; frame++) {
      packager.pushFrameGroup(source.next());
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { app, store, packager, publish, clock };
}

function get(app: FastifyInstance, url: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url });
}

/** The part the preload hint names: `{ msn, run, part }`. */
function hintOf(body: string): { msn: number; run: number; part: number; uri: string } {
  const match = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(\w+\/(\d+)-(\d+)\.(\d+)\.ts)"/.exec(body);
  if (!match) throw new Error(`no preload hint in:\n${body}`);
  return { uri: match[1]!, msn: Number(match[2]), run: Number(match[3]), part: Number(match[4]) };
}

/**
 * Real time only bounds a hang: an answer that needs the clock to move never comes without it.
 * Shorter than the longest hold (3 target durations), so a hold on the wall clock would show.
 */
const HANG_GUARD_MS = 2000;
/** The origin runs (promise callbacks, a macrotask turn) after each step of its clock. */
const CLOCK_STEP_MS = 10;

/** Answered while the origin's clock stands still? Returns the response, or 'pending'. */
async function answered<T>(promise: Promise<T>): Promise<T | 'pending'> {
  let guard: NodeJS.Timeout | undefined;
  const hang = new Promise<'pending'>((resolve) => {
    guard = setTimeout(() => resolve('pending'), HANG_GUARD_MS);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(guard);
  }
}

/** Answered within `ms` of the origin's clock? Moves it step by step; returns the response, or 'pending'. */
async function within<T>(promise: Promise<T>, clock: ManualClock, ms: number): Promise<T | 'pending'> {
  let outcome: T | 'pending' = 'pending';
  void promise.then((value) => {
    outcome = value;
  });
  for (let elapsed = 0; elapsed < ms && outcome === 'pending'; elapsed += CLOCK_STEP_MS) {
    await clock.advance(Math.min(CLOCK_STEP_MS, ms - elapsed));
  }
  return outcome;
}

t.test('a blocking reload is held until its part is published, then answered at once', async (t) => {
  const { app, publish, clock } = await startLowLatency(t);
  await publish(10);
  const hint = hintOf((await get(app, '/fip/fip_hifi.m3u8')).body);
  const held = get(app, `/fip/fip_hifi.m3u8?_HLS_msn=${hint.msn}&_HLS_part=${hint.part}`);
  t.equal(await within(held, clock, 150), 'pending', 'held while the part does not exist');
  await publish(1);
  const response = await answered(held);
  if (response === 'pending') return t.fail('not answered after the part was published');
  t.equal(response.statusCode, 200);
  t.match(response.body, `#EXT-X-PART:DURATION=`);
  t.match(response.body, `URI="${hint.uri}"`, 'lists the part it waited for');
  t.equal(response.headers['cache-control'], 'public, max-age=6', 'cacheable: it always lists at least that part');
  t.equal(response.headers['content-type'], 'application/vnd.apple.mpegurl');
});

t.test('_HLS_msn alone waits for the whole segment; a part already listed is answered at once', async (t) => {
  const { app, publish, clock } = await startLowLatency(t);
  await publish(6);
  const body = (await get(app, '/fip/fip_lofi.m3u8')).body;
  const hint = hintOf(body);
  const listed = await answered(get(app, `/fip/fip_lofi.m3u8?_HLS_msn=${hint.msn - 1}`));
  t.equal(listed !== 'pending' && listed.statusCode, 200, 'a segment already listed: no wait');
  const held = get(app, `/fip/fip_lofi.m3u8?_HLS_msn=${hint.msn}`);
  // The hinted part is not the last of the segment: one part published is not enough.
  if (hint.part < 2) {
    await publish(1);
    t.equal(await within(held, clock, 100), 'pending', 'one more part does not complete the segment');
  }
  await publish(4);
  const response = await answered(held);
  t.equal(response !== 'pending' && response.statusCode, 200);
  if (response !== 'pending') t.match(response.body, `lofi/${hint.msn}-${hint.run}.ts`, 'lists the complete segment');
});

t.test('directives past the limits or malformed are 400 with a JSON body, briefly cacheable', async (t) => {
  const { app, publish, clock } = await startLowLatency(t);
  await publish(6);
  const hint = hintOf((await get(app, '/fip/fip_hifi.m3u8')).body);
  const lastMsn = hint.msn - 1; // the hinted part belongs to the segment after the last complete one
  const bad = [
    `_HLS_part=1`,
    `_HLS_msn=${lastMsn + 3}`,
    `_HLS_msn=${hint.msn}&_HLS_part=${hint.part + 20}`,
    `_HLS_msn=-1`,
    `_HLS_msn=abc`,
    `_HLS_msn=1e3`,
    `_HLS_msn=99999999999999999999`,
    `_HLS_msn=1&_HLS_msn=2`,
    `_HLS_msn=${hint.msn}&_HLS_part=x`,
    `_HLS_skip=maybe`,
  ];
  for (const query of bad) {
    const response = await answered(get(app, `/fip/fip_hifi.m3u8?${query}`));
    if (response === 'pending') {
      t.fail(`${query} was held instead of refused`);
      continue;
    }
    t.equal(response.statusCode, 400, query);
    t.equal(response.headers['cache-control'], 'public, max-age=1', query);
    t.equal(response.json().error, 'bad_request', query);
  }
  const twoAheadRequest = get(app, `/fip/fip_hifi.m3u8?_HLS_msn=${lastMsn + 2}`);
  t.equal(await within(twoAheadRequest, clock, 200), 'pending', 'two segments ahead is still a valid wait');
  await clock.advance(3000);
  await twoAheadRequest;
});

t.test('a request held past 3 target durations gets 503 with Retry-After', async (t) => {
  const { app, publish, clock } = await startLowLatency(t);
  await publish(6);
  const hint = hintOf((await get(app, '/fip/fip_hifi.m3u8')).body);
  const held = get(app, `/fip/fip_hifi.m3u8?_HLS_msn=${hint.msn}&_HLS_part=${hint.part}`);
  t.equal(await within(held, clock, 2999), 'pending', 'held until 3 target durations');
  await clock.advance(1);
  const response = await answered(held);
  if (response === 'pending') return t.fail('not answered after 3 target durations');
  t.equal(response.statusCode, 503);
  t.equal(response.headers['retry-after'], '1');
  t.equal(response.headers['cache-control'], 'no-store');
});

t.test('the preload-hinted part is held until published, never 404; unannounced parts are 404', async (t) => {
  const { app, store, publish, clock } = await startLowLatency(t);
  await publish(6);
  const hint = hintOf((await get(app, '/fip/fip_hifi.m3u8')).body);
  const held = get(app, `/fip/${hint.uri}`);
  t.equal(await within(held, clock, 150), 'pending', 'held, not 404');
  await publish(1);
  const response = await answered(held);
  if (response === 'pending') return t.fail('the hinted part was not served once published');
  t.equal(response.statusCode, 200);
  t.equal(response.headers['content-type'], 'video/mp2t');
  const [, name] = hint.uri.split('/');
  t.same(response.rawPayload, Buffer.from((await store.getSegment('fip', 'hifi', name!))!), 'the stored part');

  const next = hintOf((await get(app, '/fip/fip_hifi.m3u8')).body);
  for (const uri of [`hifi/${next.msn + 5}-${next.run}.0.ts`, `hifi/${next.msn}-${next.run + 1}.${next.part}.ts`, `hifi/${next.msn - 1}-${next.run}.9.ts`]) {
    const missing = await answered(get(app, `/fip/${uri}`));
    t.equal(missing !== 'pending' && missing.statusCode, 404, `${uri}: not announced, 404 at once`);
  }
});

t.test('many held requests for one part share the store reads', async (t) => {
  const { app, store, publish } = await startLowLatency(t);
  await publish(6);
  const hint = hintOf((await get(app, '/fip/fip_hifi.m3u8')).body);
  const url = `/fip/fip_hifi.m3u8?_HLS_msn=${hint.msn}&_HLS_part=${hint.part}`;
  // 200 listeners, each from an address of its own (one address may hold 64 at most).
  const held = Array.from({ length: 200 }, (_, index) => app.inject({ method: 'GET', url, remoteAddress: `192.0.2.${index}` }));
  await waitUntil(t, 'all 200 are held', () => app.onairOrigin.stats().heldRequests === 200);
  const readsBefore = store.playlistReads;
  await publish(1);
  const responses = await Promise.all(held);
  t.ok(responses.every((response) => response.statusCode === 200), '200 for every held request');
  const reads = store.playlistReads - readsBefore;
  t.ok(reads <= 10, `${reads} playlist reads for 200 held requests (one per cached playlist per publish)`);
});

t.test('_HLS_skip=YES answers the delta update', async (t) => {
  const { app, publish } = await startLowLatency(t);
  await publish(4 * 10);
  const full = (await get(app, '/fip/fip_lofi.m3u8')).body;
  const delta = await get(app, '/fip/fip_lofi.m3u8?_HLS_skip=YES');
  t.equal(delta.statusCode, 200);
  t.match(delta.body, /#EXT-X-SKIP:SKIPPED-SEGMENTS=[1-9]\d*\n/);
  t.notMatch(full, '#EXT-X-SKIP');
  t.ok(delta.body.length < full.length, `delta ${delta.body.length} bytes < full ${full.length}`);
  t.equal(delta.headers['cache-control'], 'public, max-age=1');
  const v2 = await get(app, '/fip/fip_lofi.m3u8?_HLS_skip=v2');
  t.equal(v2.body, delta.body, 'v2 is the same without date ranges');
});

t.test('a playlist without parts ignores the directives', async (t) => {
  const { app, publish } = await startLowLatency(t, false);
  await publish(2);
  for (const query of ['_HLS_msn=999999', '_HLS_part=3', '_HLS_skip=maybe']) {
    const response = await answered(get(app, `/fip/fip_hifi.m3u8?${query}`));
    t.equal(response !== 'pending' && response.statusCode, 200, query);
  }
});

/** A GET from `address` (the socket's), with more headers. */
function getFrom(app: FastifyInstance, url: string, address: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url, remoteAddress: address, headers });
}

t.test('held requests are capped per client address: over it, 503 + Retry-After at once, other addresses still held', async (t) => {
  const { app, publish, clock } = await startLowLatency(t, true, { heldRequestsPerClient: 3, heldRequests: 100 });
  await publish(6);
  const hint = hintOf((await get(app, '/fip/fip_hifi.m3u8')).body);
  const url = `/fip/fip_hifi.m3u8?_HLS_msn=${hint.msn}&_HLS_part=${hint.part}`;
  const held = [1, 2, 3].map(() => getFrom(app, url, '198.51.100.7'));
  await waitUntil(t, 'three held', () => app.onairOrigin.stats().heldRequests === 3);

  const refused = await answered(getFrom(app, url, '198.51.100.7'));
  t.equal(refused !== 'pending' && refused.statusCode, 503, 'the fourth of one address is refused at once');
  if (refused !== 'pending') {
    t.equal(refused.headers['retry-after'], '1');
    t.equal(refused.headers['cache-control'], 'no-store', 'a refusal about one client is never cached');
    t.equal(refused.json().error, 'busy');
  }
  const hintedPart = await answered(getFrom(app, `/fip/${hint.uri}`, '198.51.100.7'));
  t.equal(hintedPart !== 'pending' && hintedPart.statusCode, 503, 'a hinted part counts against the same cap');
  const listed = await answered(getFrom(app, `/fip/fip_hifi.m3u8?_HLS_msn=${hint.msn - 1}`, '198.51.100.7'));
  t.equal(listed !== 'pending' && listed.statusCode, 200, 'a request that needs no hold is never refused');

  const other = getFrom(app, url, '203.0.113.9');
  await waitUntil(t, 'another address held', () => app.onairOrigin.stats().heldRequests === 4);
  t.equal(app.onairOrigin.stats().heldRequestsRefused, 2);

  await publish(1);
  const answers = await Promise.all([...held, other]);
  t.same(answers.map((response) => response.statusCode), [200, 200, 200, 200], 'the held ones are answered when the part comes');
  t.equal(app.onairOrigin.stats().heldRequests, 0, 'every place is released');
  const next = hintOf((await get(app, '/fip/fip_hifi.m3u8')).body);
  const again = getFrom(app, `/fip/fip_hifi.m3u8?_HLS_msn=${next.msn}&_HLS_part=${next.part}`, '198.51.100.7');
  t.equal(await within(again, clock, 100), 'pending', 'the address may be held again once its holds ended');
  await publish(1);
  t.equal((await again).statusCode, 200);
});

t.test('the cap over all clients refuses every address once full, and a timed-out hold frees its place', async (t) => {
  const { app, publish, clock } = await startLowLatency(t, true, { heldRequestsPerClient: 10, heldRequests: 4 });
  await publish(6);
  const hint = hintOf((await get(app, '/fip/fip_hifi.m3u8')).body);
  const url = `/fip/fip_hifi.m3u8?_HLS_msn=${hint.msn + 1}&_HLS_part=0`;
  const held = [1, 2, 3, 4].map((index) => getFrom(app, url, `192.0.2.${index}`));
  await waitUntil(t, 'four held', () => app.onairOrigin.stats().heldRequests === 4);
  const refused = await answered(getFrom(app, url, '192.0.2.200'));
  t.equal(refused !== 'pending' && refused.statusCode, 503, 'a fifth address is refused: the process holds its maximum');

  // Nothing is published: the holds end after 3 target durations (503 not_ready), freeing their places.
  const timedOut = await within(Promise.all(held), clock, 3200);
  t.ok(timedOut !== 'pending' && timedOut.every((response) => response.statusCode === 503 && response.json().error === 'not_ready'));
  t.equal(app.onairOrigin.stats().heldRequests, 0);
  const later = getFrom(app, url, '192.0.2.200');
  t.equal(await within(later, clock, 100), 'pending', 'held again once places are free');
  await within(later, clock, 3200);
});

t.test('X-Forwarded-For names the client only from a trusted proxy', async (t) => {
  const { app, publish } = await startLowLatency(t, true, { heldRequestsPerClient: 1 });
  await publish(6);
  const hint = hintOf((await get(app, '/fip/fip_hifi.m3u8')).body);
  const url = `/fip/fip_hifi.m3u8?_HLS_msn=${hint.msn}&_HLS_part=${hint.part}`;
  // From an untrusted address, a forged header changes nothing: still one client.
  const first = getFrom(app, url, '198.51.100.7', { 'x-forwarded-for': '10.1.1.1' });
  await waitUntil(t, 'one held', () => app.onairOrigin.stats().heldRequests === 1);
  const forged = await answered(getFrom(app, url, '198.51.100.7', { 'x-forwarded-for': '10.2.2.2' }));
  t.equal(forged !== 'pending' && forged.statusCode, 503, 'a forged X-Forwarded-For does not dodge the cap');
  // Through the trusted proxy (loopback by default), each forwarded client has its own places.
  const viaProxy = ['10.3.3.3', '10.4.4.4'].map((client) => getFrom(app, url, '127.0.0.1', { 'x-forwarded-for': client }));
  await waitUntil(t, 'both forwarded clients held', () => app.onairOrigin.stats().heldRequests === 3);
  await publish(1);
  t.same((await Promise.all([first, ...viaProxy])).map((response) => response.statusCode), [200, 200, 200]);
});

t.test('unknown query parameters are ignored, and names are matched as sent, never percent-decoded', async (t) => {
  const { app, publish, clock } = await startLowLatency(t);
  await publish(6);
  const plain = await get(app, '/fip/fip_hifi.m3u8');
  const busted = await get(app, '/fip/fip_hifi.m3u8?cachebuster=8f3a&x');
  t.equal(busted.statusCode, 200);
  t.equal(busted.body, plain.body, 'the same playlist as without the parameter');
  t.equal(busted.headers.etag, plain.headers.etag);
  t.equal(busted.headers['cache-control'], plain.headers['cache-control']);

  const hint = hintOf(plain.body);
  const encodedName = await answered(get(app, `/fip/fip_hifi.m3u8?%5FHLS_msn=${hint.msn + 1}`));
  t.equal(encodedName !== 'pending' && encodedName.statusCode, 200, '%5FHLS_msn is an unknown name: not held');
  t.equal(encodedName !== 'pending' && encodedName.headers['cache-control'], plain.headers['cache-control'], 'and cached as the plain playlist');
  const encodedValue = await get(app, `/fip/fip_hifi.m3u8?_HLS_msn=%3${hint.msn % 10}`);
  t.equal(encodedValue.statusCode, 400, 'a percent-encoded directive value is malformed');

  const held = get(app, `/fip/fip_hifi.m3u8?utm=1&_HLS_part=${hint.part}&_HLS_msn=${hint.msn}`);
  t.equal(await within(held, clock, 100), 'pending', 'known parameters among unknown ones still hold');
  await publish(1);
  t.equal((await held).statusCode, 200);
});
