/**
 * How one checkpoint is stored at rest, read from its stored envelope and its run's key record
 * without any key: compression, encryption, and the id of the key-encryption key that can open
 * it. What `inspect` shows beside the content, and all it can show without the key.
 */
import { CheckpointCorruptError } from "../core/errors.js";
import { isEnvelope } from "../core/sealed.js";
import type { AtRestStore } from "../transforms/at-rest-store.js";
import { keyRecordKekId } from "../transforms/data-key.js";
import { parseEnvelope } from "../transforms/envelope.js";

/** How a checkpoint's record is stored. */
export interface AtRestInfo {
  /** The compression algorithm of its stored body; null when stored uncompressed. */
  compression: string | null;
  /** True when its body is encrypted. */
  encrypted: boolean;
  /** The key-encryption key its run's data key is wrapped under; null when not encrypted or the run has no key record. */
  keyId: string | null;
  /** Bytes of the body as stored (the envelope's text). */
  storedBytes: number;
}

/** Reads how `checkpointId` is stored; undefined when the store no longer holds it. */
export async function atRestInfo(store: AtRestStore, checkpointId: string): Promise<AtRestInfo | undefined> {
  // The inner store gives the body as stored, envelope unopened.
  const raw = await store.inner.getCheckpoint(checkpointId);
  if (!raw) return undefined;
  const info: AtRestInfo = {
    compression: null,
    encrypted: false,
    keyId: null,
    storedBytes: Buffer.byteLength(raw.body),
  };
  if (!isEnvelope(raw.body)) return info;
  const envelope = parseEnvelope(raw.body, `checkpoint ${checkpointId}`);
  info.compression = envelope.z ?? null;
  info.encrypted = envelope.e !== undefined;
  if (info.encrypted && store.getRunKey) {
    const record = await store.getRunKey(raw.metadata.pipeline_id);
    try {
      if (record !== undefined) info.keyId = keyRecordKekId(raw.metadata.pipeline_id, record);
    } catch (error) {
      // A malformed key record: the content check reports it; here the key is just unknown.
      if (!(error instanceof CheckpointCorruptError)) throw error;
    }
  }
  return info;
}

/** The "at rest" line of `inspect`: `compressed with gzip, encrypted under key id k2`. */
export function describeAtRest(info: AtRestInfo): string {
  const parts: string[] = [];
  parts.push(info.compression ? `compressed with ${info.compression}` : "not compressed");
  if (info.encrypted)
    parts.push(
      info.keyId ? `encrypted under key id ${info.keyId}` : "encrypted (its run has no data key any more)",
    );
  else parts.push("not encrypted");
  return parts.join(", ");
}
