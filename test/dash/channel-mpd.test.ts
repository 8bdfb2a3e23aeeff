/**
 * The channel MPDs (src/dash/channel-mpd.ts) from hand-built sequence states: golden XML for a
 * live window, a discontinuity (packager takeover: a new run) starting a second Period with its
 * own presentationTimeOffset, init and media names, and the DVR MPD over the DVR window.
 */
import t from 'tap';
import { dvrMpdName, mpdName, renderChannelMpds, type MpdChannel } from '../../src/dash/channel-mpd.js';
import { isoDuration, timelineEntries } from '../../src/dash/mpd-writer.js';
import { segmentUri } from '../../src/hls/published-names.js';
import type { ChannelState, WindowSegment } from '../../src/hls/sequence-state.js';

const SAMPLE_RATE = 48_000;
/** 2-s segments at 48 kHz hold 94 or 93 frames of 1024 samples. */
const LONG = (94 * 1024) / SAMPLE_RATE;
const SHORT = (93 * 1024) / SAMPLE_RATE;
const PDT = Date.UTC(2027, 0, 1, 12, 0, 0);

const channel: MpdChannel = {
  id: 'fip',
  sampleRate: SAMPLE_RATE,
  renditions: [
    { id: 'lofi', codec: 'aac', bitrate: 32_000 },
    { id: 'hifi', codec: 'aac', bitrate: 192_000 },
    { id: 'midfi', codec: 'mp3', bitrate: 128_000 },
  ],
};

/** Consecutive segments from `msn`, PDT back to back, of the given durations. */
function segments(msn: number, run: number, durations: number[], pdt: number, discontinuityFirst = false): WindowSegment[] {
  let at = pdt;
  return durations.map((durationSeconds, index) => {
    const segment = { msn: msn + index, run, durationSeconds, programDateTime: at, discontinuity: discontinuityFirst && index === 0, bytes: { lofi: 8000, hifi: 48_000, midfi: 32_000 } };
    at += durationSeconds * 1000;
    return segment;
  });
}

function state(window: WindowSegment[], nextPts: number, extra: Partial<ChannelState> = {}): ChannelState {
  return {
    version: 1,
    targetDuration: 2,
    nextMsn: window.at(-1)!.msn + 1,
    discontinuitySequence: 4,
    nextPts,
    window,
    bandwidth: { hifi: { peak: 196_000.4, bits: 0, seconds: 0 } },
    ...extra,
  };
}

// PTS 900000 (10 s) is sample 480000; three segments of 96256 + 95232 + 96256 samples follow.
const START_PTS = 900_000;
const SAMPLES = [96_256, 95_232, 96_256];
const END_PTS = START_PTS + ((SAMPLES[0]! + SAMPLES[1]! + SAMPLES[2]!) * 90_000) / SAMPLE_RATE;

t.test('a live window is one Period: SegmentTimeline of exact sample counts, $Number$ = MSN, one AdaptationSet per codec', async (t) => {
  const mpds = renderChannelMpds(channel, state(segments(100, 7, [LONG, SHORT, LONG], PDT), END_PTS));
  t.same(Object.keys(mpds), ['fip.mpd'], 'only the live MPD without a DVR window');
  t.equal(
    mpds['fip.mpd'],
    `<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019" type="dynamic" availabilityStartTime="1970-01-01T00:00:00.000Z" publishTime="2027-01-01T12:00:05.995Z" minimumUpdatePeriod="PT2S" minBufferTime="PT2S" timeShiftBufferDepth="PT5.994667S" suggestedPresentationDelay="PT6S" maxSegmentDuration="PT2.005333S">
  <Period id="4" start="PT1798804800S">
    <AdaptationSet id="0" contentType="audio" mimeType="audio/mp4" codecs="mp4a.40.2" audioSamplingRate="48000" segmentAlignment="true" startWithSAP="1">
      <SegmentTemplate timescale="48000" presentationTimeOffset="480000" startNumber="100" initialization="$RepresentationID$/init-7.mp4" media="$RepresentationID$/$Number$-7.m4s">
        <SegmentTimeline>
          <S t="480000" d="96256"/>
          <S d="95232"/>
          <S d="96256"/>
        </SegmentTimeline>
      </SegmentTemplate>
      <Representation id="lofi" bandwidth="33600"/>
      <Representation id="hifi" bandwidth="196000"/>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" codecs="mp4a.40.34" audioSamplingRate="48000" segmentAlignment="true" startWithSAP="1">
      <SegmentTemplate timescale="48000" presentationTimeOffset="480000" startNumber="100" initialization="$RepresentationID$/init-7.mp4" media="$RepresentationID$/$Number$-7.m4s">
        <SegmentTimeline>
          <S t="480000" d="96256"/>
          <S d="95232"/>
          <S d="96256"/>
        </SegmentTimeline>
      </SegmentTemplate>
      <Representation id="midfi" bandwidth="134400"/>
    </AdaptationSet>
  </Period>
  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="/time"/>
</MPD>
`,
  );
});

t.test('the media template expands to the URI the HLS media playlist lists for that MSN and run', async (t) => {
  const mpd = renderChannelMpds(channel, state(segments(100, 7, [LONG, SHORT, LONG], PDT), END_PTS))['fip.mpd']!;
  const media = /media="([^"]+)"/.exec(mpd)![1]!;
  t.equal(media.replace('$RepresentationID$', 'hifi').replace('$Number$', '101'), segmentUri('hifi', 101, 7, 'm4s' as 'ts'));
});

t.test('a discontinuity (a takeover: new run) starts a new Period with its own start, offset, numbers and init segment', async (t) => {
  const first = segments(100, 7, [LONG, SHORT], PDT);
  const takeoverPdt = PDT + (LONG + SHORT) * 1000 + 250;
  const second = segments(102, 9, [LONG, SHORT], takeoverPdt, true);
  // The new run continues the stored PTS line: no gap on the media timeline.
  const endPts = START_PTS + ((96_256 + 95_232) * 2 * 90_000) / SAMPLE_RATE;
  const mpd = renderChannelMpds(channel, state([...first, ...second], endPts))['fip.mpd']!;
  const periods = [...mpd.matchAll(/<Period id="([^"]+)" start="([^"]+)">/g)].map((match) => [match[1], match[2]]);
  t.same(periods, [
    ['4', 'PT1798804800S'],
    ['5', isoDuration(takeoverPdt / 1000)],
  ], 'the second Period is the next discontinuity sequence number and starts at its first segment');
  const templates = [...mpd.matchAll(/presentationTimeOffset="(\d+)" startNumber="(\d+)" initialization="([^"]+)" media="([^"]+)"/g)].map((match) => match.slice(1));
  t.same(templates[0], ['480000', '100', '$RepresentationID$/init-7.mp4', '$RepresentationID$/$Number$-7.m4s']);
  t.same(templates[2], [String(480_000 + 96_256 + 95_232), '102', '$RepresentationID$/init-9.mp4', '$RepresentationID$/$Number$-9.m4s']);
  t.match(mpd, `<S t="${480_000 + 96_256 + 95_232}" d="96256"/>`, 'the second timeline goes on from the first');
});

t.test('Period ids stay the same while the window slides past the discontinuity', async (t) => {
  const all = [...segments(100, 7, [LONG, SHORT], PDT), ...segments(102, 9, [LONG, SHORT, LONG], PDT + 5000, true)];
  const endPts = 5_000_000;
  const before = renderChannelMpds(channel, state(all.slice(1), endPts, { discontinuitySequence: 4 }))['fip.mpd']!;
  // The tagged segment leaves: the discontinuity sequence goes up by one (RFC 8216 §6.2.2).
  const after = renderChannelMpds(channel, state(all.slice(3), endPts, { discontinuitySequence: 5 }))['fip.mpd']!;
  const ids = (mpd: string) => [...mpd.matchAll(/<Period id="([^"]+)"/g)].map((match) => match[1]);
  t.same(ids(before), ['4', '5']);
  t.same(ids(after), ['5']);
  const offsets = (mpd: string) => [...mpd.matchAll(/<S t="(\d+)"/g)].map((match) => Number(match[1]));
  t.equal(offsets(after)[0], offsets(before)[2]! + 96_256, "the same segment keeps its time (index 2: the second Period's first AdaptationSet)");
});

t.test('a DVR window gets its own MPD, deeper time shift buffer, discontinuity ids counted as the DVR playlist does', async (t) => {
  const live = segments(104, 7, [LONG, SHORT, LONG], PDT + 8000);
  const older = segments(100, 7, [LONG, SHORT, LONG, SHORT], PDT, true);
  const dvr = [...older, ...live].map(({ msn, run, durationSeconds, programDateTime, discontinuity }) => ({ msn, run, durationSeconds, programDateTime, discontinuity }));
  const mpds = renderChannelMpds(channel, state(live, 9_000_000, { dvr }));
  t.same(Object.keys(mpds).sort(), [dvrMpdName('fip'), mpdName('fip')].sort());
  const dvrMpd = mpds['fip_dvr.mpd']!;
  t.match(dvrMpd, 'startNumber="100"');
  t.match(dvrMpd, `timeShiftBufferDepth="${isoDuration(4 * LONG + 3 * SHORT)}"`);
  // The DVR list's tag at MSN 100 is older than the live window: the DVR's sequence is one less, and its segments' count is the live one.
  t.match(dvrMpd, '<Period id="4"');
  t.match(mpds['fip.mpd']!, '<Period id="4"');
});

t.test('no MPD while nothing is listed (an MPD needs a Period)', async (t) => {
  t.same(renderChannelMpds(channel, { ...state(segments(1, 1, [LONG], PDT), 0), window: [] }), {});
});

t.test('SegmentTimeline entries: t only where the timeline jumps, r for repeats', async (t) => {
  t.same(
    timelineEntries([
      { time: 0, duration: 10 },
      { time: 10, duration: 10 },
      { time: 20, duration: 9 },
      { time: 40, duration: 9 },
    ]),
    [{ t: 0, d: 10, r: 1 }, { d: 9 }, { t: 40, d: 9 }],
  );
  t.equal(isoDuration(4), 'PT4S');
  t.equal(isoDuration(0), 'PT0S');
  t.equal(isoDuration(1.9946666666), 'PT1.994667S');
});

t.test('mpdLicenseBaseUrl: a cbcs channel\'s MPD names its ClearKey license route in dashif:Laurl; without it, or on a clear channel, no Laurl', async (t) => {
  const cbcs: MpdChannel = { id: 'fip', sampleRate: SAMPLE_RATE, renditions: [{ id: 'hifi', codec: 'aac', bitrate: 192_000 }], encryption: 'cbcs', keyRotationSegments: 10 };
  const window = state(segments(100, 7, [LONG], PDT), START_PTS + (SAMPLES[0]! * 90_000) / SAMPLE_RATE);
  const kid = /cenc:default_KID="([^"]+)"/.exec(renderChannelMpds(cbcs, window)['fip.mpd']!)![1]!;
  t.match(kid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  // A base with a path and a trailing slash: the route goes under the path, once.
  const mpd = renderChannelMpds({ ...cbcs, mpdLicenseBaseUrl: 'https://cdn.example/radio/' }, window)['fip.mpd'];
  t.equal(
    mpd,
    `<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:cenc="urn:mpeg:cenc:2013" xmlns:dashif="https://dashif.org/CPS" profiles="urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019" type="dynamic" availabilityStartTime="1970-01-01T00:00:00.000Z" publishTime="2027-01-01T12:00:02.005Z" minimumUpdatePeriod="PT2S" minBufferTime="PT2S" timeShiftBufferDepth="PT2.005333S" suggestedPresentationDelay="PT6S" maxSegmentDuration="PT2.005333S">
  <Period id="4-k10" start="PT1798804800S">
    <AdaptationSet id="0" contentType="audio" mimeType="audio/mp4" codecs="mp4a.40.2" audioSamplingRate="48000" segmentAlignment="true" startWithSAP="1">
      <ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cbcs" cenc:default_KID="${kid}"/>
      <ContentProtection schemeIdUri="urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e" value="ClearKey1.0">
        <dashif:Laurl>https://cdn.example/radio/fip/clearkey</dashif:Laurl>
      </ContentProtection>
      <SegmentTemplate timescale="48000" presentationTimeOffset="480000" startNumber="100" initialization="$RepresentationID$/init-7-k10.mp4" media="$RepresentationID$/$Number$-7.m4s">
        <SegmentTimeline>
          <S t="480000" d="96256"/>
        </SegmentTimeline>
      </SegmentTemplate>
      <Representation id="hifi" bandwidth="196000"/>
    </AdaptationSet>
  </Period>
  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="/time"/>
</MPD>
`,
  );
  t.equal(
    renderChannelMpds({ ...cbcs, mpdLicenseBaseUrl: 'https://radio.example' }, window)['fip.mpd'],
    mpd!.replace('https://cdn.example/radio/fip/clearkey', 'https://radio.example/fip/clearkey'),
    'a base without a path or trailing slash',
  );
  const withoutBase = renderChannelMpds(cbcs, window)['fip.mpd']!;
  t.equal(
    withoutBase,
    mpd!
      .replace(' xmlns:dashif="https://dashif.org/CPS"', '')
      .replace(/value="ClearKey1\.0">\n.*\n {6}<\/ContentProtection>/, 'value="ClearKey1.0"/>'),
    'without mpdLicenseBaseUrl: the ClearKey ContentProtection as before, no dashif namespace',
  );
  t.notMatch(withoutBase, /Laurl|dashif/);
  const clear = renderChannelMpds({ ...channel, mpdLicenseBaseUrl: 'https://radio.example' }, state(segments(100, 7, [LONG], PDT), START_PTS + (SAMPLES[0]! * 90_000) / SAMPLE_RATE))['fip.mpd']!;
  t.notMatch(clear, /Laurl|dashif|ContentProtection/, 'a clear channel names no license, whatever the base');
});
