/**
 * A run's data key and its key record. Each run gets its own random 32-byte data key; the store
 * holds it only wrapped (AES-256-GCM) by a key-encryption key of the ring, with that key's id, so
 * rotating the key-encryption key re-wraps one small record per run and never rewrites data, and
 * destroying the record makes every copy of the run's ciphertext unreadable.
 *
 * The record encryption key and the output address key are derived from the data key with
 * HKDF-SHA-256 under different labels: one secret, two independent uses.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from "node:crypto";
import { CheckpointCorruptError, KeyMissingError } from "../core/errors.js";
import type { KeyRing } from "./keys.js";

const WRAP_ALGORITHM = "A256GCM";
const IV_BYTES = 12;
/** Bytes of an AES-GCM authentication tag. */
export const TAG_BYTES = 16;

/** The stored key record of a run (JSON text in the store). */
interface KeyRecord {
  v: 1;
  /** Data key id: records name it, so a replaced data key is told from a wrong one. */
  id: string;
  /** Id of the key-encryption key that wraps it. */
  kek: string;
  a: typeof WRAP_ALGORITHM;
  n: string;
  /** The wrapped data key and its tag, base64. */
  w: string;
}

/** A run's data key, unwrapped, with the keys derived from it. */
export interface DataKey {
  readonly pipelineId: string;
  readonly id: string;
  /** The key-encryption key that wraps it in the store. */
  readonly kekId: string;
  /** The stored key record text this key came from (the compare-and-set value of a re-wrap). */
  readonly record: string;
  /** AES-256-GCM key of records and outputs. */
  readonly recordKey: Buffer;
  /** HMAC-SHA-256 key of output content addresses. */
  readonly addressKey: Buffer;
}

function wrapAad(pipelineId: string, dataKeyId: string, kekId: string): Buffer {
  return Buffer.from(`cairn-data-key/1\0${pipelineId}\0${dataKeyId}\0${kekId}`);
}

function derive(secret: Buffer, label: string): Buffer {
  return Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), `cairn ${label} v1`, 32));
}

function fromSecret(pipelineId: string, id: string, kekId: string, record: string, secret: Buffer): DataKey {
  return {
    pipelineId,
    id,
    kekId,
    record,
    recordKey: derive(secret, "record encryption"),
    addressKey: derive(secret, "output address"),
  };
}

function wrapSecret(pipelineId: string, id: string, kekId: string, kek: Buffer, secret: Buffer): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", kek, iv);
  cipher.setAAD(wrapAad(pipelineId, id, kekId));
  const wrapped = Buffer.concat([cipher.update(secret), cipher.final(), cipher.getAuthTag()]);
  const record: KeyRecord = {
    v: 1,
    id,
    kek: kekId,
    a: WRAP_ALGORITHM,
    n: iv.toString("base64"),
    w: wrapped.toString("base64"),
  };
  return JSON.stringify(record);
}

/** A new random data key for a run, wrapped under the ring's active key. */
export function newDataKey(pipelineId: string, ring: KeyRing): DataKey {
  const secret = randomBytes(32);
  const id = randomBytes(8).toString("hex");
  const kek = ring.get(ring.activeKeyId) as Buffer;
  const record = wrapSecret(pipelineId, id, ring.activeKeyId, kek, secret);
  return fromSecret(pipelineId, id, ring.activeKeyId, record, secret);
}

/** Parses a stored key record; `CheckpointCorruptError` when it is not one. */
export function parseKeyRecord(pipelineId: string, text: string): KeyRecord {
  let parsed: Partial<KeyRecord>;
  try {
    parsed = JSON.parse(text) as Partial<KeyRecord>;
  } catch (error) {
    throw new CheckpointCorruptError(undefined, `the key record of run ${pipelineId} is not JSON`, {
      cause: error,
    });
  }
  const ok =
    parsed !== null &&
    typeof parsed === "object" &&
    parsed.v === 1 &&
    parsed.a === WRAP_ALGORITHM &&
    typeof parsed.id === "string" &&
    typeof parsed.kek === "string" &&
    typeof parsed.n === "string" &&
    typeof parsed.w === "string";
  if (!ok) throw new CheckpointCorruptError(undefined, `the key record of run ${pipelineId} is malformed`);
  return parsed as KeyRecord;
}

/** The key-encryption key id a stored key record names, without unwrapping it. */
export function keyRecordKekId(pipelineId: string, text: string): string {
  return parseKeyRecord(pipelineId, text).kek;
}

function unwrapSecret(pipelineId: string, record: KeyRecord, ring: KeyRing): Buffer {
  const kek = ring.get(record.kek);
  if (!kek) throw new KeyMissingError(record.kek, "key-encryption-key", `The data key of run ${pipelineId}`);
  const wrapped = Buffer.from(record.w, "base64");
  try {
    const decipher = createDecipheriv("aes-256-gcm", kek, Buffer.from(record.n, "base64"));
    decipher.setAAD(wrapAad(pipelineId, record.id, record.kek));
    decipher.setAuthTag(wrapped.subarray(wrapped.length - TAG_BYTES));
    return Buffer.concat([
      decipher.update(wrapped.subarray(0, wrapped.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch (error) {
    throw new CheckpointCorruptError(
      undefined,
      `the data key of run ${pipelineId} does not unwrap with key ${record.kek}: the key record or the key is wrong`,
      { cause: error },
    );
  }
}

/** Unwraps a run's stored key record with the ring; `KeyMissingError` when the ring lacks its key. */
export function openDataKey(pipelineId: string, text: string, ring: KeyRing): DataKey {
  const record = parseKeyRecord(pipelineId, text);
  return fromSecret(pipelineId, record.id, record.kek, text, unwrapSecret(pipelineId, record, ring));
}

/** The same data key wrapped under another key-encryption key: the new key record text. */
export function rewrapDataKey(pipelineId: string, text: string, ring: KeyRing, toKeyId: string): string {
  const record = parseKeyRecord(pipelineId, text);
  const secret = unwrapSecret(pipelineId, record, ring);
  const kek = ring.get(toKeyId);
  if (!kek) throw new KeyMissingError(toKeyId, "key-encryption-key", "The key to rotate to");
  return wrapSecret(pipelineId, record.id, toKeyId, kek, secret);
}

/** An output's keyed content address: HMAC-SHA-256 under the run's address key, hex. */
export function keyedAddress(key: DataKey, text: string): string {
  return createHmac("sha256", key.addressKey).update(text).digest("hex");
}

/**
 * How `text` is the content at `address`: `sha` (its SHA-256), `keyed` (its keyed address under
 * `key`), or undefined. `keyedFirst` tries the keyed address first (an output stored encrypted),
 * so the usual case hashes once.
 */
export function matchAddress(
  key: DataKey | undefined,
  address: string,
  text: string,
  keyedFirst: boolean,
): "sha" | "keyed" | undefined {
  const keyed = () => key !== undefined && keyedAddress(key, text) === address;
  if (keyedFirst && keyed()) return "keyed";
  if (createHash("sha256").update(text).digest("hex") === address) return "sha";
  return !keyedFirst && keyed() ? "keyed" : undefined;
}
