/**
 * What a run takes at rest: the bytes its record bodies and outputs take as stored (compressed,
 * encrypted) against their uncompressed size, and how many records are compressed or encrypted.
 * Read from the stored texts through the at-rest layer's inner store, envelopes unopened, so it
 * works without keys; the uncompressed size of a record both compressed and encrypted needs the
 * key (without it, the record is counted in `unsizedRecords`).
 */
import { canonicalJson } from "../core/codec.js";
import { CheckpointCorruptError } from "../core/errors.js";
import { isEnvelope } from "../core/sealed.js";
import type { CheckpointStore } from "../stores/types.js";
import { AtRestStore } from "../transforms/at-rest-store.js";
import { TAG_BYTES } from "../transforms/data-key.js";
import { parseEnvelope, type SealContext } from "../transforms/envelope.js";
import { formatBytes } from "./chain-text.js";

/** Bytes and records at rest (see the module comment). */
export interface AtRestUsage {
  /** Bytes of the record bodies and distinct outputs as stored. */
  storedBytes: number;
  /** Their uncompressed, decrypted bytes (records in `unsizedRecords` left out). */
  plainBytes: number;
  /** Record bodies and distinct outputs counted. */
  records: number;
  compressedRecords: number;
  encryptedRecords: number;
  /** Records compressed and encrypted under a key not given: their uncompressed size is unknown. */
  unsizedRecords: number;
}

/** Outputs read at once: a run with thousands of big outputs is not held in memory whole. */
const BATCH = 64;
/** Bytes of an AES-GCM tag at the end of the ciphertext. */

/** A usage of nothing, to add runs to. */
export function emptyUsage(): AtRestUsage {
  return {
    storedBytes: 0,
    plainBytes: 0,
    records: 0,
    compressedRecords: 0,
    encryptedRecords: 0,
    unsizedRecords: 0,
  };
}

/** Adds `b` into `a`. */
export function addUsage(a: AtRestUsage, b: AtRestUsage): void {
  a.storedBytes += b.storedBytes;
  a.plainBytes += b.plainBytes;
  a.records += b.records;
  a.compressedRecords += b.compressedRecords;
  a.encryptedRecords += b.encryptedRecords;
  a.unsizedRecords += b.unsizedRecords;
}

/** How one stored text is encoded; `opened` is what the layer read it as (the plaintext when it could). */
function count(usage: AtRestUsage, stored: string, opened: string | undefined, where: string): void {
  usage.records++;
  const storedBytes = Buffer.byteLength(stored);
  usage.storedBytes += storedBytes;
  if (!isEnvelope(stored)) {
    usage.plainBytes += storedBytes;
    return;
  }
  const envelope = parseEnvelope(stored, where);
  if (envelope.z !== undefined) usage.compressedRecords++;
  if (envelope.e) usage.encryptedRecords++;
  if (opened !== undefined && !isEnvelope(opened)) {
    usage.plainBytes += Buffer.byteLength(opened);
    return;
  }
  if (envelope.z !== undefined || !envelope.e) {
    usage.unsizedRecords++;
    return;
  }
  // Encrypted, not compressed: GCM adds only its tag, and a body's outline joins its sealed rest
  // (`{outline}` + `{rest}` → `{outline,rest}`: one byte fewer than the two texts).
  const payload = Buffer.from(envelope.d, "base64").length - TAG_BYTES;
  const outline = envelope.o ? Buffer.byteLength(canonicalJson(envelope.o)) - 1 : 0;
  usage.plainBytes += payload + outline;
}

/**
 * The text the layer opens a stored text into; undefined when it fails to open (validation reports
 * that; here it is just not sized). Each text is read once, as stored, and opened in memory.
 */
async function opened(store: CheckpointStore, stored: string, ctx: SealContext): Promise<string | undefined> {
  if (!isEnvelope(stored) || !(store instanceof AtRestStore)) return stored;
  try {
    return await store.openStored(stored, ctx);
  } catch (error) {
    if (error instanceof CheckpointCorruptError) return undefined;
    throw error;
  }
}

/**
 * The at-rest usage of one run: each listed checkpoint's body and each output the store holds
 * for the run, once. A store without the at-rest layer stores everything as it is.
 */
export async function runAtRestUsage(
  store: CheckpointStore,
  pipelineId: string,
  checkpointIds: readonly string[],
): Promise<AtRestUsage> {
  const usage = emptyUsage();
  const raw = store instanceof AtRestStore ? store.inner : store;
  for (const id of checkpointIds) {
    const record = await raw.getCheckpoint(id);
    if (!record) continue; // deleted since the listing
    const text = await opened(store, record.body, { role: "checkpoint", pipelineId, id });
    count(usage, record.body, text, `checkpoint ${id}`);
  }
  const hashes = await raw.listOutputHashes(pipelineId);
  for (let i = 0; i < hashes.length; i += BATCH) {
    for (const [hash, text] of await raw.getOutputs(pipelineId, hashes.slice(i, i + BATCH))) {
      const where = `output ${hash.slice(0, 12)}… of run ${pipelineId}`;
      count(usage, text, await opened(store, text, { role: "output", pipelineId, id: hash }), where);
    }
  }
  return usage;
}

/** The at-rest row: bytes as stored against uncompressed, and the share of compressed and encrypted records. */
export function atRestText(a: AtRestUsage): string {
  if (a.records === 0) return "nothing stored";
  const share = (n: number) => `${n}/${a.records} records (${((n / a.records) * 100).toFixed(0)}%)`;
  const ratio =
    a.plainBytes > 0 && a.unsizedRecords === 0
      ? ` (${((a.storedBytes / a.plainBytes) * 100).toFixed(0)}%)`
      : "";
  const unsized =
    a.unsizedRecords > 0
      ? `; the uncompressed size of ${a.unsizedRecords} record${a.unsizedRecords === 1 ? "" : "s"} needs the key`
      : "";
  return (
    `${formatBytes(a.storedBytes)} stored, ${formatBytes(a.plainBytes)} uncompressed${ratio}${unsized}; ` +
    `compressed ${share(a.compressedRecords)}, encrypted ${share(a.encryptedRecords)}`
  );
}
