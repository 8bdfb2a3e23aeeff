/**
 * HTTPS end to end: `onair start` (the built CLI) with `origin.tls` (HTTP/2) and `admin.tls`
 * from certificates of a test CA made by openssl, fed by FFmpeg over SRT. Chromium, whose NSS
 * db under a temp HOME trusts that CA (certutil; no certificate error is ignored), plays the
 * channel through hls.js on the player page over h2. SIGHUP then swaps in a renewed
 * certificate: new connections are shown its serial while playback goes on; a broken pair on
 * the next SIGHUP is logged with ONAIR_TLS_RELOAD_FAILED and the renewed one stays. A missing
 * certificate file stops the CLI at start with exit 2 and the key named.
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { launchChromium, PlayerPage } from '../helpers/browser.js';
import { startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { CLI_PATH, startOnairProcess } from '../helpers/onair-process.js';
import { makeTestCa, presentedSerial } from '../helpers/test-certificates.js';

const execFileAsync = promisify(execFile);
const PLAY_SECONDS = 4;
const AFTER_RELOAD_SECONDS = 2;

t.test('hls.js in Chromium plays over HTTPS and HTTP/2 trusting the test CA; SIGHUP renews the certificate without a break', async (t) => {
  const ca = await makeTestCa(t);
  const leaf = await ca.issue('leaf', '1E01');
  const renewed = await ca.issue('renewed', '2E02');
  const base = await testConfig({ segmentSeconds: 1 });
  const config = {
    ...base,
    origin: { ...base.origin, tls: { certFile: leaf.certFile, keyFile: leaf.keyFile, http2: true } },
    admin: { ...base.admin, tls: { certFile: leaf.certFile, keyFile: leaf.keyFile } },
  };
  const startedAt = Date.now();
  const onair = await startOnairProcess(t, { role: 'start', config, readyPattern: /"msg":"ingest started"/, readyTimeoutMs: 30_000 });
  startSender(t, base);
  const originUrl = `https://127.0.0.1:${base.origin.port}`;

  // An NSS db that trusts the test CA, where Chromium on Linux looks for it: $HOME/.pki/nssdb.
  const home = join(ca.dir, 'home');
  const nssDb = join(home, '.pki', 'nssdb');
  await mkdir(nssDb, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${nssDb}`, '-N', '--empty-password'], { stdio: 'pipe' });
  execFileSync('certutil', ['-d', `sql:${nssDb}`, '-A', '-t', 'C,,', '-n', 'onair test CA', '-i', ca.caFile], { stdio: 'pipe' });
  const browserStarting = launchChromium(t, { env: { ...process.env, HOME: home } });
  // The same Chromium without that db refuses the certificate: the trust above is what lets it play.
  const untrusting = await launchChromium(t, { env: { ...process.env, HOME: join(ca.dir, 'empty-home') } });
  const refused = await (await untrusting.newPage()).goto(`${originUrl}/`).then(
    () => 'loaded',
    (error: Error) => error.message,
  );
  t.match(refused, /ERR_CERT_AUTHORITY_INVALID/, 'without the test CA in its NSS db, Chromium refuses the certificate');
  await untrusting.close();

  const curl = async (url: string, ...args: string[]): Promise<string> =>
    (await execFileAsync('curl', ['-sS', '--cacert', ca.caFile, ...args, url], { timeout: 15_000 })).stdout;
  await waitFor(
    'three segments over HTTPS',
    async () => ((await curl(`${originUrl}/fip/fip_hifi.m3u8`, '--http2')).split('#EXTINF').length > 3 ? true : undefined),
    30_000,
  );

  t.comment(`live over HTTPS after ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  const player = await PlayerPage.open(await browserStarting, originUrl);
  const playback = await player.play('fip', PLAY_SECONDS, 30_000);
  t.same(playback.errors, [], 'no hls.js, media, page or certificate error');
  t.ok(playback.advancedSeconds >= PLAY_SECONDS, `media time advanced ${playback.advancedSeconds.toFixed(2)} s over HTTPS`);
  t.comment(`played after ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  const protocols = await player.page.evaluate(() =>
    performance.getEntriesByType('resource').flatMap((entry) => (/\.(m3u8|ts)(\?|$)/.test(entry.name) ? [(entry as PerformanceResourceTiming).nextHopProtocol] : [])),
  );
  t.ok(protocols.length > 0 && protocols.every((protocol) => protocol === 'h2'), `playlists and segments over h2 (${[...new Set(protocols)].join(', ')})`);

  const adminUrl = /"url":"(https:\/\/[^"]+)","msg":"admin listening"/.exec(onair.output())?.[1];
  t.ok(adminUrl, 'the admin listener is HTTPS');
  t.match(await curl(`${adminUrl}/metrics`, '-w', '\n%{http_version} %{http_code}'), /\n1\.1 200$/, '/metrics over HTTPS (HTTP/1.1: admin.tls has no http2)');
  t.equal(await presentedSerial(ca.caFile, base.origin.port), '1E01');

  // A renewal (as certbot's deploy hook does): new files, then SIGHUP.
  await copyFile(renewed.certFile, leaf.certFile);
  await copyFile(renewed.keyFile, leaf.keyFile);
  onair.kill('SIGHUP');
  await waitFor('the renewed certificate', async () => ((await presentedSerial(ca.caFile, base.origin.port)) === '2E02' ? true : undefined), 10_000);
  t.pass('new connections to the origin are shown the renewed certificate (serial 2E02)');
  const adminPort = Number(new URL(adminUrl!).port);
  t.equal(await presentedSerial(ca.caFile, adminPort), '2E02', 'and to the admin listener');
  const afterReload = await player.playFor(AFTER_RELOAD_SECONDS, 20_000);
  t.same(afterReload.errors, [], 'playback goes on across the reload');
  t.ok(afterReload.advancedSeconds >= AFTER_RELOAD_SECONDS, `media time advanced ${afterReload.advancedSeconds.toFixed(2)} s after the reload`);

  // A broken renewal: the key is not PEM. The renewed pair stays.
  await writeFile(leaf.keyFile, 'not a key');
  onair.kill('SIGHUP');
  await waitFor('the failed reload logged', async () => (/ONAIR_TLS_RELOAD_FAILED/.test(onair.output()) ? true : undefined), 10_000);
  t.match(onair.output(), /"code":"ONAIR_TLS_RELOAD_FAILED".*origin\.tls\.keyFile/, 'logged with its code, naming the key');
  t.equal(await presentedSerial(ca.caFile, base.origin.port), '2E02', 'the previous certificate is kept');
  t.match(await curl(`${originUrl}/fip/fip.m3u8`, '--http2', '-w', '\n%{http_version} %{http_code}'), /\n2 200$/, 'and HTTPS is still served');

  // The player's h2 session is still open: SIGTERM must end it rather than wait for it (SIGKILL after 3 s).
  t.same(await onair.stop(), { code: 0, signal: null }, 'SIGTERM stops onair at once with the browser still connected');
});

t.test('a missing certificate file stops `onair origin` at start with exit 2, naming the key', async (t) => {
  const base = await testConfig({});
  const directory = (await makeTestCa(t)).dir;
  const configPath = join(directory, 'config.json');
  await writeFile(configPath, JSON.stringify({ ...base, origin: { ...base.origin, tls: { certFile: join(directory, 'absent.pem'), keyFile: join(directory, 'absent.key') } } }));
  const exit = await execFileAsync(process.execPath, [CLI_PATH, 'origin', '--config', configPath], { timeout: 15_000 }).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => error,
  );
  t.equal(exit.code, 2);
  t.match(exit.stderr, /origin\.tls\.certFile: cannot read .*absent\.pem \(ENOENT\)/);
});
