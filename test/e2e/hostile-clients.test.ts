/**
 * Hostile clients at a real listening origin (README, URL layout: "Hostile clients"):
 *
 * - Held requests: a real `onair start` (built CLI, LL-HLS channel, a tone over SRT, default
 *   limits). An attacker process at 127.0.0.3 opens 300 connections and pipelines 20,000
 *   blocking reloads on the ones the origin keeps, each with a forged X-Forwarded-For. The
 *   origin keeps 256 connections of that address (connectionsPerClient), holds 64 of its
 *   requests (heldRequestsPerClient) and answers every other one 503 `busy` with Retry-After.
 *   Meanwhile a listener at 127.0.0.2 polls the playlist and fetches segments: all answered
 *   200, and its own blocking reloads are still held and answered. The p99 latency of its
 *   plain requests before and during the attack is printed (no speed assertion beyond a
 *   generous sanity bound).
 * - Cache key: Varnish (deploy/varnish/default.vcl) in front of the same origin keys on the
 *   path and the parameters that change the answer: a cache buster hits the cached object.
 * - Listener-count memory: an origin in a child process of its own (so its RSS is its own)
 *   counts 100,000 requests with distinct 4 KB User-Agents; its RSS grows less than 50 MB.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t, { type Test } from 'tap';
import { killAndWait } from '../helpers/child-processes.js';
import { originUrl, playlistSegmentCount, startSender, testConfig, waitFor } from '../helpers/onair-harness.js';
import { startOnairProcess } from '../helpers/onair-process.js';
import { startVarnish } from '../helpers/varnish.js';
import { sleep, within } from '../helpers/wait-until.js';

const ATTACKER_ADDRESS = '127.0.0.3';
const LISTENER_ADDRESS = '127.0.0.2';
const ATTACK_REQUESTS = 20_000;
const ATTACK_CONNECTIONS = 300;
/** The config's defaults (origin.limits), which this test runs with. */
const CONNECTIONS_PER_CLIENT = 256;
const HELD_PER_CLIENT = 64;
/** Not a speed assertion: a listener answered this slowly during the attack would be unserved. */
const SANITY_P99_MS = 2000;
const BASELINE_MS = 3000;
const PLAYLIST = '/fip/fip_hifi.m3u8';

const config = await testConfig({ segmentSeconds: 4, channel: { lowLatency: true, partSeconds: 1 } });
await startOnairProcess(t, { role: 'start', config, readyPattern: /origin listening/ });
startSender(t, config);
const origin = originUrl(config);
// Live once a first segment is listed (4 s each: waiting for three cost 8 s more and proved nothing more).
await waitFor('a first segment', async () => ((await playlistSegmentCount(`${origin}${PLAYLIST}`)) >= 1 ? true : undefined), 60_000);

/** The attacker: a plain Node script, so its sockets load neither this process nor its measurements. */
const ATTACKER_SCRIPT = `
import { connect } from 'node:net';
const { port, address, requests, connections, path } = JSON.parse(process.env.ONAIR_ATTACK);
const lastSegment = async () => {
  const playlist = await (await fetch('http://127.0.0.1:' + port + path)).text();
  const sequence = Number(/#EXT-X-MEDIA-SEQUENCE:(\\d+)/.exec(playlist)[1]);
  return sequence + playlist.split('\\n').filter((line) => line.startsWith('#EXTINF')).length - 1;
};
// Right after a segment completes, two segments past it, third part: allowed (rfc8216bis
// §6.2.5.2), and about 7 s away, far longer than sending everything takes.
const before = await lastSegment();
let last = before;
while (last === before) {
  await new Promise((resolve) => setTimeout(resolve, 50));
  last = await lastSegment();
}
const target = path + '?_HLS_msn=' + (last + 2) + '&_HLS_part=2';
const sockets = [];
for (let i = 0; i < connections; i++) {
  const socket = connect({ port, host: '127.0.0.1', localAddress: address });
  const state = { socket, open: true, received: '', sent: 0 };
  socket.on('error', () => undefined);
  socket.on('close', () => (state.open = false));
  socket.on('data', (chunk) => (state.received += chunk.toString('latin1')));
  sockets.push(state);
}
await new Promise((resolve) => setTimeout(resolve, 1000));
const kept = sockets.filter((state) => state.open);
const started = Date.now();
for (let i = 0; i < requests; i++) {
  const state = kept[i % kept.length];
  state.sent += 1;
  state.socket.write('GET ' + target + '&n=' + i + ' HTTP/1.1\\r\\nHost: origin\\r\\nX-Forwarded-For: 10.' + (i >> 16 & 255) + '.' + (i >> 8 & 255) + '.' + (i & 255) + '\\r\\n\\r\\n');
}
// Answers follow each other with no line break between a body and the next status line.
const count = (state) => (state.received.match(/HTTP\\/1\\.1 \\d{3} /g) ?? []).length;
const deadline = Date.now() + 30000;
while (Date.now() < deadline && kept.some((state) => state.open && count(state) < state.sent)) {
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const statuses = {};
let retryAfter = 0;
for (const state of kept) {
  const answers = state.received.split(/(?=HTTP\\/1\\.1 \\d{3} )/).filter((answer) => answer.startsWith('HTTP/1.1 '));
  for (const answer of answers) {
    const match = /^HTTP\\/1\\.1 (\\d{3}) [^\\r]*\\r\\n([\\s\\S]*?)\\r\\n\\r\\n([\\s\\S]*)$/.exec(answer);
    if (!match) continue;
    const body = /^\\{"error":"(\\w+)"/.exec(match[3]);
    const key = match[1] + (body ? ' ' + body[1] : '');
    statuses[key] = (statuses[key] ?? 0) + 1;
    if (/^retry-after: 1$/im.test(match[2])) retryAfter += 1;
  }
  state.socket.destroy();
}
console.log(JSON.stringify({ kept: kept.length, refusedConnections: connections - kept.length, statuses, retryAfter, seconds: (Date.now() - started) / 1000 }));
`;

interface AttackResult {
  kept: number;
  refusedConnections: number;
  statuses: Record<string, number>;
  retryAfter: number;
  seconds: number;
}

function runAttacker(t: Test): { result: Promise<AttackResult>; child: ChildProcess } {
  const child = spawn(process.execPath, ['--input-type=module', '-e', ATTACKER_SCRIPT], {
    env: {
      ...process.env,
      ONAIR_ATTACK: JSON.stringify({ port: config.origin.port, address: ATTACKER_ADDRESS, requests: ATTACK_REQUESTS, connections: ATTACK_CONNECTIONS, path: PLAYLIST }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => killAndWait(child, 'SIGKILL'));
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const result = once(child, 'exit').then(() => {
    const line = /^\{"kept".*$/m.exec(output);
    if (!line) throw new Error(`the attacker gave no result:\n${output}`);
    return JSON.parse(line[0]) as AttackResult;
  });
  return { result, child };
}

/** The listener at 127.0.0.2: one keep-alive connection, like a player. */
const listenerAgent = new Agent({ keepAlive: true, maxSockets: 2, localAddress: LISTENER_ADDRESS } as ConstructorParameters<typeof Agent>[0]);
t.teardown(() => listenerAgent.destroy());

function listenerGet(path: string): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port: config.origin.port, path, agent: listenerAgent }, (response) => {
      let body = '';
      response.setEncoding('latin1');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, ms: performance.now() - started }));
    });
    request.on('error', reject);
    request.end();
  });
}

/** Polls the playlist and fetches its newest segment until `stop()`; latencies of the plain requests. */
function listen(): { stop: () => Promise<{ latencies: number[]; failures: string[] }> } {
  const latencies: number[] = [];
  const failures: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const playlist = await listenerGet(PLAYLIST);
        latencies.push(playlist.ms);
        if (playlist.status !== 200) failures.push(`playlist ${playlist.status}`);
        const newest = playlist.body.split('\n').filter((line) => line.endsWith('.ts')).at(-1);
        if (newest) {
          const segment = await listenerGet(`/fip/${newest}`);
          latencies.push(segment.ms);
          if (segment.status !== 200) failures.push(`segment ${segment.status}`);
        }
      } catch (error) {
        failures.push(String(error));
      }
      await sleep(20);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { latencies, failures };
    },
  };
}

function p99(latencies: number[]): number {
  const sorted = [...latencies].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? NaN;
}

/** The listener's own blocking reloads for the hinted part, until `stop()`: statuses. */
function blockingReloads(): { stop: () => Promise<number[]> } {
  const statuses: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const playlist = await listenerGet(PLAYLIST);
      const hint = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="\w+\/(\d+)-\d+\.(\d+)\.ts"/.exec(playlist.body);
      if (!hint) continue;
      statuses.push((await listenerGet(`${PLAYLIST}?_HLS_msn=${hint[1]}&_HLS_part=${hint[2]}`)).status);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return statuses;
    },
  };
}

t.test('20,000 held requests from one address are capped; another client is served without errors', async (t) => {
  const baselineRun = listen();
  await sleep(BASELINE_MS);
  const baseline = await baselineRun.stop();

  const duringRun = listen();
  const reloads = blockingReloads();
  const attack = runAttacker(t);
  const result = await attack.result;
  const during = await duringRun.stop();
  const reloadStatuses = await reloads.stop();

  const busy = result.statuses['503 busy'] ?? 0;
  const heldOutcomes = (result.statuses['200'] ?? 0) + (result.statuses['503 not_ready'] ?? 0);
  t.comment(`attack: ${JSON.stringify(result)}`);
  t.comment(
    `listener p99: ${p99(baseline.latencies).toFixed(1)} ms before (${baseline.latencies.length} requests), ` +
      `${p99(during.latencies).toFixed(1)} ms during the attack (${during.latencies.length} requests)`,
  );
  t.equal(result.kept, CONNECTIONS_PER_CLIENT, `the origin kept ${CONNECTIONS_PER_CLIENT} connections of the attacking address`);
  t.equal(result.refusedConnections, ATTACK_CONNECTIONS - CONNECTIONS_PER_CLIENT, 'and closed the others at once');
  t.equal(busy + heldOutcomes, ATTACK_REQUESTS, 'every request was answered: held, or refused as busy');
  t.ok(heldOutcomes <= HELD_PER_CLIENT, `${heldOutcomes} held for one address (at most ${HELD_PER_CLIENT}), whatever X-Forwarded-For said`);
  t.ok(busy >= ATTACK_REQUESTS - HELD_PER_CLIENT, `${busy} refused with 503 busy`);
  t.ok(result.retryAfter >= busy, 'each refusal carries Retry-After: 1');

  t.same(baseline.failures, [], 'the listener was served before');
  t.same(during.failures, [], 'and during the attack, without an error');
  t.ok(during.latencies.length > 0 && p99(during.latencies) < SANITY_P99_MS, `p99 during the attack under ${SANITY_P99_MS} ms`);
  t.ok(reloadStatuses.length > 0 && reloadStatuses.every((status) => status === 200), `its own ${reloadStatuses.length} blocking reloads were held and answered 200`);
});

t.test('Varnish keys on the path and the parameters that change the answer: a cache buster hits', async (t) => {
  const varnish = await startVarnish(t, { backendPort: config.origin.port });
  const get = async (path: string): Promise<{ cache: string | null; status: number; body: string }> => {
    const response = await fetch(`${varnish.url}${path}`);
    return { cache: response.headers.get('x-cache'), status: response.status, body: await response.text() };
  };
  // Within one max-age (TD/2 = 2 s) of the first fetch.
  const first = await get(`${PLAYLIST}?cachebuster=1`);
  const backendBefore = await varnish.backendRequests();
  const busted = await get(`${PLAYLIST}?cachebuster=2&utm_source=x`);
  const plain = await get(PLAYLIST);
  const encodedName = await get(`${PLAYLIST}?%5FHLS_msn=999999`);
  t.equal(busted.cache, 'HIT', 'another cache buster is the same object');
  t.equal(plain.cache, 'HIT', 'and so is the plain URL');
  t.equal(encodedName.cache, 'HIT', 'a percent-encoded directive name is an unknown parameter: ignored');
  t.equal(busted.body, first.body);
  t.equal(await varnish.backendRequests(), backendBefore, 'no request reached the origin');

  const sequence = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(first.body)![1]);
  const blocking = `${PLAYLIST}?_HLS_msn=${sequence}`;
  t.equal((await get(`${blocking}&x=1`)).cache, 'MISS', 'a directive is part of the key');
  t.equal((await get(`${blocking}&x=2`)).cache, 'HIT', 'with an unknown parameter beside it ignored');

  t.equal((await get('/fip/fip_hifi.m3u8&x=1')).status, 400, 'an & in the path is part of the path (a malformed name)');
  const after = await get(PLAYLIST);
  t.equal(after.status, 200, 'and never stands in for the playlist');
});

/** The checkout, as a file URL with a trailing slash, for the memory child's imports. */
const ROOT_URL = pathToFileURL(join(import.meta.dirname, '..', '..', '/')).href;
const USER_AGENTS = 100_000;
const USER_AGENT_BYTES = 4096;
const RSS_BUDGET_BYTES = 50 * 1024 * 1024;

/**
 * An origin alone in a process, with a live playlist in a memory store. On an IPC message
 * `rss` it collects garbage and answers its RSS.
 */
const MEMORY_ORIGIN_SCRIPT = `
const source = (path) => import(new URL(path, process.env.ONAIR_ROOT_URL).href);
const { MemoryStore } = await source('src/store/memory-store.js');
const { buildOrigin } = await source('src/origin/origin-server.js');
const store = new MemoryStore();
await store.start();
const lines = ['#EXTM3U', '#EXT-X-VERSION:6', '#EXT-X-TARGETDURATION:4', '#EXT-X-MEDIA-SEQUENCE:1'];
for (let msn = 1; msn <= 6; msn++) lines.push('#EXTINF:3.989,', 'hifi/' + msn + '-1.ts');
await store.publish({ channel: 'fip', playlists: { 'fip_hifi.m3u8': lines.join('\\n') + '\\n' }, state: '{}' });
const app = await buildOrigin({ store, channels: [{ id: 'fip', renditions: ['hifi'] }], targetDurationSeconds: 4 });
const address = await app.listen({ host: '127.0.0.1', port: 0 });
process.on('message', async () => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  process.send({ rss: process.memoryUsage().rss });
});
console.log(JSON.stringify({ listening: address }));
`;

async function startMemoryOrigin(t: Test): Promise<{ child: ChildProcess; port: number; rss: () => Promise<number> }> {
  const loader = process.execArgv.find((argument) => argument.includes('@tapjs/typescript'));
  if (!loader) throw new Error('run this test through tap: the origin process needs its TypeScript loader');
  const child = spawn(process.execPath, ['--expose-gc', loader, '--input-type=module', '-e', MEMORY_ORIGIN_SCRIPT], {
    env: { ...process.env, ONAIR_ROOT_URL: ROOT_URL, TS_NODE_TRANSPILE_ONLY: '1' },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  t.teardown(() => killAndWait(child, 'SIGKILL'));
  let output = '';
  const listening = new Promise<number>((resolve, reject) => {
    const collect = (chunk: Buffer): void => {
      output += chunk.toString();
      const line = /^\{"listening":"http:\/\/[^:]+:(\d+)"\}$/m.exec(output);
      if (line) resolve(Number(line[1]));
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    void once(child, 'exit').then(() => reject(new Error(`the origin exited:\n${output}`)));
  });
  const port = await within(listening, 30_000, () => Promise.reject(new Error(`the origin did not listen:\n${output}`)));
  const rss = async (): Promise<number> => {
    child.send('rss');
    const [message] = (await once(child, 'message')) as [{ rss: number }];
    return message.rss;
  };
  return { child, port, rss };
}

/** A 4 KB User-Agent, distinct for each index. */
function userAgent(index: number): string {
  const head = `Player/${index} `;
  return head + 'x'.repeat(USER_AGENT_BYTES - head.length);
}

/** Sends `count` playlist requests pipelined over a few connections, `windowSize` outstanding per connection; the 200s. */
async function pipelined(port: number, first: number, count: number, agentOf: (index: number) => string): Promise<number> {
  const CONNECTIONS = 8;
  const WINDOW = 32;
  let next = first;
  const end = first + count;
  let ok = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      const socket: Socket = connect({ port, host: '127.0.0.1' });
      await once(socket, 'connect');
      let outstanding = 0;
      let pending = '';
      let wake: (() => void) | undefined;
      socket.on('data', (chunk: Buffer) => {
        // A status line may be split between chunks: keep the tail after the last one counted.
        pending += chunk.toString('latin1');
        let counted = 0;
        for (const match of pending.matchAll(/HTTP\/1\.1 (\d{3})/g)) {
          if (match[1] === '200') ok += 1;
          outstanding -= 1;
          counted = match.index + match[0].length;
        }
        pending = pending.slice(Math.max(counted, pending.length - 11));
        wake?.();
      });
      while (next < end || outstanding > 0) {
        while (outstanding < WINDOW && next < end) {
          socket.write(`GET ${PLAYLIST} HTTP/1.1\r\nHost: origin\r\nUser-Agent: ${agentOf(next)}\r\n\r\n`);
          next += 1;
          outstanding += 1;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
      socket.destroy();
    }),
  );
  return ok;
}

t.test('100,000 distinct 4 KB User-Agents grow the origin by less than 50 MB', async (t) => {
  const { port, rss } = await startMemoryOrigin(t);
  // Warm up: the same requests with one User-Agent, so buffers and code are in place.
  t.equal(await pipelined(port, 0, 5000, () => userAgent(0)), 5000);
  const before = await rss();
  const started = Date.now();
  t.equal(await pipelined(port, 1, USER_AGENTS, userAgent), USER_AGENTS, 'every request answered 200 and counted');
  const after = await rss();
  const grown = after - before;
  t.comment(`RSS ${(before / 2 ** 20).toFixed(1)} MB → ${(after / 2 ** 20).toFixed(1)} MB (+${(grown / 2 ** 20).toFixed(1)} MB) for ${USER_AGENTS} User-Agents of ${USER_AGENT_BYTES} bytes in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.ok(grown < RSS_BUDGET_BYTES, `grew ${(grown / 2 ** 20).toFixed(1)} MB, under ${RSS_BUDGET_BYTES / 2 ** 20} MB`);
});
