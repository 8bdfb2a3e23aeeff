/**
 * onair's web player. Lists the channels from channels.json (refreshed every few seconds),
 * plays one with hls.js (lowLatencyMode: LL-HLS when the playlists offer it, plain HLS
 * otherwise), offers "auto" or a fixed rendition, and shows the live latency every second.
 * Browsers without MediaSource but with native HLS (older iOS) play the master playlist directly.
 * fmp4 channels (those channels.json gives a dashUrl) offer a Format choice, HLS (the default)
 * or DASH: DASH plays the live MPD with dash.js, loaded from this origin on first use.
 * "Codec" shows the codecs and bit rate of the rendition being heard.
 *
 * Signed and encrypted channels (docs/architecture.md, "Player page and encrypted channels"):
 * channels.json says which channels are signed and which are encrypted. A signed channel plays
 * with the token of the Token field, which `#token=` (or `?token=`, moved into the fragment at
 * once so that no reload sends it) on the page's URL fills; the token goes on the entry URL
 * only, the origin adds it to every URI it serves. Without one, Play says so. `aes-128`
 * channels play with hls.js's light build (it decrypts AES-128); `cbcs` channels with hls.js's
 * full build (EME, ClearKey, licenses from the channel's `clearkey?token=` route) when their
 * playlists carry ClearKey EXT-X-KEY tags, else with dash.js's full build (its protection). The full
 * builds are loaded from this origin only when such a channel is played.
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
 * artworkUrl, and source `stream` or `listing`; null when none), format (`hls`, `dash` or
 * `native`; null when stopped), codecs and bitrate (of the rendition heard, bits per second;
 * null when unknown), hlsBuild (`light` or `full` while hls.js plays; null otherwise), and
 * errors (every error raised, as text, oldest first).
 */
const LISTING_REFRESH_MS = 5000;
const PLAYBACK_REFRESH_MS = 1000;
/** dash.js's media player build (src/origin/player-plugin.ts), relative to the page. */
const DASH_SCRIPT = '_player/dash/dash.mediaplayer.min.js';
/**
 * dash.js's full build (its protection controller, EME), for cbcs channels: its separate
 * protection module's UMD wrapper replaces `window.dashjs` rather than adding to it.
 */
const DASH_FULL_SCRIPT = '_player/dash/dash.all.min.js';
/** hls.js's full build (EME), loaded for cbcs channels' ClearKey playlists. */
const HLS_FULL_SCRIPT = '_player/hls/hls.min.js';
/** EME's ClearKey key system (W3C Encrypted Media Extensions §9.1). */
const CLEARKEY = 'org.w3.clearkey';

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
const formatText = document.getElementById('format');
const codecText = document.getElementById('codec');
const tokenInput = document.getElementById('token');

/** Channel id → { channel, button, status, renditions } for the rows on the page. */
const rows = new Map();
let hls = null;
/** The dash.js MediaPlayer while DASH plays. */
let dash = null;
/** How the channel being heard is played: `hls`, `dash` or `native`; null when stopped. */
let playingFormat = null;
let playingChannel = null;
/** The now playing the stream being heard carries (from its ID3 cues); null until it says one. */
let heard = null;
/** Scripts loading or loaded, by URL: each is added to the page once. */
const scripts = new Map();
/** hls.js's light build, as the page's own script tag loaded it (window.Hls becomes the full one once that is loaded). */
const lightHls = window.Hls ?? null;
/** hls.js's full build once loaded. */
let fullHls = null;
/** `light` or `full`: the hls.js build playing; null when hls.js is not playing. */
let hlsBuild = null;

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
    if (dash) {
      const latency = dash.getCurrentLiveLatency();
      return Number.isFinite(latency) && latency > 0 ? latency : null;
    }
    return hls && hls.latency > 0 ? hls.latency : null;
  },
  get wallClockLatency() {
    const heard = hls?.playingDate;
    return heard ? (Date.now() - heard.getTime()) / 1000 : null;
  },
  get level() {
    if (dash) {
      const current = dashRepresentation();
      return current ? dashRepresentations().findIndex((representation) => representation.id === current.id) : -1;
    }
    return hls ? hls.currentLevel : -1;
  },
  get rendition() {
    if (dash) return dashRepresentation()?.id ?? null;
    return hls && hls.currentLevel >= 0 ? renditionName(hls.levels[hls.currentLevel]) : null;
  },
  get autoLevel() {
    if (dash) return dash.getSettings().streaming.abr.autoSwitchBitrate.audio !== false;
    return hls ? hls.autoLevelEnabled : true;
  },
  get format() {
    return playingFormat;
  },
  get codecs() {
    return heardQuality()?.codecs ?? null;
  },
  get bitrate() {
    return heardQuality()?.bitrate ?? null;
  },
  get track() {
    return shownTrack();
  },
  get hlsBuild() {
    return hls ? hlsBuild : null;
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
    row.renditions.textContent = `Renditions: ${channel.renditions.map(renditionLine).join(', ')}`;
    row.protection.textContent = protectionLine(channel);
    row.protection.hidden = row.protection.textContent === '';
    row.formatLine.hidden = !channel.dashUrl;
    // A cbcs channel whose playlists carry no ClearKey tag plays through DASH only.
    const hlsOption = row.format.options[0];
    hlsOption.disabled = !hlsPlayable(channel);
    if (!channel.dashUrl) row.format.value = 'hls';
    else if (hlsOption.disabled) row.format.value = 'dash';
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
  const protection = document.createElement('p');
  protection.className = 'protection';
  protection.hidden = true;
  const formatLine = document.createElement('p');
  formatLine.className = 'format';
  formatLine.hidden = true;
  const format = document.createElement('select');
  format.setAttribute('aria-label', `Format of ${id}`);
  format.append(new Option('HLS', 'hls', true, true), new Option('DASH', 'dash'));
  // A new choice for the channel being heard takes effect at once.
  format.addEventListener('change', () => {
    if (playingChannel?.id === id) play(rows.get(id).channel);
  });
  formatLine.append('Format: ', format);
  const onAir = document.createElement('p');
  onAir.className = 'on-air';
  onAir.hidden = true;
  const button = document.createElement('button');
  button.type = 'button';
  button.addEventListener('click', () => {
    if (playingChannel?.id === id) stop();
    else play(rows.get(id).channel);
  });
  item.append(heading, renditions, protection, formatLine, onAir, button);
  channelList.append(item);
  const row = { item, status, renditions, protection, formatLine, format, onAir, button, channel: null };
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
  if (channel.access === 'signed' && currentToken() === '') {
    reportError(`${channel.id} is a signed channel: enter its access token in the Token field (or open this page with #token=… in its address) to play it.`);
    tokenInput.focus();
    return;
  }
  playingChannel = channel;
  nowPlaying.textContent = channel.id;
  renderTrack();
  if (channel.dashUrl && (rows.get(channel.id)?.format.value === 'dash' || !hlsPlayable(channel))) {
    playingFormat = 'dash';
    playWithDash(channel);
  } else if (channel.encryption === 'cbcs' && !hlsPlayable(channel)) {
    reportError(`${channel.id}'s playlists have no ClearKey key tag and its MPD is not published yet: try again in a moment.`);
    stop();
  } else if (channel.encryption === 'cbcs') {
    playingFormat = 'hls';
    playWithFullHls(channel);
  } else if (lightHls?.isSupported()) {
    playingFormat = 'hls';
    playWithHls(channel, lightHls, 'light');
  } else if (audio.canPlayType('application/vnd.apple.mpegurl')) {
    playingFormat = 'native';
    audio.src = withToken(channel, channel.url);
    startAudio();
  } else {
    reportError('This browser can play neither MediaSource nor native HLS.');
    stop();
  }
  renderButtons();
}

/** hls.js (`build`, `light` or `full`) plays the channel; `config` adds to its configuration (EME). */
function playWithHls(channel, Hls, build, config = {}) {
  hlsBuild = build;
  hls = new Hls({ lowLatencyMode: true, ...config });
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    fillQualities();
    startAudio();
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, renderPlayback);
  hls.on(Hls.Events.ERROR, (event, data) => {
    const status = data.response?.code;
    if (data.fatal && status === 403) reportError(tokenRefused(channel));
    else reportError(`hls.js ${data.fatal ? 'fatal ' : ''}${data.type}: ${data.details}${status ? ` (HTTP ${status})` : ''}`);
    if (data.fatal) stop();
  });
  hls.loadSource(withToken(channel, channel.url));
  hls.attachMedia(audio);
}

/**
 * A cbcs channel's ClearKey playlists through hls.js's full build (its EME controller), loaded
 * from this origin on first use; licenses from the channel's route, with its token.
 */
async function playWithFullHls(channel) {
  if (!window.MediaSource && !window.ManagedMediaSource) {
    reportError('This browser cannot play an encrypted channel (no MediaSource).');
    stop();
    return;
  }
  try {
    fullHls ??= await loadScript(HLS_FULL_SCRIPT, () => window.Hls);
  } catch (error) {
    if (playingChannel === channel) {
      reportError(error.message);
      stop();
    }
    return;
  }
  if (playingChannel !== channel || playingFormat !== 'hls' || hls) return;
  playWithHls(channel, fullHls, 'full', {
    emeEnabled: true,
    drmSystems: { [CLEARKEY]: { licenseUrl: licenseUrl(channel) } },
  });
}

/**
 * `src` added to the page once (a failed load may be retried); resolves with `loaded()`, what
 * the script defines. Each later call shares the first load.
 */
function loadScript(src, loaded) {
  let loading = scripts.get(src);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = src;
      script.addEventListener('load', () => (loaded() ? resolve(loaded()) : reject(new Error(`${src} did not load`))));
      script.addEventListener('error', () => {
        script.remove();
        scripts.delete(src);
        reject(new Error(`${src} could not be loaded`));
      });
      document.head.append(script);
    });
    scripts.set(src, loading);
  }
  return loading;
}

/**
 * dash.js, loaded from this origin the first time a channel is played through DASH: its media
 * player build, or its full build for an encrypted channel (and for any channel once loaded).
 * dash.js finds its protection module through the global `dashjs`, so the build about to play
 * is made the global one.
 */
async function loadDash(encrypted) {
  const full = scripts.get(DASH_FULL_SCRIPT);
  const dashjs = await (encrypted || full ? loadScript(DASH_FULL_SCRIPT, () => window.dashjs?.Protection && window.dashjs) : loadScript(DASH_SCRIPT, () => window.dashjs));
  window.dashjs = dashjs;
  return dashjs;
}

/** The channel's token, as the Token field holds it (surrounding spaces cut). */
function currentToken() {
  return tokenInput.value.trim();
}

/** `url` (relative to the page) with `?token=` for a signed channel; as is for a public one. */
function withToken(channel, url) {
  const token = currentToken();
  if (channel.access !== 'signed' || token === '') return url;
  return `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

/** A cbcs channel's ClearKey license URL, absolute (EME players post to it from their own code), with the token. */
function licenseUrl(channel) {
  return new URL(withToken(channel, channel.licenseUrl), location.href).href;
}

/** Whether hls.js can play the channel: any but a cbcs one whose playlists carry no ClearKey EXT-X-KEY. */
function hlsPlayable(channel) {
  return channel.encryption !== 'cbcs' || (channel.hlsKeyFormats ?? []).includes('clearkey');
}

function tokenRefused(channel) {
  return `The origin refused the token for ${channel.id} (HTTP 403): it may have expired, or be another channel's.`;
}

/** "Signed · encrypted (cbcs)", or nothing for a public clear channel. */
function protectionLine(channel) {
  const parts = [];
  if (channel.access === 'signed') parts.push('Signed: needs a token');
  if (channel.encryption) parts.push(`encrypted (${channel.encryption === 'cbcs' ? 'cbcs, ClearKey' : 'AES-128'})`);
  return parts.join(' · ');
}

async function playWithDash(channel) {
  if (!window.MediaSource && !window.ManagedMediaSource) {
    reportError('This browser cannot play DASH (no MediaSource).');
    stop();
    return;
  }
  let dashjs;
  try {
    dashjs = await loadDash(channel.encryption === 'cbcs');
  } catch (error) {
    if (playingChannel === channel) {
      reportError(error.message);
      stop();
    }
    return;
  }
  // Stopped, or another channel or format chosen, while dash.js loaded.
  if (playingChannel !== channel || playingFormat !== 'dash' || dash) return;
  const events = dashjs.MediaPlayer.events;
  dash = dashjs.MediaPlayer().create();
  dash.on(events.STREAM_INITIALIZED, () => {
    fillQualities();
    renderPlayback();
  });
  dash.on(events.QUALITY_CHANGE_RENDERED, renderPlayback);
  dash.on(events.ERROR, (event) => {
    const error = event.error ?? event;
    const status = error.data?.response?.status ?? error.data?.status;
    if (status === 403) reportError(tokenRefused(channel));
    else reportError(`dash.js error ${error.code ?? ''}: ${error.message ?? JSON.stringify(error)}`.replace(/ +:/, ':'));
    stop();
  });
  // The MPD's dashif:Laurl names the license route only when the origin is configured with its public address: the page sets it.
  if (channel.encryption === 'cbcs') dash.setProtectionData({ [CLEARKEY]: { serverURL: licenseUrl(channel) } });
  // Absolute: dash.js resolves MPD refreshes, BaseURLs and its CMCD reports against it.
  // autoPlay: dash.js starts the element itself once it has joined the live edge.
  dash.initialize(audio, new URL(withToken(channel, channel.dashUrl), location.href).href, true);
}

/** dash.js's audio Representations of the current Period (id, bandwidth, codecs), by bandwidth. */
function dashRepresentations() {
  return dash ? [...dash.getRepresentationsByType('audio')].sort((a, b) => a.bandwidth - b.bandwidth) : [];
}

function dashRepresentation() {
  return dash?.getCurrentRepresentationForType('audio') ?? null;
}

/** The codecs and bit rate of what is heard: from the player, else what channels.json lists for that rendition. */
function heardQuality() {
  if (!playingChannel) return null;
  let codecs = null;
  let bitrate = null;
  if (dash) {
    const representation = dashRepresentation();
    if (!representation) return null;
    // dash.js gives `audio/mp4;codecs="mp4a.40.2"` or the bare value.
    codecs = /codecs="?([^";]+)"?/.exec(representation.codecs ?? '')?.[1] ?? representation.codecs ?? null;
    bitrate = representation.bandwidth ?? null;
  } else if (hls && hls.currentLevel >= 0) {
    const level = hls.levels[hls.currentLevel];
    codecs = level.attrs?.CODECS ?? level.audioCodec ?? null;
    bitrate = level.bitrate || null;
  } else {
    return null;
  }
  const listed = playingChannel.renditions.find((rendition) => rendition.id === player.rendition);
  return { codecs: codecs ?? listed?.codecs ?? null, bitrate };
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
  if (dash) {
    dash.destroy();
    dash = null;
  }
  playingFormat = null;
  hlsBuild = null;
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

/** "auto" plus one choice per hls.js level or dash.js Representation (sorted by bit rate), named after its rendition. */
function fillQualities() {
  const choices = dash
    ? dashRepresentations().map((representation) => new Option(`${representation.id} (${Math.round(representation.bandwidth / 1000)} kb/s)`, representation.id))
    : hls.levels.map(
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
  if (dash) {
    const auto = qualitySelect.value === '-1';
    dash.updateSettings({ streaming: { abr: { autoSwitchBitrate: { audio: auto } } } });
    if (!auto) dash.setRepresentationForTypeById('audio', qualitySelect.value);
  }
});

/** "hifi (mp4a.40.2)", or the id alone when its codecs are unknown. */
function renditionLine(rendition) {
  return rendition.codecs ? `${rendition.id} (${rendition.codecs})` : rendition.id;
}

const FORMAT_NAMES = { hls: 'HLS', dash: 'DASH', native: 'HLS (native)' };

function renderPlayback() {
  const rendition = player.rendition;
  renditionText.textContent = rendition ? `playing ${rendition}` : '';
  const latency = player.latency;
  latencyText.textContent = player.playing && latency !== null ? `${latency.toFixed(1)} s` : '–';
  formatText.textContent = playingFormat ? FORMAT_NAMES[playingFormat] : '–';
  const quality = heardQuality();
  const parts = [quality?.codecs, quality?.bitrate ? `${Math.round(quality.bitrate / 1000)} kb/s` : null].filter(Boolean);
  codecText.textContent = parts.length > 0 ? parts.join(', ') : '–';
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

/**
 * A token on the page's URL: `#token=` (never sent to a server), or `?token=`, which is moved
 * into the fragment at once so that a reload, a bookmark or a shared link does not send it.
 */
function readPageToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  const token = fragment.get('token') ?? query.get('token');
  if (token === null) return;
  tokenInput.value = token;
  if (!query.has('token')) return;
  query.delete('token');
  fragment.set('token', token);
  const search = query.toString();
  // Encoded as a URL component, so that a token's `~` stays as it is.
  const hash = [...fragment].map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`).join('&');
  history.replaceState(history.state, '', `${location.pathname}${search ? `?${search}` : ''}#${hash}`);
}

readPageToken();
refreshListing();
setInterval(refreshListing, LISTING_REFRESH_MS);
setInterval(renderPlayback, PLAYBACK_REFRESH_MS);
