/**
 * Resumable multipart uploads (src/recording/s3-multipart-upload.ts) against Ceph's object
 * gateway (test/helpers/ceph-rgw.ts), a server that implements ListParts and checks Content-MD5,
 * which s3rver does not: the resume after a SIGKILL is confirmed by the server's own ListParts; a
 * part the server holds with other bytes, and an upload the server aborted, are found out by it;
 * a part corrupted on the way is refused by the server (BadDigest) and sent again. RGW Pacific
 * answers CompleteMultipartUpload with an empty ETag: the object's (HeadObject) is checked. The
 * cue sheet's single PUT, ranged reads by presigned URL and deletes run against it too.
 * One RGW for the whole file (1.5 to 2.5 s to start; the file takes about 12 s here).
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { AbortMultipartUploadCommand, ListPartsCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import t, { type Test } from 'tap';
import { MIN_PART_SIZE, uploadFileMultipart, type MultipartState } from '../../src/recording/s3-multipart-upload.js';
import { startCephRgw, type CephRgwHandle } from '../helpers/ceph-rgw.js';
import { countingStorage, cutUpload, FILE_SIZE, objectBytes, PARTS, scratchFile, uploadInKilledProcess } from '../helpers/multipart-upload.js';

const rgw: CephRgwHandle = await startCephRgw(t);
t.comment(`Ceph RGW answered and its bucket was made ${rgw.startMs} ms after the first command`);

/** A storage client for `endpoint` (RGW, or a proxy to it) that counts what it sends. */
const counting = (t: Test, endpoint = rgw.endpoint): ReturnType<typeof countingStorage> => countingStorage(t, { ...rgw.config, endpoint, presignSeconds: 300 });

t.test('a file goes up in parts and reads back byte for byte, its ETag checked on the object when the completion gives none', async (t) => {
  const { storage, partRequests, completedEtags } = counting(t);
  const { path, bytes } = await scratchFile(t);
  const result = await uploadFileMultipart({ client: storage.client, bucket: rgw.bucket, key: 'fip/whole.m4a', path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, save: async () => undefined });
  t.match(result, { size: FILE_SIZE, parts: PARTS, partsSent: PARTS, partsResent: 0 });
  t.same(partRequests, [1, 2, 3, 4]);
  t.comment(`CompleteMultipartUpload's ETag: ${JSON.stringify(completedEtags[0] ?? '')}`);
  t.ok((await objectBytes(storage, 'fip/whole.m4a')).equals(bytes));
});

t.test('a process killed mid-upload is resumed: the server\'s ListParts confirms the saved parts and only the others are sent', async (t) => {
  const { dir, path, bytes } = await scratchFile(t);
  const statePath = join(dir, 'state.json');
  const { code, signal, output } = await uploadInKilledProcess(rgw.config, 'fip/killed.m4a', path, statePath);
  t.equal(signal, 'SIGKILL', `the uploader was killed (${code}: ${output.slice(-400)})`);
  const state = JSON.parse(await readFile(statePath, 'utf8')) as MultipartState;
  t.ok(state.parts.length >= 2 && state.parts.length < PARTS, `the killed run saved ${state.parts.length} of ${PARTS} parts`);

  const { storage, partRequests } = counting(t);
  const listed = await storage.client.send(new ListPartsCommand({ Bucket: rgw.bucket, Key: 'fip/killed.m4a', UploadId: state.uploadId }));
  t.same(listed.Parts?.map((part) => part.PartNumber), state.parts.map((part) => part.partNumber), 'the server lists the saved parts');
  const result = await uploadFileMultipart({ client: storage.client, bucket: rgw.bucket, key: 'fip/killed.m4a', path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, state, save: async () => undefined });
  const missing = Array.from({ length: PARTS }, (_, index) => index + 1).filter((partNumber) => !state.parts.some((part) => part.partNumber === partNumber));
  t.equal(result.confirmedByListParts, true, 'confirmed by the server\'s ListParts');
  t.same(partRequests, missing, `only the missing parts were sent: ${missing.join(', ')}`);
  t.ok((await objectBytes(storage, 'fip/killed.m4a')).equals(bytes), 'the object is the whole file');
});

t.test('a saved part the server holds with other bytes is found by ListParts and sent again', async (t) => {
  const { storage, partRequests } = counting(t);
  const { path, bytes } = await scratchFile(t);
  const state = await cutUpload(storage, rgw.bucket, 'fip/replaced.m4a', path, 2);
  t.equal(state.parts.length, 2);
  // Another writer (a split-brain leader, a bug) puts other bytes in part 2 of the same upload.
  const other = randomBytes(MIN_PART_SIZE);
  await storage.client.send(new UploadPartCommand({ Bucket: rgw.bucket, Key: 'fip/replaced.m4a', UploadId: state.uploadId, PartNumber: 2, Body: other, ContentLength: other.length }));
  partRequests.length = 0;
  const result = await uploadFileMultipart({ client: storage.client, bucket: rgw.bucket, key: 'fip/replaced.m4a', path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, state, save: async () => undefined });
  t.equal(result.confirmedByListParts, true);
  t.same(partRequests, [2, 3, 4], 'part 2, held with other bytes, went again');
  t.ok((await objectBytes(storage, 'fip/replaced.m4a')).equals(bytes));
});

t.test('an upload the server aborted (NoSuchUpload) starts again from part 1', async (t) => {
  const { storage, partRequests } = counting(t);
  const { path, bytes } = await scratchFile(t);
  const state = await cutUpload(storage, rgw.bucket, 'fip/aborted.m4a', path, 2);
  await storage.client.send(new AbortMultipartUploadCommand({ Bucket: rgw.bucket, Key: 'fip/aborted.m4a', UploadId: state.uploadId }));
  partRequests.length = 0;
  const saved: MultipartState[] = [];
  const result = await uploadFileMultipart({ client: storage.client, bucket: rgw.bucket, key: 'fip/aborted.m4a', path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, state, save: async (next) => void saved.push(next) });
  t.equal(result.confirmedByListParts, false);
  t.same(partRequests, [1, 2, 3, 4]);
  t.not(saved[0]!.uploadId, state.uploadId, 'a new upload');
  t.ok((await objectBytes(storage, 'fip/aborted.m4a')).equals(bytes));
});

/** A loopback proxy to RGW that flips a byte in the first `corruptions` bodies of part 2 (−1: all). */
async function corruptingProxy(t: Test, corruptions: number): Promise<{ url: string; refused: number[] }> {
  let left = corruptions;
  const refused: number[] = [];
  const server = createServer((incoming: IncomingMessage, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      let body = Buffer.concat(chunks);
      const corrupt = incoming.method === 'PUT' && new URL(incoming.url!, 'http://proxy').searchParams.get('partNumber') === '2' && left !== 0;
      if (corrupt) {
        left -= 1;
        body = Buffer.from(body);
        body[1000] = body[1000]! ^ 0xff;
      }
      const forward = httpRequest(`${rgw.endpoint}${incoming.url}`, { method: incoming.method, headers: incoming.headers }, (answer) => {
        if (corrupt) refused.push(answer.statusCode ?? 0);
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      });
      forward.on('error', () => outgoing.destroy());
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, refused };
}

t.test('a part corrupted on the way is refused by the server (Content-MD5) and sent again; a corruption that persists fails the upload', async (t) => {
  const { path, bytes } = await scratchFile(t);
  const single = await corruptingProxy(t, 1);
  const { storage, partRequests } = counting(t, single.url);
  const result = await uploadFileMultipart({ client: storage.client, bucket: rgw.bucket, key: 'fip/corrupted.m4a', path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, save: async () => undefined });
  t.same(single.refused, [400], 'RGW refused the corrupted body');
  t.equal(result.partsResent, 1);
  t.same(partRequests, [1, 2, 2, 3, 4]);
  t.ok((await objectBytes(storage, 'fip/corrupted.m4a')).equals(bytes), 'the object holds the right bytes');

  const always = await corruptingProxy(t, -1);
  const { storage: second } = counting(t, always.url);
  let saved: MultipartState | undefined;
  await t.rejects(
    uploadFileMultipart({ client: second.client, bucket: rgw.bucket, key: 'fip/bad.m4a', path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, attempts: 2, save: async (state) => void (saved = state) }),
    { code: 'ONAIR_RECORDING_UPLOAD_FAILED' },
  );
  t.same(always.refused, [400, 400]);
  t.equal(saved?.parts.length, 1, 'the confirmed part is kept for the next run');
});

t.test('a cue sheet goes in one PUT with its MD5 checked, a presigned URL serves ranges, and delete removes the objects', async (t) => {
  const { storage } = counting(t);
  const { dir, path, bytes } = await scratchFile(t);
  const cuePath = join(dir, 'session.cue');
  await writeFile(cuePath, 'FILE "session.m4a" MP4\n  TRACK 01 AUDIO\n    INDEX 01 00:00:00\n');
  await storage.putSmallFile('fip/sheet.cue', cuePath, 'application/x-cue');
  t.equal((await objectBytes(storage, 'fip/sheet.cue')).toString(), await readFile(cuePath, 'utf8'));
  await uploadFileMultipart({ client: storage.client, bucket: rgw.bucket, key: 'fip/ranged.m4a', path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, save: async () => undefined });
  // A range across the boundary of parts 1 and 2, as a player seeking would ask.
  const ranged = await fetch(await storage.urlOf('fip/ranged.m4a'), { headers: { range: `bytes=${MIN_PART_SIZE - 100}-${MIN_PART_SIZE + 99}` } });
  t.equal(ranged.status, 206);
  t.ok(Buffer.from(await ranged.arrayBuffer()).equals(bytes.subarray(MIN_PART_SIZE - 100, MIN_PART_SIZE + 100)));
  await storage.delete('fip/sheet.cue');
  await storage.delete('fip/ranged.m4a');
  t.equal((await fetch(await storage.urlOf('fip/ranged.m4a'))).status, 404);
  t.equal((await fetch(await storage.urlOf('fip/sheet.cue'))).status, 404);
});
