/**
 * A load-generator thread of bench:listeners: runs its share of the simulated listeners
 * (listeners-player.ts) for one phase over one keep-alive connection pool (node:http Agent),
 * counts every load, and posts a PhaseTally (listeners-stats.ts) when the phase ends.
 *
 * Listener i (of all workers) starts at rampStart + i / total × ramp and plays variant
 * i mod (number of variants). Latencies and request counts cover the measurement window;
 * failures, stalls and resyncs cover the whole phase. The thread also measures its own event
 * loop (utilization and delay) so that a saturated generator can be told from a slow server.
 *
 * Loads follow hls.js's load policies: a 2xx answer with its whole body is a success; any
 * other status, a network error or a timeout (10 s to the first byte, then 20 s in all for
 * playlists and 120 s for segments) is a failure. Playlists are asked for with
 * `Accept-Encoding: gzip`, as browsers do.
 */
import { Agent, request, type IncomingMessage } from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import { SimulatedPlayer, type PlayerLoader } from './listeners-player.js';
import { parseMasterPlaylist, parseMediaPlaylist, type MediaPlaylist } from './listeners-playlist.js';
import { emptyPhaseTally, recordLatency, type PhaseTally, type RequestKind } from './listeners-stats.js';

export interface ListenersWorkerJob {
  host: string;
  port: number;
  masterPath: string;
  /** This worker runs listeners firstListener, firstListener + stride, ... below totalListeners. */
  firstListener: number;
  stride: number;
  totalListeners: number;
  /** Wall-clock times (ms since the epoch, as performance.timeOrigin + performance.now()). */
  rampStartMs: number;
  rampMs: number;
  windowStartMs: number;
  /** The phase ends here: players stop, the tally is posted. */
  windowEndMs: number;
  /** Keep-alive connections of this worker's pool. */
  connections: number;
}

const TIME_TO_FIRST_BYTE_MS = 10_000;
const MAX_LOAD_MS: Record<RequestKind, number> = { master: 20_000, playlist: 20_000, segment: 120_000 };
/** Close idle pooled connections before Varnish's `timeout_idle` (5 s) does, so none is reused as it closes. */
const IDLE_SOCKET_TIMEOUT_MS = 4000;
/** The delay monitor's timer period; it records whole periods, so this is taken off to get the lag. */
const LOOP_DELAY_RESOLUTION_MS = 10;

const now = (): number => performance.timeOrigin + performance.now();

interface Answer {
  body: Buffer;
  gzipped: boolean;
}

/** Loads over one connection pool and counts each load into the phase tally. */
class HttpLoader implements PlayerLoader {
  private readonly agent: Agent;
  private closed = false;
  /** The last body seen per playlist path and what it parsed to: listeners share identical answers. */
  private readonly parsedPlaylists = new Map<string, { body: Buffer; parsed: unknown }>();

  constructor(
    private readonly job: ListenersWorkerJob,
    private readonly tally: PhaseTally,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets: job.connections, maxFreeSockets: job.connections, timeout: IDLE_SOCKET_TIMEOUT_MS });
  }

  async master(path: string): Promise<string[] | undefined> {
    const answer = await this.load('master', path, true);
    return answer && this.parseOnce(path, answer, (text) => parseMasterPlaylist(text, path));
  }

  async media(path: string): Promise<MediaPlaylist | undefined> {
    const answer = await this.load('playlist', path, true);
    return answer && this.parseOnce(path, answer, (text) => parseMediaPlaylist(text, path));
  }

  async segment(path: string): Promise<boolean> {
    return (await this.load('segment', path, false)) !== undefined;
  }

  /** Stops counting (answers still in flight would fail as the pool closes) and closes the pool. */
  close(): void {
    this.closed = true;
    this.agent.destroy();
  }

  private parseOnce<T>(path: string, answer: Answer, parse: (text: string) => T): T {
    const previous = this.parsedPlaylists.get(path);
    if (previous && previous.body.equals(answer.body)) return previous.parsed as T;
    const text = (answer.gzipped ? gunzipSync(answer.body) : answer.body).toString('utf8');
    const parsed = parse(text);
    this.parsedPlaylists.set(path, { body: answer.body, parsed });
    return parsed;
  }

  private load(kind: RequestKind, path: string, keepBody: boolean): Promise<Answer | undefined> {
    return new Promise((resolve) => {
      const startedMs = now();
      let settled = false;
      let response: IncomingMessage | undefined;
      const fail = (cause: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        outgoing.destroy();
        if (!this.closed) {
          const failures = this.tally.kinds[kind].failures;
          failures[cause] = (failures[cause] ?? 0) + 1;
        }
        resolve(undefined);
      };
      const succeed = (body: Buffer, bytes: number): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const endedMs = now();
        if (!this.closed && endedMs >= this.job.windowStartMs && endedMs < this.job.windowEndMs) {
          const counts = this.tally.kinds[kind];
          counts.windowRequests += 1;
          counts.windowBytes += bytes;
          recordLatency(counts.windowLatency, endedMs - startedMs);
        }
        resolve({ body, gzipped: response?.headers['content-encoding'] === 'gzip' });
      };
      let timer = setTimeout(() => {
        if (response === undefined) return fail('timeout');
        timer = setTimeout(() => fail('timeout'), MAX_LOAD_MS[kind] - TIME_TO_FIRST_BYTE_MS);
      }, TIME_TO_FIRST_BYTE_MS);

      const outgoing = request(
        { agent: this.agent, host: this.job.host, port: this.job.port, path, headers: keepBody ? { 'accept-encoding': 'gzip' } : {} },
        (incoming) => {
          response = incoming;
          const status = incoming.statusCode ?? 0;
          if (status < 200 || status > 299) {
            incoming.resume();
            return fail(`HTTP ${status}`);
          }
          const chunks: Buffer[] = [];
          let bytes = 0;
          incoming.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (keepBody) chunks.push(chunk);
          });
          incoming.once('end', () => (incoming.complete ? succeed(Buffer.concat(chunks), bytes) : fail('truncated')));
          incoming.once('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
        },
      );
      outgoing.once('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
      outgoing.end();
    });
  }
}

function runPhase(job: ListenersWorkerJob): void {
  const tally = emptyPhaseTally();
  const loader = new HttpLoader(job, tally);
  const players: { player: SimulatedPlayer; startedMs: number }[] = [];
  const startTimers: NodeJS.Timeout[] = [];
  for (let listener = job.firstListener; listener < job.totalListeners; listener += job.stride) {
    const startAtMs = job.rampStartMs + (listener / job.totalListeners) * job.rampMs;
    startTimers.push(
      setTimeout(() => {
        const player = new SimulatedPlayer(loader, now, job.masterPath, listener);
        players.push({ player, startedMs: now() });
        player.start();
      }, Math.max(startAtMs - now(), 0)),
    );
  }

  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  loopDelay.enable();
  let utilizationAtWindowStart = performance.eventLoopUtilization();
  setTimeout(() => {
    loopDelay.reset();
    utilizationAtWindowStart = performance.eventLoopUtilization();
  }, Math.max(job.windowStartMs - now(), 0));

  setTimeout(() => {
    loopDelay.disable();
    const utilization = performance.eventLoopUtilization(utilizationAtWindowStart).utilization;
    startTimers.forEach(clearTimeout);
    for (const { player, startedMs } of players) {
      player.stop();
      tally.stalls += player.stalls;
      tally.stalledMs += player.stalledMs;
      tally.resyncs += player.resyncs;
      if (player.firstAudioAtMs !== undefined) {
        tally.listenersPlaying += 1;
        recordLatency(tally.startupLatency, player.firstAudioAtMs - startedMs);
      }
    }
    loader.close();
    tally.listenersStarted = players.length;
    tally.loadGenerators.push({
      loopUtilization: utilization,
      lagP99Ms: Math.max(loopDelay.percentile(99) / 1e6 - LOOP_DELAY_RESOLUTION_MS, 0),
      lagMaxMs: Math.max(loopDelay.max / 1e6 - LOOP_DELAY_RESOLUTION_MS, 0),
    });
    parentPort!.postMessage(tally);
  }, Math.max(job.windowEndMs - now(), 0));
}

runPhase(workerData as ListenersWorkerJob);
