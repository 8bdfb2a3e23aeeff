/**
 * One file into the bucket as a multipart upload that survives a crash
 * (docs/architecture.md, "Recordings in object storage"). lib-storage's `Upload` cannot resume
 * (it keeps its UploadId and parts in memory only), so the parts are sent here with client-s3's
 * commands, one at a time:
 *
 *   CreateMultipartUpload (ChecksumAlgorithm CRC32) → state { uploadId, partSize, parts: [] } saved
 *   UploadPart n (Content-MD5, x-amz-checksum-crc32) → the answer's ETag must be the part's MD5
 *     (and its CRC32, when the server echoes one, the part's CRC32); then the part goes into the
 *     state, saved durably before the next part is read
 *   CompleteMultipartUpload → the object's ETag (HeadObject's when the answer has none: Ceph RGW
 *     Pacific) must be S3's multipart ETag (MD5 of the parts' MD5s, "-N") or, on servers that store
 *     a plain MD5, the whole file's MD5; its composite CRC32 likewise when given; HeadObject's
 *     length must be the file's
 *
 * A job cut by a crash passes the saved state back: ListParts confirms which of the recorded
 * parts the server holds (same ETag and size) and only the others are sent. A server without
 * ListParts (405/501) is trusted with the recorded parts, and an upload the server no longer
 * knows (NoSuchUpload: aborted, or expired by a lifecycle rule) starts again from part 1.
 * A part whose answer does not match is sent again, up to `attempts` times; then the upload
 * fails with ONAIR_RECORDING_UPLOAD_FAILED, its state kept for the next run.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListPartsCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import { OnairError } from '../errors.js';
import { crc32Base64, unquote } from './s3-storage.js';

/** S3's smallest part (but the last); 8 MiB parts hold a recording of 1 h at 128 kb/s in 7. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
/** S3's most parts in one upload: the part size grows for files past 10,000 parts. */
const MAX_PARTS = 10_000;
const DEFAULT_ATTEMPTS = 3;

export interface UploadedPart {
  partNumber: number;
  /** Hex MD5 of the part, as the server's ETag confirmed it. */
  md5: string;
  /** Base64 big-endian CRC32 of the part. */
  crc32: string;
  size: number;
}

/** What a job keeps (in its record) to resume the upload after a crash. */
export interface MultipartState {
  key: string;
  uploadId: string;
  partSize: number;
  /** The file's size when the upload started: a file that changed starts over. */
  fileSize: number;
  parts: UploadedPart[];
}

export interface MultipartUploadOptions {
  client: S3Client;
  bucket: string;
  key: string;
  path: string;
  contentType: string;
  /** The state saved by an earlier run of the same upload, to resume. */
  state?: MultipartState;
  /** Saves the state durably; called after each confirmed part. */
  save: (state: MultipartState) => Promise<void>;
  partSize?: number;
  /** Tries per part when the server's answer does not match (default 3). */
  attempts?: number;
  signal?: AbortSignal;
  logger?: Logger;
}

export interface MultipartUploadResult {
  size: number;
  parts: number;
  /** Parts sent in this run (a resumed run sends only those the server did not confirm). */
  partsSent: number;
  /** Parts whose answer did not match what was sent, and that were sent again. */
  partsResent: number;
  /** Whether ListParts confirmed the parts of a resumed upload (false: the server has no ListParts, the record was trusted). */
  confirmedByListParts: boolean;
}

export async function uploadFileMultipart(options: MultipartUploadOptions): Promise<MultipartUploadResult> {
  const { client, bucket, key, path, signal } = options;
  const fileSize = (await stat(path)).size;
  const partSize = Math.max(options.partSize ?? DEFAULT_PART_SIZE, Math.ceil(fileSize / MAX_PARTS));
  const partCount = Math.max(1, Math.ceil(fileSize / partSize));
  const attempts = options.attempts ?? DEFAULT_ATTEMPTS;

  let state = options.state?.key === key && options.state.fileSize === fileSize && options.state.partSize === partSize ? options.state : undefined;
  let confirmedByListParts = false;
  if (state) {
    const confirmed = await confirmParts(client, bucket, state, signal);
    if (confirmed === undefined) {
      options.logger?.warn({ key, uploadId: state.uploadId }, 'the upload is gone from the server: it starts again');
      state = undefined;
    } else {
      confirmedByListParts = confirmed.byListParts;
      state = { ...state, parts: confirmed.parts };
      if (!confirmed.byListParts) options.logger?.warn({ key }, 'the server has no ListParts: the recorded parts are trusted');
    }
  }
  if (!state) {
    const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: options.contentType, ChecksumAlgorithm: 'CRC32' }), { abortSignal: signal });
    if (!created.UploadId) throw new OnairError('ONAIR_RECORDING_UPLOAD_FAILED', 'the server gave no UploadId', { where: key });
    state = { key, uploadId: created.UploadId, partSize, fileSize, parts: [] };
    await options.save(state);
  }

  let partsSent = 0;
  let partsResent = 0;
  const file = await open(path, 'r');
  try {
    const done = new Set(state.parts.map((part) => part.partNumber));
    for (let partNumber = 1; partNumber <= partCount; partNumber++) {
      if (done.has(partNumber)) continue;
      const offset = (partNumber - 1) * partSize;
      const size = Math.min(partSize, fileSize - offset);
      const bytes = Buffer.alloc(size);
      const { bytesRead } = await file.read(bytes, 0, size, offset);
      if (bytesRead !== size) throw new OnairError('ONAIR_RECORDING_UPLOAD_FAILED', `the file ended at byte ${offset + bytesRead} while its part ${partNumber} was read`, { where: path });
      const md5 = createHash('md5').update(bytes).digest();
      const crc32 = crc32Base64(bytes);
      let mismatch = '';
      for (let attempt = 1; ; attempt++) {
        signal?.throwIfAborted();
        partsSent += 1;
        mismatch = await sendPart(client, { bucket, key, uploadId: state.uploadId, partNumber, bytes, md5, crc32, signal });
        if (!mismatch) break;
        options.logger?.warn({ key, partNumber, attempt, reason: mismatch }, 'the server did not confirm the part: it is sent again');
        if (attempt >= attempts) throw new OnairError('ONAIR_RECORDING_UPLOAD_FAILED', `part ${partNumber}: ${mismatch} (${attempts} attempts)`, { where: key });
        partsResent += 1;
      }
      state = { ...state, parts: [...state.parts, { partNumber, md5: md5.toString('hex'), crc32, size }] };
      await options.save(state);
    }
  } finally {
    await file.close();
  }

  const parts = [...state.parts].sort((a, b) => a.partNumber - b.partNumber);
  const completed = await client.send(
    new CompleteMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      UploadId: state.uploadId,
      MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.partNumber, ETag: `"${part.md5}"`, ChecksumCRC32: part.crc32 })) },
    }),
    { abortSignal: signal },
  );
  await verifyObject(client, { bucket, key, path, fileSize, parts, etag: unquote(completed.ETag), crc32: completed.ChecksumCRC32, signal });
  return { size: fileSize, parts: parts.length, partsSent, partsResent, confirmedByListParts };
}

/** '' when the server confirmed the part, else what did not match. */
async function sendPart(
  client: S3Client,
  part: { bucket: string; key: string; uploadId: string; partNumber: number; bytes: Buffer; md5: Buffer; crc32: string; signal?: AbortSignal },
): Promise<string> {
  try {
    const answer = await client.send(
      new UploadPartCommand({
        Bucket: part.bucket,
        Key: part.key,
        UploadId: part.uploadId,
        PartNumber: part.partNumber,
        Body: part.bytes,
        ContentLength: part.bytes.length,
        ContentMD5: part.md5.toString('base64'),
        ChecksumCRC32: part.crc32,
      }),
      { abortSignal: part.signal },
    );
    const etag = unquote(answer.ETag);
    if (etag !== part.md5.toString('hex')) return `the server's ETag ${etag} is not the part's MD5 ${part.md5.toString('hex')}`;
    if (answer.ChecksumCRC32 !== undefined && answer.ChecksumCRC32 !== part.crc32) return `the server's CRC32 ${answer.ChecksumCRC32} is not the part's ${part.crc32}`;
    return '';
  } catch (error) {
    // The server refused the bytes it got (Content-MD5 or CRC32 off on the way): send them again.
    const name = (error as { name?: string }).name;
    if (name === 'BadDigest' || name === 'InvalidDigest' || name === 'XAmzContentSHA256Mismatch' || name === 'InvalidRequest') return `the server refused the part (${name})`;
    throw error;
  }
}

/**
 * The recorded parts the server holds, by ListParts; undefined when it knows no such upload.
 * A server without ListParts: the recorded parts, unconfirmed.
 */
async function confirmParts(client: S3Client, bucket: string, state: MultipartState, signal?: AbortSignal): Promise<{ parts: UploadedPart[]; byListParts: boolean } | undefined> {
  const held = new Map<number, { etag: string; size: number }>();
  let marker: string | undefined;
  try {
    for (let page = 0; page < MAX_PARTS / 1000 + 1; page++) {
      const answer = await client.send(new ListPartsCommand({ Bucket: bucket, Key: state.key, UploadId: state.uploadId, ...(marker ? { PartNumberMarker: marker } : {}) }), { abortSignal: signal });
      for (const part of answer.Parts ?? []) if (part.PartNumber !== undefined) held.set(part.PartNumber, { etag: unquote(part.ETag), size: part.Size ?? -1 });
      if (!answer.IsTruncated || !answer.NextPartNumberMarker) break;
      marker = answer.NextPartNumberMarker;
    }
  } catch (error) {
    const { name, $metadata } = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    // Ceph RGW (Pacific, 16.2) answers NoSuchKey (404) for an UploadId it does not know.
    if (name === 'NoSuchUpload' || name === 'NoSuchKey') return undefined;
    if (name === 'NotImplemented' || name === 'MethodNotAllowed' || $metadata?.httpStatusCode === 405 || $metadata?.httpStatusCode === 501) return { parts: state.parts, byListParts: false };
    throw error;
  }
  return { parts: state.parts.filter((part) => held.get(part.partNumber)?.etag === part.md5 && held.get(part.partNumber)?.size === part.size), byListParts: true };
}

async function verifyObject(
  client: S3Client,
  object: { bucket: string; key: string; path: string; fileSize: number; parts: readonly UploadedPart[]; etag: string; crc32?: string; signal?: AbortSignal },
): Promise<void> {
  const { key, parts } = object;
  const head = await client.send(new HeadObjectCommand({ Bucket: object.bucket, Key: key }), { abortSignal: object.signal });
  // Ceph RGW (Pacific, 16.2) answers CompleteMultipartUpload with an empty <ETag/>: the object's own is checked instead.
  const etag = object.etag || unquote(head.ETag);
  const multipartEtag = `${createHash('md5')
    .update(Buffer.concat(parts.map((part) => Buffer.from(part.md5, 'hex'))))
    .digest('hex')}-${parts.length}`;
  // Servers that store a plain MD5 of the whole object (s3rver) answer that instead.
  const wholeMd5 = parts.length === 1 ? parts[0]!.md5 : await fileMd5(object.path);
  if (etag !== multipartEtag && etag !== wholeMd5) {
    throw new OnairError('ONAIR_RECORDING_UPLOAD_FAILED', `the object's ETag ${etag || '(none)'} is neither the parts' (${multipartEtag}) nor the file's MD5 (${wholeMd5})`, { where: key });
  }
  if (object.crc32?.endsWith(`-${parts.length}`)) {
    const composite = `${crc32Base64(Buffer.concat(parts.map((part) => Buffer.from(part.crc32, 'base64'))))}-${parts.length}`;
    if (object.crc32 !== composite) throw new OnairError('ONAIR_RECORDING_UPLOAD_FAILED', `the object's CRC32 ${object.crc32} is not the parts' (${composite})`, { where: key });
  }
  if (head.ContentLength !== object.fileSize) {
    throw new OnairError('ONAIR_RECORDING_UPLOAD_FAILED', `the object holds ${head.ContentLength} bytes, the file ${object.fileSize}`, { where: key });
  }
}

async function fileMd5(path: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
