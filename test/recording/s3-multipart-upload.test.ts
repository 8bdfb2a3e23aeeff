/**
 * Resumable multipart uploads (src/recording/s3-multipart-upload.ts) against a real
 * S3-compatible server on loopback (s3rver, test/helpers/s3-server.ts): a file goes up in
 * parts and reads back byte for byte; a process SIGKILLed mid-upload is resumed from its
 * saved state and sends only the parts that were missing (counted at the client); a part
 * corrupted on the way (a loopback proxy flips a byte: a fault a real server cannot show on
 * demand) is caught by its MD5 and sent again, a corruption that persists fails the upload,
 * and an object whose ETag is not the file's is refused. s3rver has no ListParts: a proxy in
 * front of it answers ListParts from the parts s3rver confirmed (and can forget one, or the whole
 * upload), so the resume's confirmation runs over real HTTP and the SDK's XML parsing.
 */
import { readFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { MIN_PART_SIZE, uploadFileMultipart, type MultipartState } from '../../src/recording/s3-multipart-upload.js';
import { countingStorage, cutUpload, FILE_SIZE, objectBytes, PARTS, scratchFile, uploadInKilledProcess } from '../helpers/multipart-upload.js';
import { startS3Server, type S3ServerHandle } from '../helpers/s3-server.js';

/** A storage client for `endpoint` (the server, or a proxy to it) that counts what it sends. */
const counting = (t: Test, s3: S3ServerHandle, endpoint = s3.endpoint): ReturnType<typeof countingStorage> => countingStorage(t, { ...s3.config, endpoint });

t.test('a file goes up in parts, each saved as the server confirms it, and reads back byte for byte', async (t) => {
  const s3 = await startS3Server(t, { presignSeconds: 300 });
  const { storage, partRequests } = counting(t, s3);
  const { path, bytes } = await scratchFile(t);
  const saved: MultipartState[] = [];
  const result = await uploadFileMultipart({ client: storage.client, bucket: s3.bucket, key: 'fip/20261121T231500Z.m4a', path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, save: async (state) => void saved.push(state) });
  t.match(result, { size: FILE_SIZE, parts: PARTS, partsSent: PARTS, partsResent: 0 });
  t.same(partRequests, [1, 2, 3, 4]);
  t.same(saved.map((state) => state.parts.length), [0, 1, 2, 3, 4], 'the state is saved once created, then after each part');
  t.ok(saved.every((state) => state.uploadId === saved[0]!.uploadId));
  t.ok((await objectBytes(storage, 'fip/20261121T231500Z.m4a')).equals(bytes));
});

t.test('a process killed mid-upload is resumed: only the parts missing from its saved state are sent', async (t) => {
  const s3 = await startS3Server(t);
  const { dir, path, bytes } = await scratchFile(t);
  const statePath = join(dir, 'state.json');
  // The uploader in a process of its own, SIGKILLed while the part after the second is on its way.
  const { code, signal, output } = await uploadInKilledProcess(s3.config, 'fip/killed.m4a', path, statePath);
  t.equal(signal, 'SIGKILL', `the uploader was killed (${code}: ${output.slice(-400)})`);
  t.notMatch(output, /finished/);
  const state = JSON.parse(await readFile(statePath, 'utf8')) as MultipartState;
  t.ok(state.parts.length >= 2 && state.parts.length < PARTS, `the killed run saved ${state.parts.length} of ${PARTS} parts`);

  const { storage, partRequests } = counting(t, s3);
  const result = await uploadFileMultipart({ client: storage.client, bucket: s3.bucket, key: 'fip/killed.m4a', path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, state, save: async () => undefined });
  const missing = Array.from({ length: PARTS }, (_, index) => index + 1).filter((partNumber) => !state.parts.some((part) => part.partNumber === partNumber));
  t.same(partRequests, missing, `only the missing parts were sent: ${missing.join(', ')}`);
  t.equal(result.partsSent, missing.length);
  t.equal(result.confirmedByListParts, false, 's3rver has no ListParts: the saved state is trusted');
  t.ok((await objectBytes(storage, 'fip/killed.m4a')).equals(bytes), 'the object is the whole file');
});

/** A loopback proxy to the server that flips a byte of the first `corruptions` bodies of part 2 (−1: all), or rewrites the completed object's ETag. */
async function corruptingProxy(t: Test, target: string, fault: { corruptPart2?: number; wrongObjectEtag?: boolean }): Promise<string> {
  let left = fault.corruptPart2 ?? 0;
  const server = createServer((incoming: IncomingMessage, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      let body = Buffer.concat(chunks);
      const url = new URL(incoming.url!, 'http://proxy');
      if (incoming.method === 'PUT' && url.searchParams.get('partNumber') === '2' && left !== 0) {
        left -= 1;
        body = Buffer.from(body);
        body[1000] = body[1000]! ^ 0xff;
      }
      const forward = httpRequest(`${target}${incoming.url}`, { method: incoming.method, headers: incoming.headers }, (answer) => {
        const answerChunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => answerChunks.push(chunk));
        answer.on('end', () => {
          let answerBody = Buffer.concat(answerChunks);
          if (fault.wrongObjectEtag && incoming.method === 'POST' && url.searchParams.has('uploadId')) {
            answerBody = Buffer.from(answerBody.toString().replace(/<ETag>[^<]*<\/ETag>/, '<ETag>&quot;00000000000000000000000000000000&quot;</ETag>'));
          }
          const headers = incoming.method === 'HEAD' ? answer.headers : { ...answer.headers, 'content-length': String(answerBody.length) };
          outgoing.writeHead(answer.statusCode ?? 502, headers).end(answerBody);
        });
      });
      forward.on('error', () => outgoing.destroy());
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('a part corrupted on the way is caught by its checksum and sent again', async (t) => {
  const s3 = await startS3Server(t);
  const proxy = await corruptingProxy(t, s3.endpoint, { corruptPart2: 1 });
  const { storage, partRequests } = counting(t, s3, proxy);
  const { path, bytes } = await scratchFile(t);
  const result = await uploadFileMultipart({ client: storage.client, bucket: s3.bucket, key: 'fip/corrupted.m4a', path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, save: async () => undefined });
  t.equal(result.partsResent, 1);
  t.same(partRequests.filter((partNumber) => partNumber === 2).length >= 2, true, 'part 2 went twice');
  t.ok((await objectBytes(storage, 'fip/corrupted.m4a')).equals(bytes), 'the object holds the right bytes');
});

t.test('a corruption that persists fails the upload with ONAIR_RECORDING_UPLOAD_FAILED, and so does an object that is not the file', async (t) => {
  const s3 = await startS3Server(t);
  const { path } = await scratchFile(t);
  const always = await corruptingProxy(t, s3.endpoint, { corruptPart2: -1 });
  const { storage } = counting(t, s3, always);
  let saved: MultipartState | undefined;
  await t.rejects(
    uploadFileMultipart({ client: storage.client, bucket: s3.bucket, key: 'fip/bad.m4a', path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, attempts: 2, save: async (state) => void (saved = state) }),
    { code: 'ONAIR_RECORDING_UPLOAD_FAILED' },
  );
  t.equal(saved?.parts.length, 1, 'the confirmed part is kept for the next run');
  const wrongEtag = await corruptingProxy(t, s3.endpoint, { wrongObjectEtag: true });
  const { storage: second } = counting(t, s3, wrongEtag);
  await t.rejects(
    uploadFileMultipart({ client: second.client, bucket: s3.bucket, key: 'fip/other.m4a', path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, save: async () => undefined }),
    { code: 'ONAIR_RECORDING_UPLOAD_FAILED' },
  );
});

t.test('a small file goes in one PUT, its MD5 checked', async (t) => {
  const s3 = await startS3Server(t, { prefix: 'radio/' });
  const { storage } = counting(t, s3);
  const { path, bytes } = await scratchFile(t, 300);
  const key = storage.keyOf('fip', '20261121T231500Z', 'cue');
  t.equal(key, 'radio/fip/20261121T231500Z.cue');
  await storage.putSmallFile(key, path, 'application/x-cue');
  t.ok((await objectBytes(storage, key)).equals(bytes));
  t.notMatch(await storage.urlOf(key), /X-Amz-Signature/, 'without presignSeconds, the plain object URL');
});

/** A loopback proxy to the server that answers ListParts itself, from the UploadPart answers it saw (`held`); `gone`: NoSuchUpload. */
async function listPartsProxy(t: Test, target: string): Promise<{ url: string; held: Map<number, { etag: string; size: number }>; listed: number[]; gone: { value: boolean } }> {
  const held = new Map<number, { etag: string; size: number }>();
  const listed: number[] = [];
  const gone = { value: false };
  const server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(incoming.url!, 'http://proxy');
      const uploadId = url.searchParams.get('uploadId');
      if (incoming.method === 'GET' && uploadId) {
        listed.push(held.size);
        if (gone.value) {
          outgoing.writeHead(404, { 'content-type': 'application/xml' }).end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>');
          return;
        }
        const parts = [...held].sort(([a], [b]) => a - b).map(([partNumber, part]) => `<Part><PartNumber>${partNumber}</PartNumber><ETag>&quot;${part.etag}&quot;</ETag><Size>${part.size}</Size></Part>`);
        outgoing
          .writeHead(200, { 'content-type': 'application/xml' })
          .end(`<?xml version="1.0" encoding="UTF-8"?><ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><UploadId>${uploadId}</UploadId><IsTruncated>false</IsTruncated>${parts.join('')}</ListPartsResult>`);
        return;
      }
      const forward = httpRequest(`${target}${incoming.url}`, { method: incoming.method, headers: incoming.headers }, (answer) => {
        const partNumber = Number(url.searchParams.get('partNumber'));
        if (incoming.method === 'PUT' && partNumber > 0 && answer.statusCode === 200) held.set(partNumber, { etag: String(answer.headers.etag).replace(/"/g, ''), size: body.length });
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      });
      forward.on('error', () => outgoing.destroy());
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, held, listed, gone };
}


t.test('a resumed upload asks ListParts and sends again a recorded part the server does not hold', async (t) => {
  const s3 = await startS3Server(t);
  const proxy = await listPartsProxy(t, s3.endpoint);
  const { storage, partRequests } = counting(t, s3, proxy.url);
  const { path, bytes } = await scratchFile(t);
  const state = await cutUpload(storage, s3.bucket, 'fip/listed.m4a', path, 2);
  t.equal(state.parts.length, 2);
  proxy.held.delete(2);
  partRequests.length = 0;
  const result = await uploadFileMultipart({ client: storage.client, bucket: s3.bucket, key: 'fip/listed.m4a', path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, state, save: async () => undefined });
  t.equal(result.confirmedByListParts, true);
  t.same(proxy.listed, [1], 'ListParts was asked once, and listed part 1 only');
  t.same(partRequests, [2, 3, 4], 'part 2, recorded but not held, went again');
  t.ok((await objectBytes(storage, 'fip/listed.m4a')).equals(bytes));
});

t.test('an upload the server no longer knows (NoSuchUpload) starts again from part 1', async (t) => {
  const s3 = await startS3Server(t);
  const proxy = await listPartsProxy(t, s3.endpoint);
  const { storage, partRequests } = counting(t, s3, proxy.url);
  const { path, bytes } = await scratchFile(t);
  const state = await cutUpload(storage, s3.bucket, 'fip/forgotten.m4a', path, 2);
  proxy.gone.value = true;
  partRequests.length = 0;
  const saved: MultipartState[] = [];
  await uploadFileMultipart({ client: storage.client, bucket: s3.bucket, key: 'fip/forgotten.m4a', path, contentType: 'audio/mp4', partSize: MIN_PART_SIZE, state, save: async (next) => void saved.push(next) });
  t.same(partRequests, [1, 2, 3, 4]);
  t.not(saved[0]!.uploadId, state.uploadId, 'a new upload');
  t.ok((await objectBytes(storage, 'fip/forgotten.m4a')).equals(bytes));
});
