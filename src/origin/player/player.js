/**
 * onair's web player. Lists the channels from channels.json (refreshed every few seconds),
 * plays one with hls.js (lowLatencyMode: LL-HLS when the playlists offer it, plain HLS
 * otherwise), offers "auto" or a fixed rendition, and shows the live latency every second.
 * Browsers without MediaSource but with native HLS (older iOS) play the master playlist directly.
 *
 * Now playing: each channel's row shows what channels.json says it has on air; "On air" shows
 * what the stream being heard says, from its ID3 timed metadata (hls.js, or Safari natively,
 * turns it into cues of a metadata text track, active when their audio plays), and falls
 * back to channels.json until the stream has said anything.
 *
 * `window.onairPlayer` exposes the playback state for tests and latency measurements:
 * channel, playing, currentTime, latency (seconds behind the playlist's live edge, hls.js),
 * wallClockLatency (now minus the PROGRAM-DATE-TIME being heard), level and rendition (what
 * is heard), autoLevel, track (the now playing "On air" shows: title, artist, album,
 * artworkUrl, and source `stream` or `listing`; null when none), and errors (every error
 * raised, as text, oldest first).
 */
const LISTING_REFRESH_MS = 5000;
const PLAYBACK_REFRESH_MS = 1000;

const audio = document.getElementById('audio');
const channelList = document.getElementById('channels');
const listingStatus = document.getElementById('listing-status');
const nowPlaying = document.getElementById('now-playing');
const qualitySelect = document.getElementById('quality');
const renditionText = document.getElementById('rendition');
const latencyText = document.getElementById('latency');
const errorText = document.getElementById('error');
const trackText = document.getElementById('track');
const artwork = document.getElementById('artwork');

/** Channel id → { channel, button, status, renditions } for the rows on the page. */
const rows = new Map();
let hls = null;
let playingChannel = null;
/** The now playing the stream being heard carries (from its ID3 cues); null until it says one. */
let heard = null;

const player = {
  errors: [],
  get channel() {
    return playingChannel?.id ?? null;
  },
  get playing() {
    return playingChannel !== null && !audio.paused;
  },
  get currentTime() {
    return audio.currentTime;
  },
  get latency() {
    return hls && hls.latency > 0 ? hls.latency : null;
  },
  get wallClockLatency() {
    const heard = hls?.playingDate;
    return heard ? (Date.now() - heard.getTime()) / 1000 : null;
  },
  get level() {
    return hls ? hls.currentLevel : -1;
  },
  get rendition() {
    return hls && hls.currentLevel >= 0 ? renditionName(hls.levels[hls.currentLevel]) : null;
  },
  get autoLevel() {
    return hls ? hls.autoLevelEnabled : true;
  },
  get track() {
    return shownTrack();
  },
};
window.onairPlayer = player;

function reportError(message) {
  player.errors.push(message);
  errorText.textContent = message;
  errorText.hidden = false;
}

async function refreshListing() {
  try {
    const response = await fetch('channels.json');
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const { channels } = await response.json();
    renderChannels(channels);
    showListingStatus(channels.length === 0 ? 'No channels.' : '');
  } catch (error) {
    showListingStatus('The channel list is unavailable; retrying.');
    reportError(`channels.json: ${error.message}`);
  }
}

function showListingStatus(text) {
  listingStatus.textContent = text;
  listingStatus.hidden = text === '';
}

function renderChannels(channels) {
  const listed = new Set(channels.map((channel) => channel.id));
  for (const [id, row] of rows) {
    if (listed.has(id)) continue;
    row.item.remove();
    rows.delete(id);
  }
  for (const channel of channels) {
    const row = rows.get(channel.id) ?? addRow(channel.id);
    row.channel = channel;
    row.status.textContent = channel.live ? 'live' : 'off air';
    row.status.className = `status ${channel.live ? 'live' : 'off-air'}`;
    row.renditions.textContent = `Renditions: ${channel.renditions.map((rendition) => rendition.id).join(', ')}`;
    row.onAir.textContent = channel.nowPlaying ? trackLine(channel.nowPlaying) : '';
    row.onAir.hidden = !channel.nowPlaying;
  }
  renderButtons();
  renderTrack();
}

function addRow(id) {
  const item = document.createElement('li');
  item.className = 'channel';
  const heading = document.createElement('h3');
  heading.textContent = id;
  const status = document.createElement('span');
  heading.append(' ', status);
  const renditions = document.createElement('p');
  renditions.className = 'renditions';
  const onAir = document.createElement('p');
  onAir.className = 'on-air';
  onAir.hidden = true;
  const button = document.createElement('button');
  button.type = 'button';
  button.addEventListener('click', () => {
    if (playingChannel?.id === id) stop();
    else play(rows.get(id).channel);
  });
  item.append(heading, renditions, onAir, button);
  channelList.append(item);
  const row = { item, status, renditions, onAir, button, channel: null };
  rows.set(id, row);
  return row;
}

function renderButtons() {
  for (const [id, row] of rows) {
    const playing = playingChannel?.id === id;
    row.button.textContent = playing ? 'Stop' : 'Play';
    row.button.setAttribute('aria-label', `${playing ? 'Stop' : 'Play'} ${id}`);
  }
}

function play(channel) {
  stop();
  errorText.hidden = true;
  playingChannel = channel;
  nowPlaying.textContent = channel.id;
  renderTrack();
  if (window.Hls?.isSupported()) {
    playWithHls(channel);
  } else if (audio.canPlayType('application/vnd.apple.mpegurl')) {
    audio.src = channel.url;
    startAudio();
  } else {
    reportError('This browser can play neither MediaSource nor native HLS.');
    stop();
  }
  renderButtons();
}

function playWithHls(channel) {
  const Hls = window.Hls;
  hls = new Hls({ lowLatencyMode: true });
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    fillQualities();
    startAudio();
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, renderPlayback);
  hls.on(Hls.Events.ERROR, (event, data) => {
    reportError(`hls.js ${data.fatal ? 'fatal ' : ''}${data.type}: ${data.details}`);
    if (data.fatal) stop();
  });
  hls.loadSource(channel.url);
  hls.attachMedia(audio);
}

function startAudio() {
  audio.play().catch((error) => {
    if (playingChannel) reportError(`playback refused: ${error.message}`);
  });
}

function stop() {
  if (hls) {
    hls.destroy();
    hls = null;
  }
  audio.removeAttribute('src');
  audio.load();
  playingChannel = null;
  heard = null;
  renderTrack();
  nowPlaying.textContent = 'nothing';
  qualitySelect.replaceChildren(new Option('auto', '-1'));
  qualitySelect.disabled = true;
  renderButtons();
  renderPlayback();
}

/** "auto" plus one choice per hls.js level (sorted by bit rate), named after its rendition. */
function fillQualities() {
  const choices = hls.levels.map(
    (level, index) => new Option(`${renditionName(level)} (${Math.round(level.bitrate / 1000)} kb/s)`, String(index)),
  );
  qualitySelect.replaceChildren(new Option('auto', '-1'), ...choices);
  qualitySelect.disabled = false;
}

function renditionName(level) {
  const rendition = playingChannel?.renditions.find((candidate) => new URL(candidate.url, location.href).href === level.uri);
  return rendition ? rendition.id : `${Math.round(level.bitrate / 1000)} kb/s`;
}

qualitySelect.addEventListener('change', () => {
  // nextLevel switches from the next segment on: no gap, unlike currentLevel's buffer flush.
  if (hls) hls.nextLevel = Number(qualitySelect.value);
});

function renderPlayback() {
  const rendition = player.rendition;
  renditionText.textContent = rendition ? `playing ${rendition}` : '';
  const latency = player.latency;
  latencyText.textContent = player.playing && latency !== null ? `${latency.toFixed(1)} s` : '–';
}

/** "Artist – Title", or the title alone. */
function trackLine(track) {
  return track.artist ? `${track.artist} – ${track.title}` : track.title;
}

/** What "On air" shows: what the stream said last, else what channels.json says; null when neither. */
function shownTrack() {
  if (!playingChannel) return null;
  if (heard) return { ...heard, source: 'stream' };
  const listed = rows.get(playingChannel.id)?.channel?.nowPlaying;
  return listed ? { ...listed, source: 'listing' } : null;
}

function renderTrack() {
  const track = shownTrack();
  trackText.textContent = track ? trackLine(track) : '–';
  if (track?.artworkUrl) {
    if (artwork.getAttribute('src') !== track.artworkUrl) artwork.src = track.artworkUrl;
    artwork.hidden = false;
  } else {
    artwork.hidden = true;
    artwork.removeAttribute('src');
  }
}

/**
 * The now playing of the ID3 tag whose cues are active (the latest, if several): one cue per
 * ID3 frame, its value `{ key, info, data }` (TIT2 title, TPE1 artist, TALB album, TXXX
 * `artworkUrl`), as hls.js and Safari give them.
 */
function readCues(track) {
  const cues = [...(track.activeCues ?? [])].filter((cue) => cue.value && typeof cue.value.key === 'string');
  if (cues.length === 0) return;
  const start = Math.max(...cues.map((cue) => cue.startTime));
  const fields = {};
  for (const cue of cues) {
    if (cue.startTime !== start) continue;
    const { key, info, data } = cue.value;
    if (key === 'TIT2') fields.title = data;
    else if (key === 'TPE1') fields.artist = data;
    else if (key === 'TALB') fields.album = data;
    else if (key === 'TXXX' && info === 'artworkUrl') fields.artworkUrl = data;
  }
  if (typeof fields.title !== 'string' || !playingChannel) return;
  heard = fields;
  renderTrack();
}

audio.textTracks.addEventListener('addtrack', (event) => {
  const track = event.track;
  if (track.kind !== 'metadata') return;
  track.mode = 'hidden'; // cues fire without being shown
  track.addEventListener('cuechange', () => readCues(track));
});

audio.addEventListener('error', () => {
  if (playingChannel && audio.error) reportError(`media error ${audio.error.code}: ${audio.error.message}`);
});

refreshListing();
setInterval(refreshListing, LISTING_REFRESH_MS);
setInterval(renderPlayback, PLAYBACK_REFRESH_MS);
