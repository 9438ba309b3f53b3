/**
 * Export and import of single checkpoints as self-contained JSON files (`export_version` "1.2";
 * "1.0" and "1.1" files still import): the seed's fields in snake_case with every output inlined,
 * so a file moves between stores of any strategy. An import recomputes every hash and the
 * checksum; a tampered file is refused. Each checkpoint keeps its record format: the file holds
 * its metadata (with `format_version`) and its body's fields as stored, so the importer rebuilds
 * the exact body and checks the checksum by that format's rule (a record is upcast on read, never
 * rewritten by an export). A run export (since 1.1) writes each output once: see
 * {@link runExportText}. Encrypted runs export sealed or re-addressed: see `sealed-transfer.ts`
 * and `readdress.ts`.
 */
import { canonicalJson } from "../core/codec.js";
import { CheckpointConflictError, CheckpointCorruptError, FormatTooNewError } from "../core/errors.js";
import { bodyText, formatOf, upcastBody } from "../core/formats.js";
import { assertValidName } from "../core/ids.js";
import { parseStoredMetadata, type StoredMetadata } from "../core/record.js";
import type { CheckpointStore } from "../stores/types.js";
import { checkProvenance, checkStageList, EncodedOutput, sealBody } from "./build.js";
import { checkRecord, type OutputSource, type ParentLookup, storeParents } from "./check.js";
import { replaceCheckpoint } from "./replace-checkpoint.js";
import { storedForm } from "./sealed-transfer.js";
import type { VerifiedRecord } from "./verify.js";

/** Version of the export file format cairn writes. */
export const EXPORT_VERSION = "1.2";

/**
 * Versions an import reads: 1.0 run exports repeat every output in every checkpoint; 1.1 ones
 * hold each output once; 1.2 adds sealed exports of encrypted runs (`"sealed": true`) and says
 * when a decrypted export re-addressed outputs (`"readdressed": true`). A plaintext 1.2 file is
 * laid out as 1.1.
 */
const READABLE_VERSIONS: readonly unknown[] = ["1.0", "1.1", EXPORT_VERSION];

/** Builds the export file text of a verified checkpoint; outputs are embedded as their canonical text. */
export function exportText(
  verified: VerifiedRecord,
  exportedAt: Date,
  extra: Record<string, unknown> = {},
): string {
  const { body, outputs } = verified;
  const outputParts = Object.entries(body.output_refs).map(
    ([stage, hash]) => `${JSON.stringify(stage)}:${outputs.get(hash) as string}`,
  );
  const headText = exportHead(verified, exportedAt, extra);
  return `${headText.slice(0, -1)},"state_data":${canonicalJson(body.state_data)},"agent_outputs":{${outputParts.join(",")}}}\n`;
}

/**
 * The JSON of an export line's fields before `state_data`, both layouts alike: the metadata and
 * the body's fields as stored, by its record format's list (format 1: the stage lists and the
 * provenance hashes; format 2 adds the version fields).
 */
function exportHead(verified: VerifiedRecord, exportedAt: Date, extra: Record<string, unknown>): string {
  const { record, stored } = verified;
  const fields: Record<string, unknown> = {};
  for (const field of formatOf(record.metadata).fields) fields[field] = stored[field];
  return JSON.stringify({
    export_version: EXPORT_VERSION,
    exported_at: exportedAt.toISOString(),
    metadata: record.metadata,
    ...fields,
    ...extra,
  });
}

/**
 * One checkpoint of a run export (1.1): its outputs as `output_refs` (stage → hash) and, under
 * `outputs` (hash → output), only those no earlier checkpoint of the file holds. `written` is the
 * hashes already in the file; the new ones are added to it. A run's checkpoints carry the earlier
 * stages' outputs forward, so inlining them all (1.0) grew with the square of the stage count.
 */
export function runExportText(verified: VerifiedRecord, exportedAt: Date, written: Set<string>): string {
  const { body, outputs } = verified;
  const fresh: string[] = [];
  for (const hash of Object.values(body.output_refs)) {
    if (written.has(hash)) continue;
    written.add(hash);
    fresh.push(`${JSON.stringify(hash)}:${outputs.get(hash) as string}`);
  }
  const headText = exportHead(verified, exportedAt, { output_refs: body.output_refs });
  return `${headText.slice(0, -1)},"state_data":${canonicalJson(body.state_data)},"outputs":{${fresh.join(",")}}}\n`;
}

/** True for a `major.minor` export version above {@link EXPORT_VERSION}: a newer cairn's file. */
function isNewerExportVersion(version: unknown): boolean {
  const parts = (v: string) => /^(\d{1,9})\.(\d{1,9})$/.exec(v)?.slice(1).map(Number);
  const found = typeof version === "string" ? parts(version) : undefined;
  const ours = parts(EXPORT_VERSION) as number[];
  if (!found) return false;
  const [major = 0, minor = 0] = found;
  return major > (ours[0] as number) || (major === ours[0] && minor > (ours[1] as number));
}

/** Checks a parsed export's version: the file of a newer cairn is `CAIRN_FORMAT_TOO_NEW`, no export `CAIRN_CORRUPT`. */
export function checkExportVersion(value: unknown, source: string): Record<string, unknown> {
  const parsed = value as Record<string, unknown> | null;
  if (isNewerExportVersion(parsed?.export_version)) {
    throw new FormatTooNewError("export file", source, String(parsed?.export_version), EXPORT_VERSION);
  }
  if (parsed === null || typeof parsed !== "object" || !READABLE_VERSIONS.includes(parsed.export_version)) {
    throw new CheckpointCorruptError(
      undefined,
      `${source} is not a cairn export (export_version ${JSON.stringify(parsed?.export_version)}, expected "${EXPORT_VERSION}")`,
    );
  }
  return parsed;
}

/**
 * The outputs (stage → output) of one checkpoint of a run export: inlined (`agent_outputs`, 1.0),
 * or `output_refs` to outputs this or an earlier checkpoint of the file holds (1.1). `shared`
 * holds the outputs seen so far (hash → canonical text); each is hashed as it is added.
 */
function outputsOf(
  parsed: Record<string, unknown>,
  id: string,
  source: string,
  shared: Map<string, string> | undefined,
): Map<string, EncodedOutput> {
  const outputs = new Map<string, EncodedOutput>();
  if (shared === undefined || !("output_refs" in parsed)) {
    const tree = parsed.agent_outputs;
    if (tree === null || typeof tree !== "object" || Array.isArray(tree))
      throw new CheckpointCorruptError(id, `${source}: agent_outputs is not an object`);
    for (const [stage, value] of Object.entries(tree))
      outputs.set(assertValidName("agent_outputs key", stage), EncodedOutput.fromText(canonicalJson(value)));
    return outputs;
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === "object" && !Array.isArray(v);
  const { output_refs: refs, outputs: fresh } = parsed;
  if (!isObject(refs)) throw new CheckpointCorruptError(id, `${source}: output_refs is not an object`);
  if (!isObject(fresh)) throw new CheckpointCorruptError(id, `${source}: outputs is not an object`);
  for (const [hash, value] of Object.entries(fresh)) {
    const output = EncodedOutput.fromText(canonicalJson(value));
    if (output.hash !== hash)
      throw new CheckpointCorruptError(
        id,
        `${source}: output ${hash.slice(0, 12)}… does not hash to its key`,
      );
    shared.set(hash, output.text);
  }
  for (const [stage, hash] of Object.entries(refs)) {
    const text = typeof hash === "string" ? shared.get(hash) : undefined;
    if (text === undefined) {
      throw new CheckpointCorruptError(
        id,
        `${source}: the output of stage ${stage} (${String(hash).slice(0, 12)}…) is not in the file before it`,
      );
    }
    outputs.set(assertValidName("output_refs key", stage), EncodedOutput.verified(text, hash as string));
  }
  return outputs;
}

/**
 * Verifies one parsed single-checkpoint export object into a sealed record and its outputs;
 * `shared` (hash → output text) is given for the checkpoints of a run export, in file order.
 */
export function parseExportObject(
  parsed: Record<string, unknown>,
  source: string,
  shared?: Map<string, string>,
) {
  if (parsed === null || typeof parsed !== "object" || !READABLE_VERSIONS.includes(parsed.export_version)) {
    throw new CheckpointCorruptError(undefined, `${source} is not a cairn checkpoint export`);
  }
  if (parsed.kind === "run") {
    throw new CheckpointCorruptError(
      undefined,
      `${source} is the export of a whole run, not of one checkpoint; import it as a run (importPipeline)`,
    );
  }
  const metadata: StoredMetadata = parseStoredMetadata(parsed.metadata, source);
  const id = metadata.checkpoint_id;
  if (!("state_data" in parsed)) throw new CheckpointCorruptError(id, `${source}: state_data is missing`);
  // The body is rebuilt in the record's own format, exactly as it was stored.
  const format = formatOf(metadata, source);
  let body: string;
  let outputs: Map<string, EncodedOutput>;
  try {
    outputs = outputsOf(parsed, id, source, shared);
    const fields: Record<string, unknown> = {};
    for (const field of format.fields) {
      if (!(field in parsed)) throw new CheckpointCorruptError(id, `${source}: ${field} is missing`);
      fields[field] = parsed[field];
    }
    const refs = [...outputs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    fields.output_refs = Object.fromEntries(refs.map(([stage, out]) => [stage, out.hash]));
    body = bodyText(fields, canonicalJson(parsed.state_data));
    const current = upcastBody(format.parseBody(id, body), format, metadata);
    checkStageList("completed_stages", current.completed_stages);
    checkStageList("pending_stages", current.pending_stages);
    checkProvenance(current.provenance_hashes);
  } catch (error) {
    if (error instanceof CheckpointCorruptError) throw error;
    throw new CheckpointCorruptError(id, `${source}: ${(error as Error).message}`, { cause: error });
  }
  const { checksum, data_size: dataSize, ...draft } = metadata;
  const sealed = sealBody(draft, body, outputs, dataSize);
  if (sealed.record.metadata.checksum !== checksum) {
    throw new CheckpointCorruptError(
      id,
      `${source} was modified after export: its content hashes to ${sealed.record.metadata.checksum.slice(0, 12)}…, the checksum says ${checksum.slice(0, 12)}…`,
    );
  }
  return sealed;
}

/** A checkpoint sealed from an export file, with the outputs the file holds. */
export type SealedImport = ReturnType<typeof parseExportObject>;

/**
 * Runs the one check on a checkpoint sealed from an export file, its outputs read from the file:
 * one that `validateCheckpoint` would call invalid (an output that does not decode, a broken
 * link to a parent `parents` knows) is refused before anything is written.
 */
export async function checkImported(
  sealed: SealedImport,
  parents: ParentLookup,
  source: string,
  addressMatches?: OutputSource["addressMatches"],
): Promise<void> {
  const texts = new Map(sealed.outputs.map((o) => [o.hash, o.body]));
  const fromFile: OutputSource = {
    ...(addressMatches ? { addressMatches } : {}),
    getOutputs: async (_pipelineId: string, hashes: readonly string[]) =>
      new Map(hashes.flatMap((h) => (texts.has(h) ? [[h, texts.get(h) as string] as const] : []))),
  };
  const { problems } = await checkRecord(fromFile, sealed.record, parents);
  if (problems.length > 0) {
    throw new CheckpointCorruptError(
      sealed.record.metadata.checkpoint_id,
      problems.map((p) => `${source}: ${p.message}`),
    );
  }
}

/**
 * Checks one sealed checkpoint (its parent looked up in the store) and stores it; refuses to
 * replace an existing one unless asked, and then replaces it atomically, never deleting it first.
 */
export async function storeImported(
  store: CheckpointStore,
  sealed: SealedImport,
  source: string,
  overwrite: boolean,
): Promise<string> {
  await checkImported(sealed, storeParents(store), source);
  const { record, outputs } = sealed;
  const id = record.metadata.checkpoint_id;
  const exists = await holdsCheckpoint(store, id);
  if (exists) {
    if (!overwrite) {
      throw new CheckpointConflictError(
        id,
        `Checkpoint ${id} already exists in the store; import with overwrite to replace it`,
      );
    }
    // Replaced beneath the at-rest layer: sealed here as the layer would seal it in its run.
    const stored = await storedForm(store, record, outputs);
    await replaceCheckpoint(store, stored.record, stored.outputs);
    return id;
  }
  await store.putCheckpoint(record, outputs);
  return id;
}

/** True when the store holds a checkpoint with this id, readable or not. */
export async function holdsCheckpoint(store: CheckpointStore, id: string): Promise<boolean> {
  try {
    return (await store.getCheckpoint(id)) !== undefined;
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    return true;
  }
}
