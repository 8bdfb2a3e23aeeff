/**
 * A pulled Icecast/SHOUTcast stream with its titles, through a real `onair start`: a loopback
 * Node HTTP server plays an Icecast mount (MP3 made by real FFmpeg in real time) with
 * `icy-metaint` and StreamTitle blocks inserted every metaint bytes, answering only a client
 * that asks `Icy-MetaData: 1`. The channel's `http://` input with `icyMetadata: true` airs
 * (status API) and its StreamTitle becomes now playing, then follows a title change. A first
 * answer that redirects is followed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { DEMO_RENDITIONS } from '../../src/demo.js';
import { killAndWait } from '../helpers/child-processes.js';
import { loopbackSettings } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { freeTcpPort } from '../helpers/ports.js';
import { waitUntil } from '../helpers/wait-until.js';

const TOKEN = 'operator-token-0123456789';
const METAINT = 8192;

/** One ICY metadata block: length byte, `StreamTitle='…';`, zero padding to 16 bytes. */
function icyBlock(title: string): Buffer {
  const text = Buffer.from(`StreamTitle='${title}';`, 'utf8');
  const length = Math.ceil(text.length / 16);
  const block = Buffer.alloc(1 + length * 16);
  block[0] = length;
  text.copy(block, 1);
  return block;
}

t.test('an http:// input with icyMetadata airs and its StreamTitle is the now playing', { timeout: 90_000 }, async (t) => {
  let title = "Nina Simone - Don't Let Me Be Misunderstood";
  const encoders = new Set<ChildProcess>();
  t.teardown(async () => {
    for (const encoder of encoders) await killAndWait(encoder, 'SIGKILL');
  });
  const asked: (string | undefined)[] = [];
  const upstream = createServer((request, response: ServerResponse) => {
    if (request.url === '/old') {
      response.writeHead(302, { location: '/fip.mp3' }).end();
      return;
    }
    asked.push(request.headers['icy-metadata'] as string | undefined);
    response.writeHead(200, { 'content-type': 'audio/mpeg', 'icy-metaint': String(METAINT), 'icy-name': 'test' });
    const encoder = spawn('ffmpeg', ['-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=700:sample_rate=48000', '-c:a', 'libmp3lame', '-b:a', '128k', '-f', 'mp3', 'pipe:1'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    encoders.add(encoder);
    let untilBlock = METAINT;
    encoder.stdout!.on('data', (chunk: Buffer) => {
      // Audio, with a metadata block after every METAINT audio bytes (chunks cut anywhere).
      let offset = 0;
      while (offset < chunk.length) {
        const take = Math.min(untilBlock, chunk.length - offset);
        response.write(chunk.subarray(offset, offset + take));
        offset += take;
        untilBlock -= take;
        if (untilBlock === 0) {
          response.write(icyBlock(title));
          untilBlock = METAINT;
        }
      }
    });
    response.on('close', () => encoder.kill('SIGKILL'));
  });
  upstream.listen(0, '127.0.0.1');
  await new Promise((resolve) => upstream.once('listening', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    upstream.closeAllConnections();
    upstream.close(() => resolve());
  }));
  const upstreamPort = (upstream.address() as AddressInfo).port;

  const adminPort = await freeTcpPort();
  const config = resolveConfig({
    ...(await loopbackSettings(1)),
    admin: { port: adminPort },
    api: { tokens: [TOKEN] },
    channels: [{ id: 'fip', renditions: DEMO_RENDITIONS, inputs: [{ id: 'relay', url: `http://127.0.0.1:${upstreamPort}/old`, icyMetadata: true }] }],
  });
  await startOnairProcess(t, { role: 'start', config, readyPattern: /ingest started/ });
  const api = `http://127.0.0.1:${adminPort}/api/channels/fip`;
  const headers = { authorization: `Bearer ${TOKEN}` };
  const nowPlaying = async (): Promise<Record<string, unknown> | undefined> => {
    const response = await fetch(`${api}/now-playing`, { headers });
    return response.status === 200 ? ((await response.json()) as Record<string, unknown>) : undefined;
  };

  await waitUntil(t, 'the pulled stream is on air', async () => ((await (await fetch(api, { headers })).json()) as { activeInput: string | null }).activeInput === 'relay', 30_000);
  t.equal(asked[0], '1', 'onair asked for ICY metadata');
  await waitUntil(t, 'the StreamTitle is now playing', async () => (await nowPlaying()) !== undefined, 10_000);
  t.match(await nowPlaying(), { artist: 'Nina Simone', title: "Don't Let Me Be Misunderstood" }, "a title with ' in it");

  title = 'Miles Davis - Blue in Green ♪';
  await waitUntil(t, 'the new StreamTitle is now playing', async () => (await nowPlaying())?.title === 'Blue in Green ♪', 10_000);
  t.match(await nowPlaying(), { artist: 'Miles Davis' });
});
