/**
 * `onair demo` (what `npm start` runs after the setup), as a newcomer meets it: the built CLI
 * on the embedded store, on free loopback ports given through the environment. It says where
 * to listen, its HLS master lists the AAC renditions, its MP3 mount plays with the demo's
 * title in ICY metadata, the Icecast status lists every mount, and SIGTERM stops it cleanly.
 */
import { spawn } from 'node:child_process';
import t from 'tap';
import { DEMO_NOW_PLAYING, DEMO_RENDITIONS } from '../../src/demo.js';
import { displayTitle } from '../../src/media/now-playing.js';
import { CLI_PATH } from '../helpers/onair-process.js';
import { freeTcpPort, freeUdpPort } from '../helpers/ports.js';
import { openStream, splitIcy } from '../helpers/progressive-listener.js';
import { eventually, within } from '../helpers/wait-until.js';

const METAINT = 16000;

t.test('the demo runs the whole pipeline: HLS, an MP3 mount with its title, the Icecast status, and a clean stop', async (t) => {
  const port = await freeTcpPort();
  const srtPort = await freeUdpPort();
  const child = spawn(process.execPath, [CLI_PATH, 'demo'], {
    env: { ...process.env, ONAIR_ORIGIN_PORT: String(port), ONAIR_DEMO_SRT_PORT: String(srtPort), ONAIR_ADMIN_PORT: '0', ONAIR_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const base = `http://127.0.0.1:${port}`;

  await eventually(30_000, async () => {
    if (!output.includes('onair demo is running')) throw new Error(`not running yet: ${output.slice(-500)}`);
  });
  t.match(output, `/fip-mp3.mp3`, 'it says where the MP3 mount is');

  const master = await eventually(40_000, async () => {
    const response = await fetch(`${base}/fip/fip.m3u8`);
    const body = await response.text();
    if (!response.ok || !body.includes('#EXT-X-STREAM-INF')) throw new Error(`master: ${response.status}`);
    return body;
  });
  for (const rendition of DEMO_RENDITIONS) t.match(master.value, `fip_${rendition.id}.m3u8`, `the master lists ${rendition.id}`);
  t.notMatch(master.value, 'fip_mp3.m3u8', 'the MP3 rendition is for progressive listeners, not the master');

  // The MP3 mount needs a first MP3 segment in the store; then it starts with a burst.
  const listener = await eventually(30_000, async () => {
    const stream = await openStream(port, '/fip-mp3.mp3', { headers: { 'Icy-MetaData': '1' } });
    if (stream.head.status !== 200) {
      stream.close();
      throw new Error(`mount: ${stream.head.status}`);
    }
    return stream;
  });
  t.equal(listener.value.header('content-type'), 'audio/mpeg');
  t.equal(listener.value.header('icy-name'), 'onair demo');
  t.equal(listener.value.header('icy-metaint'), String(METAINT));
  await eventually(15_000, async () => {
    if (splitIcy(listener.value.body(), METAINT).blocks.length < 1) throw new Error('no metadata block yet');
  });
  listener.value.close();
  const { audio, blocks } = splitIcy(listener.value.body(), METAINT);
  t.equal(blocks[0], `StreamTitle='${displayTitle(DEMO_NOW_PLAYING)}';`, 'the first block carries the demo title');
  t.equal(audio[0], 0xff, 'the audio starts on an MPEG audio frame sync');

  const status = (await (await fetch(`${base}/status-json.xsl`)).json()) as { icestats: { source: { listenurl: string }[] } };
  const mounts = status.icestats.source.map((source) => new URL(source.listenurl).pathname).sort();
  t.same(mounts, ['/fip-hifi.aac', '/fip-lofi.aac', '/fip-midfi.aac', '/fip-mp3.mp3'], 'the Icecast status lists every mount');

  child.kill('SIGTERM');
  const code = await within<number | null | string>(exited, 15_000, () => 'still running');
  t.equal(code, 0, 'SIGTERM stops it with exit code 0');
});
