/**
 * How stored text says it is encoded at rest. Plain canonical JSON is stored as it is; compressed
 * or encrypted text is an envelope that starts with {@link ENVELOPE_TAG} (the codec never writes
 * that tag, so the two cannot be confused). The transform layer opens envelopes on read; one it
 * could not open (no key) reaches the rest of cairn still sealed, marked with the key it needs,
 * and every reader of content refuses it here with `KeyMissingError`, never as corruption. One
 * that fails to open (its ciphertext fails authentication, it does not decompress) reaches them
 * marked with the reason, and is invalid exactly like a record whose checksum does not match.
 */
import { CheckpointCorruptError, KeyMissingError } from "./errors.js";

/** The start of every envelope. */
export const ENVELOPE_TAG = '{"$cairn":"rest",';

/** True when stored text is an envelope rather than plain canonical JSON. */
export function isEnvelope(text: string): boolean {
  return text.startsWith(ENVELOPE_TAG);
}

/** What a sealed text says of the key it needs (`m` set by the layer, else the data key id). */
const MISSING = /^\{"\$cairn":"rest","m":"(key-encryption-key|data-key):([A-Za-z0-9._-]+)"/;
const DATA_KEY = /"k":"([A-Za-z0-9._-]+)"/;

/** Marks an envelope the layer could not open with the key it needs. */
export function markSealed(text: string, missing: KeyMissingError): string {
  return `${ENVELOPE_TAG}"m":"${missing.kind}:${missing.keyId}",${text.slice(ENVELOPE_TAG.length)}`;
}

/** The error a reader of a still-sealed text throws; `what` names the data (`Checkpoint x`). */
export function sealedError(text: string, what: string): KeyMissingError {
  const marked = MISSING.exec(text.slice(0, 300));
  if (marked) return new KeyMissingError(marked[2] as string, marked[1] as KeyMissingError["kind"], what);
  const dataKey = DATA_KEY.exec(text.slice(0, 400))?.[1] ?? "unknown";
  return new KeyMissingError(dataKey, "data-key", what);
}

const CORRUPT_PREFIX = `${ENVELOPE_TAG}"x":`;

/** Marks an envelope that failed to open with the reason. */
export function markCorrupt(text: string, reason: string): string {
  return `${CORRUPT_PREFIX}${JSON.stringify(reason)},${text.slice(ENVELOPE_TAG.length)}`;
}

/** Why an envelope failed to open, when the layer marked it so; undefined otherwise. */
export function corruptReason(text: string): string | undefined {
  if (!text.startsWith(CORRUPT_PREFIX)) return undefined;
  const end = text.indexOf('",', CORRUPT_PREFIX.length);
  try {
    return JSON.parse(text.slice(CORRUPT_PREFIX.length, end + 1)) as string;
  } catch {
    return "it does not open";
  }
}

/**
 * Throws when `text` is still an envelope: `CheckpointCorruptError` when it failed to open,
 * `KeyMissingError` when it is sealed for want of a key.
 */
export function assertOpened(text: string, what: string, checkpointId?: string): void {
  if (!isEnvelope(text)) return;
  const reason = corruptReason(text);
  if (reason !== undefined) throw new CheckpointCorruptError(checkpointId, reason);
  throw sealedError(text, what);
}
