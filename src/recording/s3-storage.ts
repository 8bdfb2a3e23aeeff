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
 * Credentials are the AWS SDK's default chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
 * a profile, or the instance's role. URLs are presigned GETs valid `presignSeconds` when it
 * is set, else plain object URLs (a public bucket, or a CDN in front of it).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { OnairConfig } from '../config/config-schema.js';
import { OnairError } from '../errors.js';

export type S3StorageConfig = NonNullable<NonNullable<OnairConfig['recordings']['storage']>['s3']>;

/** A GET URL is valid this long when the config asks for none (only to derive the plain URL). */
const URL_DERIVATION_SECONDS = 60;

export class S3RecordingStorage {
  readonly client: S3Client;
  readonly bucket: string;
  private readonly prefix: string;
  private readonly presignSeconds: number | undefined;

  constructor(config: S3StorageConfig, client?: S3Client) {
    this.bucket = config.bucket;
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
    const body = await readFile(path);
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
