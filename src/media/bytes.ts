/** Small byte-buffer helpers shared by the parsers in this folder. */

export const EMPTY_BYTES = new Uint8Array(0);

/** A new array holding `head` then `tail`. */
export function concatBytes(head: Uint8Array, tail: Uint8Array): Uint8Array {
  const joined = new Uint8Array(head.length + tail.length);
  joined.set(head, 0);
  joined.set(tail, head.length);
  return joined;
}
