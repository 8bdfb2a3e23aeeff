/**
 * The folder layering of src/ (docs/architecture.md, Layers), checked by `npm run lint:deps`,
 * which `npm test` runs before the tests: a violation fails the suite.
 *
 * Data flows from the inputs through the packager to the store, and from the store through
 * the origin to listeners. A folder imports only from the folders it lists below, never
 * upwards and never sideways, so there are no cycles:
 *
 *   0  src/errors.ts, src/clock.ts, src/config/, src/logging/   the vocabulary every layer shares
 *   1  src/media/      pure bytes: ADTS, MPEG-TS demux/mux, PTS
 *   2  src/store/      the store interface, memory and Redis
 *   3  src/ffmpeg/     every FFmpeg process (fluent-ffmpeg in one file)
 *   4  src/http/       HTTP helpers shared by origin, recordings and API
 *   5  src/hls/        segmenter, packager, playlists
 *   5  src/dash/       the MPEG-DASH MPD writer, beside the playlists (reads the same state)
 *   6  src/ingest/     inputs, input worker, selector, aligner, safety source, leadership
 *   7  src/recording/  sessions, stitch jobs, the recordings routes
 *   8  src/pipeline/   per channel: inputs → selector → packager (+ recorder); the ingest service
 *   9  src/origin/     the HLS origin (registers the recordings routes)
 *  10  src/api/        the control API
 *  11  src/metrics/    observes anything below
 *  12  src/*.ts        onair.ts, cli.ts, demo.ts, preflight.ts: wiring and the command line
 */

const BASE = ['^src/errors\\.ts$', '^src/clock\\.ts$', '^src/config/', '^src/logging/'];

/** Each folder with the folders (regexps of paths) it may import besides its own. */
const LAYERS = [
  { folder: 'media', may: [], why: 'src/media is pure bytes: it imports nothing but itself (not even errors or the clock)' },
  { folder: 'store', may: [...BASE], why: 'src/store sits under everything that reads or writes channels: it imports only errors, the clock, config and logging' },
  { folder: 'ffmpeg', may: [...BASE], why: 'src/ffmpeg runs processes for ingest and recording: it imports only errors, the clock, config and logging' },
  { folder: 'http', may: [...BASE, '^src/media/', '^src/store/'], why: 'src/http holds what origin, ingest, recordings and API share; it knows none of them' },
  { folder: 'hls', may: [...BASE, '^src/media/', '^src/store/'], why: 'src/hls cuts frames into segments and playlists: media below it, the store it writes to; no inputs, no HTTP' },
  {
    folder: 'dash',
    may: [...BASE, '^src/media/', '^src/store/', '^src/hls/'],
    why: 'src/dash writes MPDs over the same channel state as the HLS playlists: it may read hls, media and the store; no inputs, no HTTP',
  },
  {
    folder: 'ingest',
    may: [...BASE, '^src/media/', '^src/store/', '^src/ffmpeg/', '^src/http/'],
    why: 'src/ingest turns feeds into frame groups: it knows FFmpeg, media, the store (leases) and the HTTP helpers (Icecast source auth and metadata), not the packager or recordings',
  },
  {
    folder: 'recording',
    may: [...BASE, '^src/media/', '^src/store/', '^src/ffmpeg/', '^src/http/', '^src/hls/'],
    why: 'src/recording follows the packager (hls) and the store; the pipeline attaches it, so it never imports ingest or pipeline',
  },
  {
    folder: 'pipeline',
    may: [...BASE, '^src/media/', '^src/store/', '^src/ffmpeg/', '^src/hls/', '^src/dash/', '^src/ingest/', '^src/recording/'],
    why: 'src/pipeline wires inputs → selector → packager and attaches the recorder: it may import every stage, no HTTP layer',
  },
  {
    folder: 'origin',
    may: [...BASE, '^src/media/', '^src/store/', '^src/http/', '^src/hls/', '^src/dash/', '^src/recording/'],
    why: 'src/origin serves what the store holds: never the pipeline, ingest or the control API',
  },
  {
    folder: 'api',
    may: [...BASE, '^src/media/', '^src/store/', '^src/http/', '^src/hls/', '^src/recording/', '^src/pipeline/'],
    why: 'src/api controls the pipeline and reads the store; it declares what it needs of the origin instead of importing it',
  },
  {
    folder: 'metrics',
    may: [...BASE, '^src/media/', '^src/store/', '^src/ffmpeg/', '^src/http/', '^src/hls/', '^src/ingest/', '^src/recording/', '^src/pipeline/', '^src/origin/', '^src/api/'],
    why: 'src/metrics observes every layer below it; only the top-level wiring imports it',
  },
];

/** The top-level files (wiring, command line): importable only by each other. */
const TOP_LEVEL = '^src/(onair|cli|demo|preflight)\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles, type-only imports included: a cycle means two modules are one, or one imports against the data flow.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'config-imports-only-errors',
      severity: 'error',
      comment: 'src/config is read by every layer: it imports only errors.ts (and itself).',
      from: { path: '^src/config/' },
      to: { path: '^src/', pathNot: ['^src/errors\\.ts$', '^src/config/'] },
    },
    {
      name: 'logging-imports-only-errors-and-clock',
      severity: 'error',
      comment: 'src/logging (the logger factory, redaction, repeat limiting) is used by every layer: it imports only errors.ts and clock.ts (and itself).',
      from: { path: '^src/logging/' },
      to: { path: '^src/', pathNot: ['^src/errors\\.ts$', '^src/clock\\.ts$', '^src/logging/'] },
    },
    {
      name: 'errors-and-clock-are-leaves',
      severity: 'error',
      comment: 'errors.ts and clock.ts are the bottom: they import nothing from src.',
      from: { path: ['^src/errors\\.ts$', '^src/clock\\.ts$'] },
      to: { path: '^src/' },
    },
    ...LAYERS.map(({ folder, may, why }) => ({
      name: `layer-${folder}`,
      severity: 'error',
      comment: why,
      from: { path: `^src/${folder}/` },
      to: { path: '^src/', pathNot: [`^src/${folder}/`, ...may] },
    })),
    {
      name: 'media-has-no-dependencies',
      severity: 'error',
      comment: 'src/media is pure bytes: no packages, no Node built-ins (no I/O, no timers).',
      from: { path: '^src/media/' },
      to: { dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg', 'npm-unknown', 'core'] },
    },
    {
      name: 'top-level-files-are-the-top',
      severity: 'error',
      comment: 'onair.ts, cli.ts, demo.ts and preflight.ts wire the layers together: no folder imports them.',
      from: { path: '^src/[^/]+/' },
      to: { path: TOP_LEVEL },
    },
    {
      name: 'fluent-ffmpeg-in-one-file',
      severity: 'error',
      comment: 'fluent-ffmpeg is archived upstream: it stays in src/ffmpeg/ffmpeg-process.ts, so replacing it touches one file.',
      from: { pathNot: '^src/ffmpeg/ffmpeg-process\\.ts$' },
      to: { path: '(^|/)node_modules/fluent-ffmpeg/' },
    },
    {
      name: 'src-not-to-test-or-bench',
      severity: 'error',
      comment: 'Shipped code never imports tests, test helpers or benchmarks.',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a cycle of types is still a cycle of knowledge.
    tsPreCompilationDeps: true,
    // NodeNext: `./x.js` specifiers name `./x.ts` sources.
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.json'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
