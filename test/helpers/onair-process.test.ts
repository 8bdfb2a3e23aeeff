/**
 * startOnairProcess runs the built CLI as a real process a test can kill: an origin on a
 * free port answers /healthz, dies on SIGKILL, exits 0 on SIGTERM (also when SIGSTOPped
 * first), a packager's FFmpeg children are found and do not outlive the test, and the
 * audio a packager process serves is identified as its sender's tone.
 */
import t from 'tap';
import { HlsVerifier } from './hls-verifier.js';
import { originUrl, RENDITIONS, startSender, testConfig, waitFor } from './onair-harness.js';
import { isAlive, processState, startOnairProcess } from './onair-process.js';
import { freeTcpPort, freeUdpPort } from './ports.js';
import { identifyTones } from './tone.js';

const LISTENING = /"msg":"origin listening"/;

async function originConfig(): Promise<object> {
  return {
    store: 'memory',
    origin: { host: '127.0.0.1', port: await freeTcpPort() },
    admin: { port: 0 },
    log: { level: 'silent' },
    channels: [{ id: 'fip', renditions: [{ id: 'lofi', bitrate: '32k' }], inputs: [{ id: 'main', url: `srt://127.0.0.1:${await freeUdpPort()}?mode=listener`, srt: { passphrase: 'onair-test-passphrase' } }] }],
  };
}

async function healthz(config: object): Promise<number> {
  const { port } = (config as { origin: { port: number } }).origin;
  const response = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
  return response.status;
}

t.test('an origin process answers /healthz and SIGKILL ends it', async (t) => {
  const config = await originConfig();
  const origin = await startOnairProcess(t, { role: 'origin', config, readyPattern: LISTENING });
  t.ok(origin.pid > 0, 'it has a PID');
  t.equal(await healthz(config), 200, 'GET /healthz answers 200');
  t.match(origin.output(), /"level":30/, 'info logs are kept although the config said silent');

  origin.kill('SIGKILL');
  t.same(await origin.exited, { code: null, signal: 'SIGKILL' }, 'it died of the SIGKILL');
  t.notOk(isAlive(origin.pid), 'the PID is gone');
  await t.rejects(healthz(config), 'nothing answers any more');
});

t.test('stop() sends SIGTERM and the origin exits 0', async (t) => {
  const origin = await startOnairProcess(t, { role: 'origin', config: await originConfig(), readyPattern: LISTENING });
  t.same(await origin.stop(), { code: 0, signal: null }, 'exit code 0');
  t.match(origin.output(), /"msg":"stopping"/, 'it logged that it was stopping');
});

t.test('stop() also ends a SIGSTOPped (hung) origin cleanly', async (t) => {
  const config = await originConfig();
  const origin = await startOnairProcess(t, { role: 'origin', config, readyPattern: LISTENING });
  origin.kill('SIGSTOP');
  // No request while it is stopped: a connection accepted meanwhile can hold up the
  // graceful close past the 3 s grace (seen under load), which is not what this tests.
  await waitFor('the origin to be stopped', async () => (processState(origin.pid) === 'T' ? true : undefined), 2000);
  t.ok(isAlive(origin.pid), 'a stopped process is alive');
  t.same(await origin.stop(), { code: 0, signal: null }, 'SIGTERM + SIGCONT: a clean exit');
  t.equal(await healthz(config).catch(() => 'refused'), 'refused', 'and it no longer answers');
});

t.test('a role that never gets ready fails the wait, bounded, quoting its output', async (t) => {
  const started = Date.now();
  await t.rejects(
    startOnairProcess(t, { role: 'origin', config: await originConfig(), readyPattern: /never logged/, readyTimeoutMs: 1500 }),
    /^onair origin did not log \/never logged\/ within 1500 ms:\n/,
  );
  t.ok(Date.now() - started < 5000, 'within the timeout, not hanging');
});

t.test('a bad config fails the wait at once with the CLI message', async (t) => {
  await t.rejects(startOnairProcess(t, { role: 'origin', config: { channels: [] }, readyPattern: LISTENING }), /exited \(2\).*channels/s);
});

t.test("a SIGKILLed packager's FFmpeg children are found and do not outlive the test", async (t) => {
  let encoders: number[] = [];
  await t.test('start, find the encoder, SIGKILL the packager', async (t) => {
    const config = await testConfig({});
    const packager = await startOnairProcess(t, { role: 'start', config, readyPattern: /"msg":"ingest started"/ });
    const deadline = Date.now() + 10_000;
    while (encoders.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      encoders = packager.children();
    }
    t.ok(encoders.length >= 1, `the packager runs FFmpeg (${encoders.join(', ')})`);
    packager.kill('SIGKILL');
    t.equal((await packager.exited).signal, 'SIGKILL', 'the packager died of it');
    // No sender is connected, so the orphaned FFmpeg would keep listening (and hold the SRT port) on its own.
  });
  // The subtest's teardown has run by now.
  const deadline = Date.now() + 2000;
  while (encoders.some(isAlive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  t.notOk(encoders.some(isAlive), 'no FFmpeg child survives');
});

t.test("a packager process serves its sender's tone in every rendition", async (t) => {
  const config = await testConfig({});
  await startOnairProcess(t, { role: 'start', config, readyPattern: /"msg":"origin listening"/ });
  startSender(t, config, 1000);
  const verifier = new HlsVerifier({ baseUrl: originUrl(config), channel: 'fip', renditions: RENDITIONS });
  verifier.start();
  t.teardown(() => verifier.stop());
  await waitFor('four segments in every rendition', async () => {
    const counts = await Promise.all(
      RENDITIONS.map(async (rendition) => (await fetch(`${originUrl(config)}/fip/fip_${rendition}.m3u8`)).text().then((text) => text.split('#EXTINF').length - 1)),
    );
    return counts.every((count) => count >= 4) ? true : undefined;
  });
  const report = await verifier.stop();
  t.same(report.errors, [], 'the stream is valid HLS');
  for (const rendition of RENDITIONS) {
    const readings = await identifyTones(report.segments[rendition]!.map((segment) => segment.audio), [500, 1000]);
    t.same(
      readings.map((reading) => reading.tone).filter((tone) => tone !== 'silence'),
      readings.filter((reading) => reading.tone !== 'silence').map(() => 1000),
      `${rendition}: every segment after the silence fallback is the 1000 Hz tone`,
      { readings: readings.map(({ tone, rmsDb, powers }) => `${tone} at ${rmsDb.toFixed(1)} dBFS, shares ${powers[500]!.toFixed(3)}/${powers[1000]!.toFixed(3)}`) },
    );
    t.equal(readings.at(-1)?.tone, 1000, `${rendition}: the latest segment carries the tone`);
  }
});
