/**
 * A real S3-compatible server for tests: s3rver (the maintained fork, @20minutes/s3rver),
 * in this process, on a free loopback port, with its files in a private temp dir and one
 * bucket. What it implements and what it does not (ListParts, checksum headers) is in the
 * README's dependency list.
 *
 *   const s3 = await startS3Server(t);   // stopped and removed in t's teardown
 *   s3.config → recordings.storage.s3 for it; s3.env → the credentials it accepts
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { S3StorageConfig } from '../../src/recording/s3-storage.js';
import { freeTcpPort } from './ports.js';

const require = createRequire(import.meta.url);

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

/** s3rver's fixed credentials. */
export const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' } as const;

export interface S3ServerHandle {
  endpoint: string;
  bucket: string;
  /** The files it stores objects in. */
  directory: string;
  config: S3StorageConfig;
}

export async function startS3Server(t: Test, options: { bucket?: string; prefix?: string; presignSeconds?: number } = {}): Promise<S3ServerHandle> {
  const S3rver = require('@20minutes/s3rver') as S3rverClass;
  const directory = await mkdtemp(join(tmpdir(), 'onair-s3-'));
  const bucket = options.bucket ?? 'recordings';
  const port = await freeTcpPort();
  const server = new S3rver({ address: '127.0.0.1', port, silent: true, directory, configureBuckets: [{ name: bucket }] });
  await server.run();
  // The AWS SDK's default chain reads them; set for the whole test process.
  Object.assign(process.env, S3RVER_CREDENTIALS);
  t.teardown(async () => {
    await server.close();
    await rm(directory, { recursive: true, force: true });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    directory,
    config: { endpoint, bucket, region: 'us-east-1', prefix: options.prefix ?? '', forcePathStyle: true, ...(options.presignSeconds ? { presignSeconds: options.presignSeconds } : {}) },
  };
}
