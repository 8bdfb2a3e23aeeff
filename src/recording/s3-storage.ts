/**
 * Finished recordings in S3-compatible object storage (docs/architecture.md, "Recordings in object storage"),
 * when `recordings.storage.s3` is set: the bucket, the keys, the URLs, and the uploads of one
 * session's files. Local disk stays where sessions are recorded and stitched; the bucket is
 * where the checked `.m4a` and its cue sheet go after the stitch, so an origin on another
 * host serves them without a shared disk.
 *
 *   {prefix}{channel}/{session}.m4a   multipart, resumable (s3-multipart-upload.ts)
 *   {prefix}{channel}/{session}.cue   one PUT, Content-MD5 and CRC32 checked
 *
 * With `mirrorSegments` (docs/architecture.md, "Mirrored segments"), the recording leader also
 * mirrors each session's files as it records them (segment-mirror.ts):
 *
 *   {prefix}{channel}/{session}/{msn}.ts | {msn}.m4s | init-{run}.mp4   one PUT each, MD5 checked
 *   {prefix}{channel}/{session}/index-{offset}.jsonl                    the index, in chunks by byte offset
 *   {prefix}{channel}/{session}/index.jsonl                             the whole index, once stitched (keepSegments)
 *
 * Credentials are the AWS SDK's default chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
 * a profile, or the instance's role. URLs are presigned GETs valid `presignSeconds` when it
 * is set, else plain object URLs (a public bucket, or a CDN in front of it).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { OnairConfig } from '../config/config-schema.js';
import { OnairError } from '../errors.js';

type S3Config = NonNullable<NonNullable<OnairConfig['recordings']['storage']>['s3']>;
/** `recordings.storage.s3` (`mirrorSegments` may be left out: off). */
export type S3StorageConfig = Omit<S3Config, 'mirrorSegments'> & { mirrorSegments?: boolean };

/** Pages of a listing read at most (1,000 keys each): a session's objects are far fewer. */
const MAX_LIST_PAGES = 200;
/** Deletes sent at once when a session's mirrored objects go. */
const DELETE_CONCURRENCY = 8;

/** A GET URL is valid this long when the config asks for none (only to derive the plain URL). */
const URL_DERIVATION_SECONDS = 60;

export class S3RecordingStorage {
  readonly client: S3Client;
  readonly bucket: string;
  private readonly prefix: string;
  private readonly presignSeconds: number | undefined;
  /** recordings.storage.s3.mirrorSegments: sessions' segments and indexes are mirrored as they are recorded. */
  readonly mirrorSegments: boolean;

  constructor(config: S3StorageConfig, client?: S3Client) {
    this.bucket = config.bucket;
    this.mirrorSegments = config.mirrorSegments ?? false;
    this.prefix = config.prefix;
    this.presignSeconds = config.presignSeconds;
    this.client =
      client ??
      new S3Client({
        region: config.region,
        forcePathStyle: config.forcePathStyle,
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
        // onair computes and sends each part's checksums itself (s3-multipart-upload.ts).
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
  }

  /** `{prefix}{channel}/{session}.{extension}` */
  keyOf(channel: string, session: string, extension: 'm4a' | 'cue'): string {
    return `${this.prefix}${channel}/${session}.${extension}`;
  }

  /** Where a session's mirrored files go: `{prefix}{channel}/{session}/` (ends with "/"). */
  sessionPrefix(channel: string, session: string): string {
    return `${this.prefix}${channel}/${session}/`;
  }

  /** How long URLs are valid: undefined for plain object URLs. */
  get presignExpirySeconds(): number | undefined {
    return this.presignSeconds;
  }

  /** Where a client GETs the object: presigned for `presignSeconds`, or the plain object URL. */
  async urlOf(key: string): Promise<string> {
    const url = await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: this.presignSeconds ?? URL_DERIVATION_SECONDS });
    if (this.presignSeconds !== undefined) return url;
    // The SDK resolves the endpoint, the path or virtual-host style and the key's escaping; the query is the signature.
    const plain = new URL(url);
    plain.search = '';
    return plain.toString();
  }

  /** One small file in one PUT, its MD5 checked by the server (Content-MD5) and by its answer (the ETag). */
  async putSmallFile(key: string, path: string, contentType: string, signal?: AbortSignal): Promise<void> {
    await this.putBytes(key, await readFile(path), contentType, signal);
  }

  /** Bytes in one PUT, checked as putSmallFile's. */
  async putBytes(key: string, body: Buffer, contentType: string, signal?: AbortSignal): Promise<void> {
    const md5 = createHash('md5').update(body).digest();
    const response = await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: contentType,
        ContentLength: body.length,
        ContentMD5: md5.toString('base64'),
        ChecksumCRC32: crc32Base64(body),
      }),
      { abortSignal: signal },
    );
    const etag = unquote(response.ETag);
    if (etag !== md5.toString('hex')) {
      throw new OnairError('ONAIR_RECORDING_UPLOAD_FAILED', `the server stored ${key} with ETag ${etag}, not the MD5 of the file (${md5.toString('hex')})`, { where: key });
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** An object's bytes; undefined when there is no such object. One larger than `maxBytes` is an error. */
  async getBytes(key: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer | undefined> {
    let answer;
    try {
      answer = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal });
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchKey' || (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw error;
    }
    if (answer.ContentLength !== undefined && answer.ContentLength > maxBytes) {
      await answer.Body?.transformToWebStream().cancel();
      throw new OnairError('ONAIR_RECORDING_BUCKET_UNREADABLE', `${key} holds ${answer.ContentLength} bytes, more than ${maxBytes}`, { where: key });
    }
    const bytes = Buffer.from((await answer.Body?.transformToByteArray()) ?? new Uint8Array());
    if (bytes.length > maxBytes) throw new OnairError('ONAIR_RECORDING_BUCKET_UNREADABLE', `${key} holds more than ${maxBytes} bytes`, { where: key });
    return bytes;
  }

  /** The keys under `prefix`, sorted (at most MAX_LIST_PAGES pages). */
  async listKeys(prefix: string, signal?: AbortSignal): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const answer = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }), { abortSignal: signal });
      for (const object of answer.Contents ?? []) if (object.Key) keys.push(object.Key);
      if (!answer.IsTruncated || !answer.NextContinuationToken) break;
      token = answer.NextContinuationToken;
    }
    return keys.sort();
  }

  /** Deletes every object under `prefix`; resolves with how many. */
  async deletePrefix(prefix: string, signal?: AbortSignal): Promise<number> {
    const keys = await this.listKeys(prefix, signal);
    for (let first = 0; first < keys.length; first += DELETE_CONCURRENCY) {
      await Promise.all(keys.slice(first, first + DELETE_CONCURRENCY).map((key) => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal })));
    }
    return keys.length;
  }

  close(): void {
    this.client.destroy();
  }
}

/** The storage the config asks for, or undefined (local disk only: the default). */
export function s3StorageFor(config: OnairConfig): S3RecordingStorage | undefined {
  const s3 = config.recordings.storage?.s3;
  return s3 ? new S3RecordingStorage(s3) : undefined;
}

/** CRC32 of `bytes`, big-endian, in base64: the form of S3's `x-amz-checksum-crc32`. */
export function crc32Base64(bytes: Uint8Array): string {
  const value = Buffer.alloc(4);
  value.writeUInt32BE(crc32(bytes) >>> 0);
  return value.toString('base64');
}

export function unquote(etag: string | undefined): string {
  return (etag ?? '').replace(/"/g, '');
}
