import t from 'tap';
import {
  cleanText,
  displayTitle,
  isNowPlayingProblem,
  MAX_NOW_PLAYING_TEXT,
  nowPlayingFrom,
  nowPlayingFromSong,
  parseNowPlaying,
  serializeNowPlaying,
  type NowPlaying,
} from '../../src/media/now-playing.js';

const AT = 1_796_400_000_000;

t.test('an update is cleaned: control characters stripped, line breaks made spaces, text truncated', async (t) => {
  const nowPlaying = nowPlayingFrom({ title: ' So\u0000 What\r\n(live)\u0007 ', artist: 'Miles\tDavis', album: 'x'.repeat(300) }, AT) as NowPlaying;
  t.same(nowPlaying, { title: 'So What (live)', artist: 'Miles Davis', album: 'x'.repeat(MAX_NOW_PLAYING_TEXT), setAt: AT });
  t.equal([...cleanText('é'.repeat(300))].length, MAX_NOW_PLAYING_TEXT, 'truncated by characters, not bytes');
  t.equal(cleanText('\u0085\u009fAh'), 'Ah', 'C1 controls too');
});

t.test('an update without a usable title, with unknown fields or bad values names the field', async (t) => {
  const cases: [unknown, string][] = [
    [null, ''],
    [[], ''],
    [{}, 'title'],
    [{ title: '\u0001\u0002' }, 'title'],
    [{ title: 5 }, 'title'],
    [{ title: 'a', artist: ['b'] }, 'artist'],
    [{ title: 'a', colour: 'red' }, 'colour'],
    [{ title: 'a', artworkUrl: 'javascript:alert(1)' }, 'artworkUrl'],
    [{ title: 'a', artworkUrl: `https://x.example/${'a'.repeat(2000)}` }, 'artworkUrl'],
    [{ title: 'a', durationSeconds: -1 }, 'durationSeconds'],
    [{ title: 'a', durationSeconds: Number.NaN }, 'durationSeconds'],
    [{ title: 'a', durationSeconds: '120' }, 'durationSeconds'],
  ];
  for (const [input, field] of cases) {
    const result = nowPlayingFrom(input, AT);
    t.ok(isNowPlayingProblem(result), `${JSON.stringify(input)} is refused`);
    if (isNowPlayingProblem(result)) t.equal(result.field, field);
  }
});

t.test('an Icecast song string splits into artist and title at the first " - "', async (t) => {
  t.same(nowPlayingFromSong('Nina Simone - Sinnerman - Live', AT), { artist: 'Nina Simone', title: 'Sinnerman - Live', setAt: AT });
  t.same(nowPlayingFromSong('Station ID', AT), { title: 'Station ID', setAt: AT });
  t.same(nowPlayingFromSong(' - Untitled', AT), { title: '- Untitled', setAt: AT }, 'no artist before the separator');
  t.ok(isNowPlayingProblem(nowPlayingFromSong('  ', AT)));
});

t.test('the display title is "Artist - Title", and the stored JSON reads back', async (t) => {
  const nowPlaying = nowPlayingFrom({ title: 'Sinnerman', artist: 'Nina Simone', artworkUrl: 'https://img.example/a.jpg', durationSeconds: 622 }, AT) as NowPlaying;
  t.equal(displayTitle(nowPlaying), 'Nina Simone - Sinnerman');
  t.equal(displayTitle({ title: 'Jingle' }), 'Jingle');
  t.same(parseNowPlaying(serializeNowPlaying(nowPlaying)), nowPlaying);
  t.equal(parseNowPlaying(null), null);
  t.equal(parseNowPlaying('{"title":"no time"}'), null, 'without setAt');
  t.equal(parseNowPlaying('not json'), null);
});
