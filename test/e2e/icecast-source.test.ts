/**
 * An Icecast source client feeds a channel of a real `onair start` (node dist/src/cli.js):
 * real FFmpeg sends MP3 to `icecast://source:…@127.0.0.1:PORT/live` (PUT with Expect:
 * 100-continue), the status API shows the source input on air, and a metadata update sent to
 * the same listener with the source password (as BUTT, Mixxx and Liquidsoap do) is the
 * channel's now playing in the API. FFmpeg stopped: the safety source takes over; the same
 * client again with the legacy SOURCE method: back on air. A wrong source password is refused
 * (FFmpeg fails, nothing airs). Icecast's admin endpoint on the origin port sets the now
 * playing with curl and Basic auth, and a wrong password gets one 401 whether the mount exists
 * or not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import t, { type Test } from 'tap';
import { resolveConfig } from '../../src/config/load-config.js';
import { DEMO_RENDITIONS } from '../../src/demo.js';
import { killAndWait } from '../helpers/child-processes.js';
import { loopbackSettings } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { freeTcpPort } from '../helpers/ports.js';
import { run } from '../helpers/recording.js';
import { waitUntil } from '../helpers/wait-until.js';

const TOKEN = 'operator-token-0123456789';
const SOURCE_PASSWORD = 'studio-secret-1';
const ADMIN_PASSWORD = 'admin-secret-12';

interface ChannelView {
  activeInput: string | null;
}

/** FFmpeg as an Icecast source client: a tone, MP3, in real time, until stopped. */
function ffmpegSource(t: Test, url: string, extra: string[] = []): ChildProcess {
  const child = spawn(
    'ffmpeg',
    ['-nostdin', '-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=500:sample_rate=48000', '-c:a', 'libmp3lame', '-b:a', '128k', ...extra, '-f', 'mp3', '-content_type', 'audio/mpeg', url],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  (child as ChildProcess & { errors: () => string }).errors = () => stderr;
  t.teardown(() => killAndWait(child, 'SIGKILL'));
  return child;
}

t.test('FFmpeg as a source client feeds the channel; its metadata is now playing; Icecast admin on the origin', { timeout: 100_000 }, async (t) => {
  const sourcePort = await freeTcpPort();
  const adminPort = await freeTcpPort();
  const settings = await loopbackSettings(1);
  const config = resolveConfig({
    ...settings,
    origin: { ...(settings.origin as object), icecastAdmin: { password: ADMIN_PASSWORD } },
    admin: { port: adminPort },
    api: { tokens: [TOKEN] },
    channels: [
      {
        id: 'fip',
        renditions: DEMO_RENDITIONS,
        inputs: [{ id: 'studio', url: `icecast://127.0.0.1:${sourcePort}/live`, source: { password: SOURCE_PASSWORD } }],
        inputTimeoutMs: 1000,
        recoverSeconds: 0,
      },
    ],
  });
  const onair = await startOnairProcess(t, { role: 'start', config, readyPattern: /ingest started/ });
  const api = `http://127.0.0.1:${adminPort}/api`;
  const origin = `http://127.0.0.1:${config.origin.port}`;
  const authorization = { authorization: `Bearer ${TOKEN}` };
  const activeInput = async (): Promise<string | null> => ((await (await fetch(`${api}/channels/fip`, { headers: authorization })).json()) as ChannelView).activeInput;
  const nowPlaying = async (): Promise<Record<string, unknown> | undefined> => {
    const response = await fetch(`${api}/channels/fip/now-playing`, { headers: authorization });
    return response.status === 200 ? ((await response.json()) as Record<string, unknown>) : undefined;
  };
  const onAir = (input: string, what: string) => waitUntil(t, what, async () => (await activeInput()) === input, 30_000);

  // No source connected: the input is unhealthy (before any audio the channel has nothing on air).
  t.equal(await activeInput(), null, 'no source: nothing on air yet');

  // A wrong password: FFmpeg is refused (401) and exits; nothing airs.
  const intruder = ffmpegSource(t, `icecast://source:wrong-password@127.0.0.1:${sourcePort}/live`);
  const [intruderCode] = (await once(intruder, 'exit')) as [number | null];
  t.not(intruderCode, 0, 'FFmpeg with a wrong password fails');
  t.match((intruder as ChildProcess & { errors: () => string }).errors(), /401|Unauthorized|authoriz/i);
  t.equal(await activeInput(), null, 'the refused client never aired');

  // PUT (FFmpeg's default: Expect: 100-continue).
  const studio = ffmpegSource(t, `icecast://source:${SOURCE_PASSWORD}@127.0.0.1:${sourcePort}/live`);
  await onAir('studio', 'the source client is on air');

  // A metadata update on the source listener, with the source password (curl, as a script would).
  const update = await run('curl', ['-sS', '-u', `source:${SOURCE_PASSWORD}`, `http://127.0.0.1:${sourcePort}/admin/metadata?mode=updinfo&mount=/live&song=Nina%20Simone%20-%20Sinnerman`]);
  t.match(update.stdout, /Metadata update successful/);
  await waitUntil(t, 'the source title is now playing', async () => (await nowPlaying())?.title === 'Sinnerman', 5000);
  t.match(await nowPlaying(), { artist: 'Nina Simone', title: 'Sinnerman' });

  await waitUntil(t, 'its audio is in the playlist', async () => /#EXTINF/.test(await (await fetch(`${origin}/fip/fip_hifi.m3u8`)).text()), 10_000);

  // FFmpeg stops: the safety source takes over.
  await killAndWait(studio, 'SIGTERM');
  await onAir('fallback', 'the safety source takes over once the source is gone');

  // The legacy SOURCE method (libshout's, FFmpeg's -legacy_icecast): the source is back on air.
  ffmpegSource(t, `icecast://source:${SOURCE_PASSWORD}@127.0.0.1:${sourcePort}/live`, ['-legacy_icecast', '1']);
  await onAir('studio', 'a source connecting again takes over');

  // Icecast's admin endpoint on the origin port, with curl and Basic auth.
  const admin = (credentials: string, mount: string, song = 'Miles%20Davis%20-%20So%20What') =>
    run('curl', ['-sS', '-u', credentials, '-w', '\n%{http_code}', `${origin}/admin/metadata?mount=${mount}&mode=updinfo&song=${song}`]);
  const set = await admin(`admin:${ADMIN_PASSWORD}`, '/fip-hifi.aac');
  t.match(set.stdout, /<iceresponse><message>Metadata update successful<\/message><return>1<\/return><\/iceresponse>\n*200$/);
  t.match(await nowPlaying(), { artist: 'Miles Davis', title: 'So What' });
  const wrongExisting = await admin('admin:wrong-password', '/fip-hifi.aac', 'X');
  const wrongUnknown = await admin('admin:wrong-password', '/nope-hifi.aac', 'X');
  t.match(wrongExisting.stdout, /401$/);
  t.equal(wrongExisting.stdout, wrongUnknown.stdout, 'the same 401 whether the mount exists or not');
  const headers = await run('curl', ['-sS', '-o', '/dev/null', '-D', '-', `${origin}/admin/metadata?mount=/fip-hifi.aac&mode=updinfo&song=X`]);
  t.match(headers.stdout, /www-authenticate: Basic realm="Icecast2 Server"/i);
  const unknown = await admin(`admin:${ADMIN_PASSWORD}`, '/nope-hifi.aac');
  t.match(unknown.stdout, /Source does not exist[^]*400$/);
  t.match(await nowPlaying(), { title: 'So What' }, 'refused updates changed nothing');
  t.ok(onair.pid > 0);
});
