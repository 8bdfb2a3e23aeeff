/**
 * Entitlement tokens end to end (docs/architecture.md, "Entitlement tokens"): the built CLI
 * (`onair start`, a child process) packages a tone FFmpeg sends over SRT on a signed fmp4
 * channel, with `entitlements` verifying JWTs against a PEM key generated here. A premium JWT
 * gets a signed master playlist URL and a signed MPD; FFmpeg plays the signed master over HTTP
 * (the media playlist, init segment and segments carry the token), and FFmpeg decodes init +
 * segments fetched by hand. An expired JWT, a wrong audience and a free-tier JWT are refused or
 * entitled to nothing by the real process.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { exportSPKI, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import t from 'tap';
import { originUrl, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';

const execFileAsync = promisify(execFile);
const READY = /"msg":"ingest started"/;
const ISSUER = 'https://id.radio.test/';
const AUDIENCE = 'onair-playback';

interface Granted {
  expiresAt: number;
  channels: { id: string; access: string; hls: string; dash: string | null; mounts: string[] }[];
}

t.test('a premium JWT gets signed URLs that FFmpeg plays from a real onair; expired, wrong-audience and free-tier JWTs do not', async (t) => {
  const keys = await generateKeyPair('RS256', { extractable: true });
  const directory = await mkdtemp(join(tmpdir(), 'onair-playback-e2e-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const publicKeyFile = join(directory, 'idp.pem');
  await writeFile(publicKeyFile, await exportSPKI(keys.publicKey));

  const base = await testConfig({ segmentSeconds: 1, channel: { container: 'fmp4' } });
  const config = {
    ...base,
    signing: { key: 'onair-e2e-signing-key-0123456789abcdef' },
    entitlements: { issuer: ISSUER, audience: AUDIENCE, publicKeyFile, algorithms: ['RS256'], tiers: { free: [], premium: ['fip'] } },
    channels: base.channels.map((channel) => ({ ...channel, access: 'signed' })),
  };
  const origin = originUrl(base);
  startSender(t, base);
  await startOnairProcess(t, { role: 'start', config, readyPattern: READY, readyTimeoutMs: 30_000 });

  const issue = (claims: JWTPayload, audience = AUDIENCE, expiresIn = 600): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256' }).setIssuer(ISSUER).setAudience(audience).setIssuedAt(now).setExpirationTime(now + expiresIn).sign(keys.privateKey);
  };
  const authorize = async (jwt: string): Promise<Response> => fetch(`${origin}/auth/playback`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` } });

  const premium = await authorize(await issue({ tier: 'premium' }));
  t.equal(premium.status, 200);
  t.equal(premium.headers.get('cache-control'), 'no-store');
  const granted = (await premium.json()) as Granted;
  t.equal(granted.channels.length, 1);
  const fip = granted.channels[0]!;
  t.match(fip, { id: 'fip', access: 'signed' });
  t.ok(fip.mounts.length > 0 && fip.mounts.every((mount) => mount.endsWith(`?${fip.hls.split('?')[1]}`)), 'the mounts carry the token');
  t.match(fip.hls, /^\/fip\/fip\.m3u8\?token=/);
  t.match(fip.dash, /^\/fip\/fip\.mpd\?token=/);
  t.ok(granted.expiresAt > Date.now() / 1000 + 3500, 'the URLs last about urlTtl (1 h)');

  t.equal((await fetch(`${origin}/fip/fip.m3u8`)).status, 403, 'without the token the channel is refused');

  // Live once the signed media playlist lists three segments (bounded wait).
  const token = new URL(fip.hls, origin).searchParams.get('token')!;
  const media = await waitFor(
    'three segments behind the signed URL',
    async () => {
      const master = await fetch(`${origin}${fip.hls}`);
      if (master.status !== 200) return undefined;
      const variant = (await master.text()).split('\n').find((line) => line.startsWith('fip_'));
      const response = await fetch(`${origin}/fip/${variant}`);
      const text = response.status === 200 ? await response.text() : '';
      return text.split('\n').filter((line) => line.startsWith('#EXTINF')).length >= 3 ? text : undefined;
    },
    45_000,
  );
  const lines = media.split('\n');
  const initUri = /URI="([^"]+)"/.exec(lines.find((line) => line.startsWith('#EXT-X-MAP'))!)![1]!;
  const segmentUris = lines.filter((line) => /\.m4s\?token=/.test(line));
  t.ok(initUri.endsWith(`?token=${token}`) && segmentUris.every((uri) => uri.endsWith(`?token=${token}`)), 'every URI of the media playlist carries the token');

  // FFmpeg decodes the init segment and segments fetched through the signed URIs.
  const parts = await Promise.all([initUri, ...segmentUris].map(async (uri) => {
    const response = await fetch(`${origin}/fip/${uri}`);
    t.equal(response.status, 200, uri);
    return Buffer.from(await response.arrayBuffer());
  }));
  const joined = join(directory, 'joined.mp4');
  await writeFile(joined, Buffer.concat(parts));
  const decoded = await execFileAsync('ffmpeg', ['-nostdin', '-v', 'error', '-i', joined, '-f', 'null', '-'], { timeout: 30_000 });
  t.equal(decoded.stderr, '', 'FFmpeg decodes init + segments without a message');

  // FFmpeg plays the signed master URL itself: 2 s of audio through the HLS demuxer.
  const played = await execFileAsync('ffmpeg', ['-nostdin', '-v', 'error', '-i', `${origin}${fip.hls}`, '-t', '2', '-map', '0:a:0', '-f', 'null', '-'], { timeout: 40_000 });
  t.equal(played.stderr, '', 'FFmpeg plays the signed master playlist URL');

  const mpd = await fetch(`${origin}${fip.dash}`);
  t.equal(mpd.status, 200, 'the signed MPD is served');
  t.match(await mpd.text(), `?token=${token}`, 'its segment templates carry the token');

  const expired = await authorize(await issue({ tier: 'premium' }, AUDIENCE, -120));
  t.equal(expired.status, 401);
  t.match(await expired.json(), { error: 'jwt_expired' });
  const elsewhere = await authorize(await issue({ tier: 'premium' }, 'another-service'));
  t.equal(elsewhere.status, 401);
  t.match(await elsewhere.json(), { error: 'jwt_audience' });
  const free = await authorize(await issue({ tier: 'free' }));
  t.equal(free.status, 200);
  t.same(((await free.json()) as Granted).channels, [], 'the free tier is not entitled to the premium channel');
});
