/**
 * Key rings: the key-encryption keys that wrap each run's data key, by id. A ring is checked once
 * when a manager is built, so a key of the wrong length or an active id the ring lacks fails at
 * construction, not at the first write. Keys are never put in error messages.
 */
import { InvalidArgumentError } from "../core/errors.js";
import { isValidName } from "../core/ids.js";
import { assertKnownOptions } from "../core/options.js";

/** Bytes of an AES-256 key. */
export const KEY_BYTES = 32;

/** What `encryption` accepts: key-encryption keys by id (32 bytes, or their base64), and the one new data keys are wrapped with. */
export interface EncryptionOptions {
  /** Key-encryption keys by key id: 32 bytes each, as a Uint8Array or base64 text. */
  keys: Record<string, Uint8Array | string>;
  /** The key new runs' data keys are wrapped with; must be in `keys`. */
  activeKeyId: string;
}

/** A checked key ring. */
export interface KeyRing {
  readonly activeKeyId: string;
  /** The key-encryption key with this id; undefined when the ring lacks it. */
  get(keyId: string): Buffer | undefined;
  /** Every key id, sorted. */
  readonly ids: readonly string[];
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes one key, checking its length; the message names the key id, never the key. */
export function keyBytes(keyId: string, key: unknown, where = "encryption.keys"): Buffer {
  let bytes: Buffer;
  if (key instanceof Uint8Array) bytes = Buffer.from(key);
  else if (typeof key === "string") {
    const text = key.trim();
    if (!BASE64.test(text) || text.length % 4 !== 0)
      throw new InvalidArgumentError(`${where}.${keyId} is not base64 text`);
    bytes = Buffer.from(text, "base64");
  } else
    throw new InvalidArgumentError(`${where}.${keyId} must be 32 bytes (a Uint8Array) or their base64 text`);
  if (bytes.length !== KEY_BYTES)
    throw new InvalidArgumentError(
      `${where}.${keyId} is ${bytes.length} bytes long; an AES-256 key is ${KEY_BYTES} bytes`,
    );
  return bytes;
}

/** Checks `encryption` options and builds the ring; `InvalidArgumentError` for anything wrong. */
export function createKeyRing(options: unknown): KeyRing {
  if (options === null || typeof options !== "object" || Array.isArray(options))
    throw new InvalidArgumentError("encryption must be an object: { keys: { [keyId]: key }, activeKeyId }");
  assertKnownOptions("encryption", options as object, ["keys", "activeKeyId"]);
  const { keys, activeKeyId } = options as Partial<EncryptionOptions>;
  if (keys === null || typeof keys !== "object" || Array.isArray(keys))
    throw new InvalidArgumentError("encryption.keys must be an object of key id → 32-byte key");
  const ring = new Map<string, Buffer>();
  for (const [id, key] of Object.entries(keys)) {
    if (!isValidName(id))
      throw new InvalidArgumentError(
        `encryption key id ${JSON.stringify(id)} is not a valid name (letters, digits, '.', '_', '-')`,
      );
    ring.set(id, keyBytes(id, key));
  }
  if (ring.size === 0) throw new InvalidArgumentError("encryption.keys holds no key");
  if (typeof activeKeyId !== "string" || !ring.has(activeKeyId))
    throw new InvalidArgumentError(
      `encryption.activeKeyId must name one of the keys (${[...ring.keys()].join(", ")}), got ${JSON.stringify(activeKeyId)}`,
    );
  const ids = [...ring.keys()].sort();
  return { activeKeyId, ids, get: (keyId) => ring.get(keyId) };
}
