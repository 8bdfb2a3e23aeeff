/**
 * Real players on onair's progressive mounts, with titles: FFmpeg (`-icy 1`) and VLC 3 (as an
 * unprivileged user: it refuses root) play /fip-hifi.aac (ADTS AAC) and /fip-midfi.mp3 (MPEG
 * audio) of a live channel fed by a test tone, while the now playing changes once.
 *
 * - FFmpeg: the station headers as it reads them (icy-name, icy-genre), each StreamTitle it reads
 *   ("Metadata update for StreamTitle", its verbose log), and the decoded tone, checked for gaps
 *   (test/helpers/tone-continuity.ts).
 * - VLC: its default HTTP access in VLC 3 never asks for ICY metadata; its `icyx://` scheme (the
 *   access VLC uses for Icecast/SHOUTcast streams) sends `Icy-MetaData: 1`, reads the blocks and
 *   sets the item's "Now Playing" meta, logging "New Icy-Title=…" at -vv. The test plays that URL
 *   with the audio going to a WAV file (--aout=afile) and reads the log.
 */
import t, { type Test } from 'tap';
import { displayTitle, serializeNowPlaying, type NowPlaying } from '../../src/media/now-playing.js';
import type { RunningOnair } from '../../src/onair.js';
import { originUrl, startRole, startSender, testConfig, waitForThreeSegments } from '../helpers/onair-harness.js';
import { minimumBufferSeconds, startProgressiveListener } from '../helpers/ffmpeg-listener.js';
import { analyseContinuity, describeToneRuns } from '../helpers/tone-continuity.js';
import { playWithVlc, vlcUnavailable } from '../helpers/vlc.js';
import { sleep, within } from '../helpers/wait-until.js';

const TONE_HZ = 500;
/** One frame: 1024 samples of AAC or 1152 of MP3 at 48 kHz (24 ms), plus the analysis's 5 ms window. */
const ONE_FRAME_MS = 26;
const FIRST: Omit<NowPlaying, 'setAt'> = { artist: 'Player Test', title: 'Überture' };
const SECOND: Omit<NowPlaying, 'setAt'> = { artist: 'Player Test', title: 'Second Movement' };
const ICY = { name: 'FIP player test', description: 'onair progressive mount', genre: 'Eclectic', url: 'https://example.org/fip' };
const VLC_SECONDS = 16;

const RENDITIONS = [
  { id: 'lofi', bitrate: '32k' },
  { id: 'hifi', bitrate: '128k' },
  { id: 'midfi', bitrate: '128k', codec: 'mp3' },
];

const noVlc = vlcUnavailable();
if (noVlc) t.fail(noVlc);

const MOUNTS = [
  { path: '/fip-hifi.aac', format: 'AAC', ffmpegDecoder: /Audio: aac/, vlcDecoder: /using audio decoder module "faad"/ },
  { path: '/fip-midfi.mp3', format: 'MP3', ffmpegDecoder: /Audio: mp3/, vlcDecoder: /using audio decoder module "(mpg123|mad)"/ },
] as const;

/**
 * One channel for the four players, which play at once (they only listen: the channel's timing is
 * the same for each). The now playing is FIRST when they start and changes once to SECOND, when
 * each of them has reached its point: the FFmpeg listeners 8 s of audio with FIRST read, the VLC
 * runs 6 s of playing (VLC is a black box until it exits).
 */
async function startChannel(t: Test): Promise<{ base: string; onair: RunningOnair }> {
  const config = await testConfig({ segmentSeconds: 1, channel: { renditions: RENDITIONS, icy: ICY } });
  const onair = await startRole(t, config, 'start');
  startSender(t, config, TONE_HZ);
  const base = originUrl(config);
  await waitForThreeSegments(base);
  await setNowPlaying(onair, FIRST);
  return { base, onair };
}

function setNowPlaying(onair: RunningOnair, nowPlaying: Omit<NowPlaying, 'setAt'>): Promise<void> {
  return onair.store.putNowPlaying('fip', serializeNowPlaying({ ...nowPlaying, setAt: Date.now() }));
}

const { base, onair } = await startChannel(t);
const players = MOUNTS.length * (noVlc ? 1 : 2);
let ready = 0;
let markChanged: () => void = () => undefined;
const changed = new Promise<void>((resolve) => (markChanged = resolve));
/** A player has reached its point: the last of them changes the title; resolves once it is changed (bounded). */
async function readyForSecondTitle(): Promise<void> {
  ready += 1;
  if (ready === players) await setNowPlaying(onair, SECOND).then(markChanged);
  await within(changed, 40_000, () => Promise.reject(new Error(`only ${ready} of ${players} players reached their point`)));
}
t.jobs = players;

for (const mount of MOUNTS) {
  t.test(`FFmpeg plays ${mount.path} (${mount.format}) with the station headers, both titles and an unbroken tone`, async (t) => {
    const listener = startProgressiveListener(t, `${base}${mount.path}`);
    await listener.waitForTitle(displayTitle(FIRST), 10_000);
    await listener.waitForSeconds(8, 15_000);
    await readyForSecondTitle();
    await listener.waitForTitle(displayTitle(SECOND), 10_000);
    // The analysis below leaves the last second out and wants 12 s: 14 s of audio heard.
    await listener.waitForSeconds(14, 15_000);
    const heard = await listener.stop();

    t.match(heard.log, mount.ffmpegDecoder, `FFmpeg decoded the stream as ${mount.format}`);
    t.equal(heard.inputMetadata['icy-name'], ICY.name, 'icy-name from the channel config');
    t.equal(heard.inputMetadata['icy-genre'], ICY.genre, 'icy-genre from the channel config');
    t.same(heard.titles.filter((title) => title !== ''), [displayTitle(FIRST), displayTitle(SECOND)], 'FFmpeg read the title, then the changed one, and no other');

    const report = analyseContinuity(heard.pcm.subarray(0, heard.pcm.length - heard.sampleRate), heard.sampleRate, [TONE_HZ]);
    t.ok(report.seconds >= 12, `${report.seconds.toFixed(1)} s of audio decoded`);
    t.same(report.toneRuns.map((run) => run.tone), [TONE_HZ], `the whole stream is the ${TONE_HZ} Hz tone (${describeToneRuns(report.toneRuns)})`);
    t.ok(report.longestSilenceMs <= ONE_FRAME_MS, `no silence longer than one frame (longest ${report.longestSilenceMs.toFixed(0)} ms)`);
    t.ok(report.beeps.length >= 10, `${report.beeps.length} one-second beeps heard`);
    t.same(report.splices, [], 'every second of the tone is whole: no frame lost or repeated across segment boundaries');
    const buffered = minimumBufferSeconds(heard, 2000);
    t.ok(buffered > 0, `a player would never have run dry (at least ${buffered.toFixed(2)} s buffered after the start)`);
  });
}

for (const mount of MOUNTS) {
  t.test(`VLC plays ${mount.path} (${mount.format}) for ${VLC_SECONDS} s and shows both titles as Now Playing`, { skip: noVlc }, async (t) => {
    const url = `${base.replace(/^http:/, 'icyx:')}${mount.path}`;
    const changeTitle = sleep(6000).then(readyForSecondTitle);
    const played = await playWithVlc(url, VLC_SECONDS);
    await changeTitle;

    t.comment(`VLC exited ${played.code}, ${played.audioSeconds.toFixed(2)} s of audio, ${played.decoderErrors.length} decoder error lines`);
    t.match(played.log, /Icy-MetaInt: 16000/, 'VLC asked for ICY metadata and read icy-metaint');
    t.match(played.log, mount.vlcDecoder, `VLC decoded ${mount.format}`);
    const titles = [...played.log.matchAll(/New Icy-Title=(.*)$/gm)].map((match) => match[1]!.trim()).filter((title) => title !== '');
    t.same(titles, [displayTitle(FIRST), displayTitle(SECOND)], 'VLC took the title, then the changed one, as Now Playing');
    t.same(played.decoderErrors.slice(0, 10), [], 'VLC logged no timestamp, buffering or decoder error');
    t.ok(played.audioSeconds >= VLC_SECONDS - 2, `VLC wrote ${played.audioSeconds.toFixed(2)} s of audio (≥ ${VLC_SECONDS - 2} s)`);
  });
}
