/**
 * Machine helpers shared by the benches (and the tests, for free ports): free loopback
 * ports, a process's CPU time from /proc, stopping a child, waiting.
 */
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** /proc/<pid>/stat counts in clock ticks; USER_HZ is 100 on every Linux build that matters. */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * Free loopback ports are drawn at random below Linux's ephemeral range (32768–60999), where
 * the kernel never puts the local end of an outgoing connection: a port the OS picked (port 0)
 * and we released could be taken by any client connection before the test's server binds it,
 * which made servers fail with EADDRINUSE on a busy machine. A port is handed out once per
 * process, and only after a bind to it succeeded.
 */
const PORT_RANGE = { first: 20_000, last: 32_767 };
const PORT_ATTEMPTS = 200;
const handedOut = new Set<number>();

async function freePort(bindable: (port: number) => Promise<boolean>): Promise<number> {
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = PORT_RANGE.first + Math.floor(Math.random() * (PORT_RANGE.last - PORT_RANGE.first + 1));
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free loopback port in ${PORT_RANGE.first}-${PORT_RANGE.last} after ${PORT_ATTEMPTS} attempts`);
}

/** A free loopback TCP port. */
export function freeTcpPort(): Promise<number> {
  return freePort(
    (port) =>
      new Promise((resolve) => {
        const server = createServer();
        server.once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
      }),
  );
}

/** A free loopback UDP port (SRT listeners). */
export function freeUdpPort(): Promise<number> {
  return freePort(
    (port) =>
      new Promise((resolve) => {
        const socket = createSocket('udp4');
        socket.once('error', () => {
          socket.close();
          resolve(false);
        });
        socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
      }),
  );
}

/** User + system CPU seconds of process `pid` so far; 0 once it is gone. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; the fields after it start past its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** User + system CPU seconds of process `pid` and its children (a cluster's primary and workers, nginx's master and workers). */
export function processTreeCpuSeconds(pid: number): number {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // gone, or no children file: the process alone
  }
  return processCpuSeconds(pid) + children.reduce((total, child) => total + processTreeCpuSeconds(child), 0);
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `url` answers at all (any status): a server that has started listening. */
export function answers(url: string): Promise<boolean> {
  return fetch(url).then(
    (response) => response.body?.cancel().then(() => true) ?? true,
    () => false,
  );
}

export function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/**
 * The first JSON line a child prints on stdout (a bench worker's "ready" report), or a rejection
 * naming `what` when none comes within `timeoutMs` or the child exits first.
 */
export function firstJsonLine<T>(child: ChildProcess, what: string, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not report a port within ${timeoutMs} ms`)), timeoutMs);
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      output += text;
      const line = output.split('\n').find((candidate) => candidate.startsWith('{'));
      if (line === undefined || !output.includes('\n')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as T);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${signal ?? code}) before reporting its port`));
    });
  });
}
