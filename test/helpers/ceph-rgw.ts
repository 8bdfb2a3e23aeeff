/**
 * A real Ceph object gateway (RGW, Debian's radosgw 16.2 Pacific) for tests: a throw-away
 * one-node Ceph in a private temp dir, on free loopback ports, with no root paths, no systemd
 * and no cephx (auth none on loopback). One ceph-mon, one ceph-osd on memstore (objects in
 * RAM, 1 GiB at most), radosgw with beast on a free port, one user with fixed keys and one
 * bucket. It answers in 1.5 to 2.5 s here (mon proposals every 50 ms instead of 1 s: the
 * default makes radosgw's pool creation take 10 s more). Unlike s3rver, RGW implements
 * ListParts and checks Content-MD5 (BadDigest). RGW 16.2 ignores `x-amz-checksum-crc32`
 * (neither checked nor echoed), answers CompleteMultipartUpload with an empty ETag, and
 * ListParts of an unknown UploadId with NoSuchKey (docs/architecture.md, "Recordings in object storage").
 *
 *   const rgw = await startCephRgw(t);   // stopped and removed in t's teardown
 *   rgw.config → recordings.storage.s3 for it; the credentials are set in process.env
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { Test } from 'tap';
import type { S3StorageConfig } from '../../src/recording/s3-storage.js';
import { ScratchProcesses } from './child-processes.js';
import { freeTcpPort } from './ports.js';
import { sleep } from './wait-until.js';

const run = promisify(execFile);
const START_TIMEOUT_MS = 60_000;
const COMMAND_TIMEOUT_MS = 30_000;

/** The keys of the user the helper creates; the AWS SDK's default chain reads them from the environment. */
export const RGW_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'ONAIRTESTKEY', AWS_SECRET_ACCESS_KEY: 'onair-test-secret' } as const;

export interface CephRgwHandle {
  endpoint: string;
  bucket: string;
  config: S3StorageConfig;
  /** Milliseconds from the first command to the bucket's creation. */
  startMs: number;
}

function cephConf(dir: string, fsid: string, monPort: number, rgwPort: number): string {
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
public addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
mon warn on insecure global id reclaim allowed = false
admin socket = ${dir}/$name.asok
log file = ${dir}/$name.log
pid file = ${dir}/$name.pid
run dir = ${dir}
crash dir = ${dir}/crash
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
mon data avail warn = 1
paxos propose interval = 0.05
paxos min wait = 0.01
[mon.a]
mon data = ${dir}/mon
[osd.0]
osd data = ${dir}/osd
osd objectstore = memstore
memstore device bytes = 1073741824
[client.rgw]
rgw data = ${dir}/rgw
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
keyring = /dev/null
# radosgw's own defaults ask a secure (cephx) connection to the mon
ms mon client mode = crc
`;
}

export async function startCephRgw(t: Test, options: { bucket?: string; prefix?: string } = {}): Promise<CephRgwHandle> {
  const started = Date.now();
  const scratch = new ScratchProcesses('onair-rgw-');
  t.teardown(() => scratch.stop());
  const { dir } = scratch;
  const conf = join(dir, 'ceph.conf');
  const [monPort, rgwPort] = [await freeTcpPort(), await freeTcpPort()];
  for (const data of ['mon', 'osd', 'rgw']) mkdirSync(join(dir, data));
  const fsid = randomUUID();
  writeFileSync(conf, cephConf(dir, fsid, monPort, rgwPort));
  // The dir goes with the teardown: a failure carries the end of each daemon's log.
  const logs = (): string =>
    readdirSync(dir)
      .filter((name) => name.endsWith('.log'))
      .map((name) => `--- ${name}\n${readFileSync(join(dir, name), 'utf8').slice(-1500)}`)
      .join('\n');
  const command = async (file: string, args: string[]): Promise<string> => {
    try {
      return (await run(file, args, { timeout: COMMAND_TIMEOUT_MS })).stdout;
    } catch (error) {
      throw new Error(`${file} ${args.join(' ')} failed: ${(error as { stderr?: string }).stderr ?? String(error)}\n${logs()}`);
    }
  };
  const daemon = (file: string, args: string[]): void => {
    // -f: in the foreground, so the child is the daemon and teardown ends it.
    const child = spawn(file, ['-f', '-c', conf, ...args], { stdio: 'ignore' });
    scratch.children.push(child);
  };

  await command('ceph-authtool', ['--create-keyring', join(dir, 'mon.keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
  await command('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, join(dir, 'monmap')]);
  await command('ceph-mon', ['-c', conf, '-i', 'a', '--mkfs', '--monmap', join(dir, 'monmap'), '--keyring', join(dir, 'mon.keyring')]);
  daemon('ceph-mon', ['-i', 'a']);
  const osdId = (await command('ceph', ['-c', conf, '--connect-timeout', '20', 'osd', 'create'])).trim();
  await command('ceph-osd', ['-c', conf, '-i', osdId, '--mkfs']);
  daemon('ceph-osd', ['-i', osdId]);
  daemon('radosgw', ['-n', 'client.rgw']);

  const endpoint = `http://127.0.0.1:${rgwPort}`;
  for (;;) {
    const answer = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    if (answer?.status === 200) break;
    if (Date.now() - started > START_TIMEOUT_MS) throw new Error(`radosgw did not answer within ${START_TIMEOUT_MS} ms\n${logs()}`);
    if (scratch.children.some((child) => child.exitCode !== null || child.signalCode !== null)) throw new Error(`a Ceph daemon exited while starting\n${logs()}`);
    await sleep(100);
  }
  await command('radosgw-admin', ['-c', conf, '-n', 'client.rgw', 'user', 'create', '--uid=onair', '--display-name=onair', `--access-key=${RGW_CREDENTIALS.AWS_ACCESS_KEY_ID}`, `--secret-key=${RGW_CREDENTIALS.AWS_SECRET_ACCESS_KEY}`]);
  // The AWS SDK's default chain reads them; set for the whole test process.
  Object.assign(process.env, RGW_CREDENTIALS);
  const bucket = options.bucket ?? 'recordings';
  const admin = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true });
  try {
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    admin.destroy();
  }
  return {
    endpoint,
    bucket,
    config: { endpoint, bucket, region: 'us-east-1', prefix: options.prefix ?? '', forcePathStyle: true },
    startMs: Date.now() - started,
  };
}
