/**
 * AES-128 content encryption of a channel's segments and parts (`encryption: aes-128`; RFC 8216
 * §5.2, rfc8216bis §4.4.4.4): each segment is encrypted whole with AES-128-CBC and PKCS7
 * padding, under the key of its MSN's rotation period, and each LL-HLS part on its own with
 * the same key and IV, so a part decrypts alone (hls.js decrypts a part with its segment's
 * key and IV) and the segment, its parts' clear bytes end to end, decrypts whole.
 *
 * Keys: key id = floor(MSN / keyRotationSegments); 16 random bytes made by the writer that
 * first needs them and kept in the store (`putContentKey` keeps the first one written, so a
 * takeover reuses it), with a TTL past every segment that uses them. The IV of a key is its
 * id as a 128-bit big-endian number, written in EXT-X-KEY, so playlists render from the
 * sequence state alone. Keys never reach a log, a metric or an error message.
 * docs/architecture.md, "Content encryption".
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { clearInitSegment, cryptChunkCbcs, decryptChunkCbcs, type CbcBlockCipher, type CbcsProtection } from '../media/cbcs.js';
import type { ContentKeyStore } from '../store/store.js';

/** Segments per key when `keyRotationSegments` is not set. */
export const DEFAULT_KEY_ROTATION_SEGMENTS = 10;
export const AES_128_KEY_BYTES = 16;
/** Keys of this many periods are kept in memory by a writer: the current one and a few before it (a predecessor's open segment). */
const CACHED_KEYS = 4;

/** The key period of a segment. */
export function contentKeyId(msn: number, rotationSegments: number): number {
  return Math.floor(msn / rotationSegments);
}

/** The IV of key `keyId`: the id as a 128-bit big-endian number (RFC 8216 §4.3.2.4 allows any 128-bit IV). */
export function contentKeyIv(keyId: number): Uint8Array {
  const iv = new Uint8Array(16);
  new DataView(iv.buffer).setBigUint64(8, BigInt(keyId));
  return iv;
}

/**
 * The KID of an `encryption: cbcs` channel's key `keyId` (tenc default_KID, DASH cenc:default_KID,
 * the ClearKey license's `kid`): derived from the channel and the key id, so that MPDs and init
 * segments are made from the state alone. A KID names a key and is not secret.
 */
export function cbcsKeyIdOf(channel: string, keyId: number): Uint8Array {
  return Uint8Array.from(createHash('sha256').update(`onair cbcs ${channel} ${keyId}`).digest().subarray(0, 16));
}

/** The protection an `encryption: cbcs` channel's init segment of key period `keyId` carries: its KID and the key's IV. */
export function cbcsProtectionOf(channel: string, keyId: number): CbcsProtection {
  return { keyId: cbcsKeyIdOf(channel, keyId), constantIv: contentKeyIv(keyId) };
}

/** AES-128-CBC with PKCS7 padding (RFC 8216 §4.3.2.4, METHOD=AES-128). */
export function encryptAes128Cbc(bytes: Uint8Array, key: Uint8Array, iv: Uint8Array): Uint8Array {
  const cipher = createCipheriv('aes-128-cbc', key, iv);
  return Buffer.concat([cipher.update(bytes), cipher.final()]);
}

/** The inverse of encryptAes128Cbc; throws when the padding is wrong (a wrong key, cut bytes). */
export function decryptAes128Cbc(bytes: Uint8Array, key: Uint8Array, iv: Uint8Array): Uint8Array {
  const decipher = createDecipheriv('aes-128-cbc', key, iv);
  return Buffer.concat([decipher.update(bytes), decipher.final()]);
}

/** AES-128-CBC without padding, of whole blocks: the cipher src/media/cbcs.ts is given (it keeps node:crypto out of src/media). */
export function aes128CbcBlocks(key: Uint8Array, direction: 'encrypt' | 'decrypt'): CbcBlockCipher {
  return (blocks, iv) => {
    const cipher = direction === 'encrypt' ? createCipheriv('aes-128-cbc', key, iv) : createDecipheriv('aes-128-cbc', key, iv);
    cipher.setAutoPadding(false);
    return Buffer.concat([cipher.update(blocks), cipher.final()]);
  };
}

/**
 * CMAF cbcs of fMP4 chunks (segments and parts alike, each sample on its own from the constant
 * IV, so a segment's parts sealed one by one are the segment sealed whole): the seal and open
 * an `encryption: cbcs` channel's publisher would use with a key and the IV of its init's tenc.
 * docs/architecture.md, "Content encryption".
 */
export function cbcsSealer(keyId: number, key: Uint8Array, constantIv: Uint8Array): SegmentSealer {
  const encrypt = aes128CbcBlocks(key, 'encrypt');
  const decrypt = aes128CbcBlocks(key, 'decrypt');
  return { keyId, seal: (bytes) => cryptChunkCbcs(bytes, constantIv, encrypt), open: (bytes) => cryptChunkCbcs(bytes, constantIv, decrypt) };
}

/** How one segment (and its parts) is encrypted: the key and IV of its period. */
export interface SegmentSealer {
  keyId: number;
  seal(bytes: Uint8Array): Uint8Array;
  open(bytes: Uint8Array): Uint8Array;
}

export interface ContentKeysOptions {
  channel: string;
  store: ContentKeyStore;
  rotationSegments: number;
  /** `aes-128` (the default): segments and parts encrypted whole; `cbcs`: their samples, CMAF cbcs with the key's IV as constant IV. */
  scheme?: 'aes-128' | 'cbcs';
  /** Seconds a new key lives in the store: past the last segment of its period leaving every playlist. */
  ttlSeconds: () => number;
}

/** A writer's keys: made and stored on first use, cached (a few periods) after. */
export class ContentKeys {
  private readonly keys = new Map<number, Uint8Array>();
  /** The segment the last sealer was for: its parts and itself share one store write of the key. */
  private lastMsn: number | undefined;

  constructor(private readonly options: ContentKeysOptions) {}

  /**
   * The sealer of segment `msn`; stores a new key when its period has none. Rejects when the
   * store does. Once per segment a cached key is written again (first write wins, so it changes
   * nothing while stored): a store that lost its data (a Redis restarted without persistence)
   * gets it back before a playlist names it.
   */
  async forSegment(msn: number): Promise<SegmentSealer> {
    const keyId = contentKeyId(msn, this.options.rotationSegments);
    const key = await this.key(keyId, msn !== this.lastMsn);
    this.lastMsn = msn;
    const iv = contentKeyIv(keyId);
    if (this.options.scheme === 'cbcs') return cbcsSealer(keyId, key, iv);
    return { keyId, seal: (bytes) => encryptAes128Cbc(bytes, key, iv), open: (bytes) => decryptAes128Cbc(bytes, key, iv) };
  }

  private async key(keyId: number, reassert: boolean): Promise<Uint8Array> {
    const cached = this.keys.get(keyId);
    if (cached && !reassert) return cached;
    const { channel, store } = this.options;
    // A period spans keyRotationSegments segments: the key must outlive the last of them.
    const ttlSeconds = this.options.ttlSeconds();
    const key = await store.putContentKey(channel, keyId, cached ?? randomBytes(AES_128_KEY_BYTES), ttlSeconds);
    this.keys.delete(keyId);
    this.keys.set(keyId, key);
    for (const old of this.keys.keys()) {
      if (this.keys.size <= CACHED_KEYS) break;
      this.keys.delete(old);
    }
    return key;
  }
}

/** What opening a stored segment or part gave: its clear bytes, or why there are none. */
export type OpenedSegment = { clear: Uint8Array } | { failure: 'key-missing' | 'undecryptable' };

export interface StoredSegmentOpenerOptions {
  channel: string;
  scheme: 'aes-128' | 'cbcs';
  rotationSegments: number;
  /** Where the keys are (the packager's ContentKeyStore); none: every key is missing. */
  keys?: Pick<ContentKeyStore, 'getContentKey'>;
  /** Wraps each key read (a reader's store timeout); default: the read as it is. */
  readKey?: (read: () => Promise<Uint8Array | null>) => Promise<Uint8Array | null>;
}

/**
 * The reading side of an encrypted channel, for what reads its stored segments and parts to
 * use the audio (recordings, progressive mounts): it fetches the key of a segment's period from
 * the store (the packager's, never a new one; a few periods cached) and decrypts the stored
 * bytes, aes-128 whole with PKCS7 and the period's IV, cbcs sample by sample from the period's
 * constant IV, and gives cbcs init segments back clear (`mp4a`, no sinf/pssh). A key that is not
 * in the store, or bytes that do not decrypt, are a failure, never ciphertext passed on; a store
 * failure rejects. docs/architecture.md, "Recordings and mounts of encrypted channels".
 */
export class StoredSegmentOpener {
  private readonly keys = new Map<number, Uint8Array>();

  constructor(private readonly options: StoredSegmentOpenerOptions) {}

  /** Opens the stored bytes of segment `msn` (or of one of its parts). Rejects when the key read does. */
  async open(msn: number, stored: Uint8Array): Promise<OpenedSegment> {
    const keyId = contentKeyId(msn, this.options.rotationSegments);
    const key = await this.key(keyId);
    if (!key) return { failure: 'key-missing' };
    const iv = contentKeyIv(keyId);
    try {
      if (this.options.scheme === 'cbcs') return { clear: decryptChunkCbcs(stored, iv, aes128CbcBlocks(key, 'decrypt')) };
      return { clear: decryptAes128Cbc(stored, key, iv) };
    } catch {
      // Wrong padding (another key, cut bytes) or a malformed chunk: nothing of it is usable.
      return { failure: 'undecryptable' };
    }
  }

  /** The init segment name segment `msn` of run `run` needs: a cbcs channel's has its key period's. */
  initNameKeyId(msn: number): number | undefined {
    return this.options.scheme === 'cbcs' ? contentKeyId(msn, this.options.rotationSegments) : undefined;
  }

  /** The clear init segment of a stored (protected) one; undefined when it cannot be read. */
  clearInit(stored: Uint8Array): Uint8Array | undefined {
    try {
      return clearInitSegment(stored);
    } catch {
      return undefined;
    }
  }

  private async key(keyId: number): Promise<Uint8Array | undefined> {
    const cached = this.keys.get(keyId);
    if (cached) return cached;
    const { keys, channel, readKey = (read) => read() } = this.options;
    if (!keys) return undefined;
    const key = await readKey(() => keys.getContentKey(channel, keyId));
    // A missing key is not kept: it may yet be written (or restored) for a later read.
    if (!key || key.length !== AES_128_KEY_BYTES) return undefined;
    this.keys.set(keyId, key);
    if (this.keys.size > CACHED_KEYS) this.keys.delete(this.keys.keys().next().value!);
    return key;
  }
}
