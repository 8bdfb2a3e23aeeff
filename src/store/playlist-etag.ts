/** A strong ETag for a playlist body: identical on every origin reading the same store. */
import { createHash } from 'node:crypto';

export function playlistEtag(body: string): string {
  return `"${createHash('sha1').update(body).digest('base64url').slice(0, 22)}"`;
}
