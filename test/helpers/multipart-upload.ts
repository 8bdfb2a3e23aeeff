/**
 * Shared pieces of the multipart upload tests (test/recording/s3-multipart-upload.test.ts against
 * s3rver, test/recording/s3-rgw.test.ts against Ceph RGW): a scratch file, a storage client that
 * counts what it sends, the object read back, an upload stopped after N parts, and an upload in
 * a process of its own that is SIGKILLed after saving its second part.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { MIN_PART_SIZE, uploadFileMultipart, type MultipartState } from '../../src/recording/s3-multipart-upload.js';
import { S3RecordingStorage, type S3StorageConfig } from '../../src/recording/s3-storage.js';

/** A file of three whole parts and a short fourth. */
export const PARTS = 4;
export const FILE_SIZE = MIN_PART_SIZE * (PARTS - 1) + 12_345;

/** `size` random bytes in a file of a fresh directory (removed in teardown). */
export async function scratchFile(t: Test, size = FILE_SIZE): Promise<{ dir: string; path: string; bytes: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'onair-s3-upload-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const bytes = randomBytes(size);
  const path = join(dir, 'session.m4a');
  await writeFile(path, bytes);
  return { dir, path, bytes };
}

/** A storage client that counts its UploadPart requests and keeps the CompleteMultipartUpload answers' ETags. */
export function countingStorage(t: Test, config: S3StorageConfig): { storage: S3RecordingStorage; partRequests: number[]; completedEtags: (string | undefined)[] } {
  const storage = new S3RecordingStorage(config);
  t.teardown(() => storage.close());
  const partRequests: number[] = [];
  const completedEtags: (string | undefined)[] = [];
  storage.client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UploadPartCommand') partRequests.push((args.input as { PartNumber: number }).PartNumber);
      const result = await next(args);
      if (context.commandName === 'CompleteMultipartUploadCommand') completedEtags.push((result.output as { ETag?: string }).ETag);
      return result;
    },
    { step: 'initialize', name: 'countParts' },
  );
  return { storage, partRequests, completedEtags };
}

/** The object's bytes, fetched at the URL a listener would get; empty when it is not 200. */
export async function objectBytes(storage: S3RecordingStorage, key: string): Promise<Buffer> {
  const response = await fetch(await storage.urlOf(key));
  return response.status === 200 ? Buffer.from(await response.arrayBuffer()) : Buffer.alloc(0);
}

/** Uploads until `parts` parts are saved, then stops (as a shutdown would); returns the saved state. */
export async function cutUpload(storage: S3RecordingStorage, bucket: string, key: string, path: string, parts: number): Promise<MultipartState> {
  const stop = new AbortController();
  let saved: MultipartState | undefined;
  await uploadFileMultipart({
    client: storage.client, bucket, key, path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, signal: stop.signal,
    save: async (state) => {
      saved = state;
      if (state.parts.length === parts) stop.abort();
    },
  }).catch(() => undefined);
  return saved!;
}

/**
 * The uploader in a process of its own, saving its state to `statePath` and SIGKILLed while the
 * part after the second is on its way; resolves with how it ended and what it printed.
 */
export async function uploadInKilledProcess(config: S3StorageConfig, key: string, path: string, statePath: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  const source = (file: string): string => JSON.stringify(fileURLToPath(new URL(`../../src/recording/${file}`, import.meta.url)));
  const program = `
    import { writeFileSync } from 'node:fs';
    import { uploadFileMultipart } from ${source('s3-multipart-upload.ts')};
    import { S3RecordingStorage } from ${source('s3-storage.ts')};
    const storage = new S3RecordingStorage(${JSON.stringify(config)});
    await uploadFileMultipart({ client: storage.client, bucket: ${JSON.stringify(config.bucket)}, key: ${JSON.stringify(key)}, path: ${JSON.stringify(path)},
      contentType: 'audio/mp4', partSize: ${MIN_PART_SIZE},
      save: async (state) => {
        writeFileSync(${JSON.stringify(statePath)}, JSON.stringify(state));
        if (state.parts.length === 2) setImmediate(() => process.kill(process.pid, 'SIGKILL'));
      } });
    console.log('finished');`;
  const child = spawn(process.execPath, ['--import', import.meta.resolve('@tapjs/typescript/import'), '--input-type=module', '--eval', program], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal, output };
}
