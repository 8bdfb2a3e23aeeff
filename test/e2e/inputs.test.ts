/**
 * Inputs other than an SRT listener: onair as an SRT caller to a remote listener (with
 * SRT options passed through), an HTTP stream (the way an Icecast mount is read) and a
 * local file played in real time. Each must turn into a live, valid playlist.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { TestSignalSender } from '../../src/ffmpeg/test-signal-sender.js';
import { HlsVerifier } from '../helpers/hls-verifier.js';
import { originUrl, RENDITIONS, startRole, testConfig, waitForThreeSegments } from '../helpers/onair-harness.js';
import { freeUdpPort } from '../helpers/ports.js';


/** Waits for three segments, then checks a few seconds of the stream with the verifying listener. */
async function assertLiveAndValid(t: Test, base: string): Promise<void> {
  await waitForThreeSegments(base);
  const verifier = new HlsVerifier({ baseUrl: base, channel: 'fip', renditions: RENDITIONS, pollIntervalMs: 300 });
  verifier.start();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const report = await verifier.stop();
  t.same(report.errors, [], 'the verifying listener saw no broken rule');
  t.ok(report.segments.hifi!.length >= 3, `${report.segments.hifi!.length} segments checked`);
}

async function makeAacFile(t: Test, seconds: number): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'onair-input-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const path = join(directory, 'programme.aac');
  await new Promise<void>((resolve, reject) => {
    const ffmpeg = spawn('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=660:duration=${seconds}`, '-ac', '2', '-c:a', 'aac', '-b:a', '128k', '-f', 'adts', path]);
    ffmpeg.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))));
  });
  return path;
}

t.test('an SRT caller input pulls from a remote listener, with SRT options passed through', async (t) => {
  const srtPort = await freeUdpPort();
  const config = await testConfig({
    input: {
      id: 'studio',
      url: `srt://127.0.0.1:${srtPort}?mode=caller`,
      srt: { latency: 200, passphrase: 'correct-horse-battery', streamid: 'fip-main' },
    },
  });
  // The studio side listens, with the same passphrase: without it the handshake fails.
  const studio = new TestSignalSender({
    outputUrl: `srt://127.0.0.1:${srtPort}?mode=listener&passphrase=correct-horse-battery`,
  });
  studio.start();
  t.teardown(() => studio.close('SIGKILL'));
  await startRole(t, config, 'start');
  await assertLiveAndValid(t, originUrl(config));
});

t.test('an HTTP stream input (an Icecast-style mount) is read like any other feed', async (t) => {
  const aac = await makeAacFile(t, 30);
  const server = createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'audio/aac' });
    createReadStream(aac).pipe(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as { port: number }).port;
  const config = await testConfig({ input: { id: 'icecast', url: `http://127.0.0.1:${port}/fip.aac` } });
  await startRole(t, config, 'start');
  await assertLiveAndValid(t, originUrl(config));
});

t.test('a file input is played in real time as a live feed', async (t) => {
  const aac = await makeAacFile(t, 4);
  const config = await testConfig({ input: { id: 'file', url: aac } });
  await startRole(t, config, 'start');
  await assertLiveAndValid(t, originUrl(config));
});
