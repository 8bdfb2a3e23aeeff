/**
 * Runs wrk (Debian's `wrk`, a C HTTP load generator) and reads its report: requests, req/s,
 * p99 latency, non-2xx/3xx answers and socket errors, and wrk's own CPU use (from /proc), so
 * a saturated load generator can be told from a saturated server. Used by bench:origin:
 * autocannon's HTTP parser topped out at ~80 MB/s, far below what either server sends.
 */
import { spawn } from 'node:child_process';
import { processCpuSeconds } from './system.js';

export const WRK_PATH = '/usr/bin/wrk';

export interface WrkResult {
  requests: number;
  requestsPerSecond: number;
  p99Ms: number;
  non2xx: number;
  socketErrors: number;
  /** wrk's CPU time over the run as a share of one core. */
  cpuPercent: number;
}

export function runWrk(url: string, options: { connections: number; durationSeconds: number; threads?: number }): Promise<WrkResult> {
  const args = ['-t', String(options.threads ?? 1), '-c', String(options.connections), '-d', `${options.durationSeconds}s`, '--latency', url];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(WRK_PATH, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let cpuSeconds = 0;
    // The last reading before exit is wrk's CPU time (the process is gone once it exits).
    const sampler = setInterval(() => {
      cpuSeconds = Math.max(cpuSeconds, processCpuSeconds(child.pid!));
    }, 100);
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (error) => {
      clearInterval(sampler);
      reject(error);
    });
    child.on('close', (code) => {
      clearInterval(sampler);
      if (code !== 0) {
        reject(new Error(`wrk exited with ${code}: ${output.trim()}`));
        return;
      }
      const wallSeconds = (performance.now() - started) / 1000;
      resolve({ ...parseWrkReport(output), cpuPercent: (cpuSeconds / wallSeconds) * 100 });
    });
  });
}

export function parseWrkReport(report: string): Omit<WrkResult, 'cpuPercent'> {
  const number = (pattern: RegExp): number => Number(pattern.exec(report)?.[1] ?? Number.NaN);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(report);
  return {
    requests: number(/(\d+) requests in/),
    requestsPerSecond: number(/Requests\/sec:\s+([\d.]+)/),
    p99Ms: latencyMs(/^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(report)),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(report)?.[1] ?? 0),
    socketErrors: socket ? socket.slice(1).reduce((sum, value) => sum + Number(value), 0) : 0,
  };
}

function latencyMs(match: RegExpExecArray | null): number {
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}
