/**
 * A private varnishd for tests, running the shipped deploy/varnish/default.vcl with its
 * backend pointed at a test origin: free loopback port, its own working directory, no
 * jail, stopped (and its directory removed) in teardown, even if the test fails.
 */
import { execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Test } from 'tap';
import { ScratchProcesses } from './child-processes.js';
import { freeTcpPort } from './ports.js';
import { sleep } from './wait-until.js';

export const VARNISHD_PATH = process.env.ONAIR_VARNISHD ?? '/usr/sbin/varnishd';
const VCL_PATH = join(import.meta.dirname, '..', '..', 'deploy', 'varnish', 'default.vcl');
const READY_TIMEOUT_MS = 15_000;

export interface VarnishHandle {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Requests Varnish has sent to the origin so far (MAIN.backend_req). */
  backendRequests(): Promise<number>;
  stop(): Promise<void>;
}

export async function startVarnish(t: Test, options: { backendPort: number }): Promise<VarnishHandle> {
  const scratch = new ScratchProcesses('onair-varnish-');
  const vcl = (await readFile(VCL_PATH, 'utf8')).replace(/\.port = "\d+";/, `.port = "${options.backendPort}";`);
  const vclPath = join(scratch.dir, 'default.vcl');
  await writeFile(vclPath, vcl);
  const workdir = join(scratch.dir, 'work');
  const port = await freeTcpPort();
  const child = spawn(
    VARNISHD_PATH,
    ['-F', '-j', 'none', '-a', `127.0.0.1:${port}`, '-f', vclPath, '-n', workdir, '-s', 'malloc,64m', '-T', 'none'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  scratch.children.push(child);
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const stop = (): Promise<void> => scratch.stop();
  t.teardown(stop);

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`varnishd exited at start:\n${output}`);
    const answered = await fetch(`${url}/healthz`).then(
      () => true,
      () => false,
    );
    if (answered) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`varnishd did not answer within ${READY_TIMEOUT_MS} ms:\n${output}`);
    }
    await sleep(100);
  }
  return {
    url,
    stop,
    backendRequests: () => backendRequests(workdir),
  };
}

function backendRequests(workdir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('varnishstat', ['-n', workdir, '-1', '-f', 'MAIN.backend_req'], { timeout: 5000 }, (error, stdout) => {
      if (error) return reject(error);
      const match = /MAIN\.backend_req\s+(\d+)/.exec(stdout);
      if (!match) return reject(new Error(`no MAIN.backend_req in varnishstat output: ${stdout}`));
      resolve(Number(match[1]));
    });
  });
}
