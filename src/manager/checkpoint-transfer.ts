/**
 * Export and import of single checkpoints, plaintext or of encrypted runs.
 *
 * A checkpoint of an encrypted run exports sealed (`"sealed": true`), as stored, with its run's
 * key record: no plaintext. With `decrypt` it exports in plaintext, re-addressed as a decrypted
 * run export is (outputs by SHA-256, checksums sealed again from the run's first checkpoint, so
 * it carries the same checksum and parent_checksum as in a decrypted export of the whole run).
 *
 * A sealed checkpoint imports into a run the store does not hold (the run is created with the
 * file's key record) or into a run encrypted under the same data key; into a plaintext run, or
 * one under another data key, it is a `CheckpointConflictError` before anything is written (its
 * keyed output addresses mean nothing under another key): export it with `decrypt` instead.
 */
import {
  CheckpointConflictError,
  CheckpointCorruptError,
  CheckpointNotFoundError,
  InvalidArgumentError,
} from "../core/errors.js";
import { type CheckpointRecord, parseStoredMetadata } from "../core/record.js";
import type { CheckpointStore, ImportedCheckpoint } from "../stores/types.js";
import { AtRestStore } from "../transforms/at-rest-store.js";
import { writeFileDurably } from "../util/atomic-file.js";
import { checkRecord, storeParents } from "./check.js";
import { readExport } from "./export-read.js";
import { Readdresser } from "./readdress.js";
import { replaceCheckpoint } from "./replace-checkpoint.js";
import type { ExportForm } from "./run-transfer.js";
import { walkRun } from "./run-walk.js";
import {
  fileRunKey,
  type RunKey,
  SealedOpener,
  StoredTexts,
  storedRunKey,
  unwrapRunKey,
} from "./sealed-transfer.js";
import {
  checkImported,
  EXPORT_VERSION,
  exportText,
  holdsCheckpoint,
  parseExportObject,
  storeImported,
} from "./transfer.js";
import type { VerifiedRecord } from "./verify.js";

/** Options of `exportCheckpoint`. */
export interface CheckpointExportOptions {
  /** Export a checkpoint of an encrypted run in plaintext, on purpose (outputs re-addressed by SHA-256). */
  decrypt?: boolean;
}

/**
 * Writes the export file of one checkpoint, durably, after the one check: one that is invalid is
 * refused with its problems. Returns how its data is in the file.
 */
export async function exportCheckpoint(
  store: CheckpointStore,
  record: CheckpointRecord,
  path: string,
  now: Date,
  options: CheckpointExportOptions = {},
): Promise<ExportForm> {
  if (typeof path !== "string" || path.length === 0)
    throw new InvalidArgumentError("export path must be a file path");
  const { checkpoint_id: id, pipeline_id: pipelineId } = record.metadata;
  const runKey = await storedRunKey(store, pipelineId);
  if (runKey && options.decrypt) {
    const readdressed = await decryptedRecord(store, pipelineId, id);
    await writeFileDurably(path, exportText(readdressed, now, { readdressed: true }));
    return "decrypted";
  }
  if (runKey && store instanceof AtRestStore) {
    // Read again through a view that keeps the stored texts: the file holds what was verified.
    const texts = new StoredTexts();
    const view = texts.over(store);
    const again = await view.getCheckpoint(id);
    if (!again) throw new CheckpointNotFoundError(id);
    const fields = texts.lineFields(await checkedRecord(view, again), runKey.key, new Set());
    const line = {
      export_version: EXPORT_VERSION,
      exported_at: now.toISOString(),
      sealed: true,
      run_key: runKey.record,
    };
    await writeFileDurably(path, `${JSON.stringify({ ...line, ...fields })}\n`);
    return "sealed";
  }
  await writeFileDurably(path, exportText(await checkedRecord(store, record), now));
  return "plain";
}

/** The verified record of a checkpoint, or `CheckpointCorruptError` with its problems. */
async function checkedRecord(store: CheckpointStore, record: CheckpointRecord): Promise<VerifiedRecord> {
  const { problems, verified } = await checkRecord(store, record, storeParents(store));
  if (problems.length > 0 || !verified)
    throw new CheckpointCorruptError(
      record.metadata.checkpoint_id,
      problems.map((p) => p.message),
    );
  return verified;
}

/**
 * A checkpoint re-addressed as in a decrypted export of its run: the run is walked from its first
 * checkpoint up to it, each one checked and re-sealed, so its parent_checksum is its parent's new one.
 */
async function decryptedRecord(
  store: CheckpointStore,
  pipelineId: string,
  id: string,
): Promise<VerifiedRecord> {
  const readdresser = new Readdresser();
  for await (const { verdict, verified } of walkRun(store, pipelineId)) {
    const readdressed = verified && readdresser.readdress(verified);
    if (verdict.checkpointId !== id) continue;
    if (readdressed) return readdressed;
    if (verdict.status === "gone") break;
    throw new CheckpointCorruptError(
      id,
      verdict.problems.map((p) => p.message),
    );
  }
  throw new CheckpointNotFoundError(id);
}

/** Imports a single-checkpoint export file into a store; refuses to replace an existing checkpoint unless asked. */
export async function importCheckpointFile(
  store: CheckpointStore,
  path: string,
  overwrite: boolean,
  maxImportBytes?: number,
  maxRecordBytes?: number,
): Promise<string> {
  const parsed = await readExport(path, maxImportBytes);
  return (await importCheckpointObject(store, parsed, path, overwrite, maxRecordBytes)).checkpointId;
}

/** Imports a parsed single-checkpoint export, plaintext or sealed, checked before anything is written. */
export async function importCheckpointObject(
  store: CheckpointStore,
  parsed: Record<string, unknown>,
  source: string,
  overwrite: boolean,
  maxRecordBytes?: number,
): Promise<{ pipelineId: string; checkpointId: string }> {
  if (parsed.sealed !== true || parsed.kind === "run") {
    const single = parseExportObject(parsed, source);
    const checkpointId = await storeImported(store, single, source, overwrite);
    return { pipelineId: single.record.metadata.pipeline_id, checkpointId };
  }
  const { pipeline_id: pipelineId } = parseStoredMetadata(parsed.metadata, source);
  const runKey = fileRunKey(store, pipelineId, parsed.run_key, source);
  const opener = new SealedOpener(runKey, maxRecordBytes);
  const line = await opener.openLine(parsed, source, new Map());
  await checkImported(line.plain, storeParents(store), source, opener.addressMatches);
  const checkpointId = await storeSealed(store, line.stored, runKey, overwrite);
  return { pipelineId, checkpointId };
}

/** Stores a checked sealed checkpoint as it is, where its data key is the run's (see the module comment). */
async function storeSealed(
  store: CheckpointStore,
  sealed: ImportedCheckpoint,
  fileKey: RunKey,
  overwrite: boolean,
): Promise<string> {
  const { checkpoint_id: id, pipeline_id: pipelineId } = sealed.record.metadata;
  const keyId = fileKey.key.id;
  const current = await store.getRunKey?.(pipelineId);
  if (current === undefined) {
    if ((await store.listCheckpoints(pipelineId)).length > 0)
      throw new CheckpointConflictError(
        id,
        `Checkpoint ${id} is encrypted under data key ${keyId}, and run ${pipelineId} in the store is not encrypted; nothing was imported: import it into a store without run ${pipelineId}, or export it with --decrypt`,
      );
    await assertNotElsewhere(store, id, pipelineId);
    // A new run, created whole with the file's key record in one atomic step.
    await store.importRun(pipelineId, [sealed], { replace: false, runKey: fileKey.record });
    return id;
  }
  const storeKey = unwrapRunKey(store, pipelineId, current, `Run ${pipelineId}`);
  if (storeKey.id !== keyId || !storeKey.recordKey.equals(fileKey.key.recordKey))
    throw new CheckpointConflictError(
      id,
      `Checkpoint ${id} is encrypted under data key ${keyId}, and run ${pipelineId} in the store under another data key (${storeKey.id}); nothing was imported: export it with --decrypt to import it into this run`,
    );
  const exists = await holdsCheckpoint(store, id);
  if (exists && !overwrite)
    throw new CheckpointConflictError(
      id,
      `Checkpoint ${id} already exists in the store; import with overwrite to replace it`,
    );
  if (exists) await replaceCheckpoint(store, sealed.record, sealed.outputs);
  // Sealed under the run's own key already: stored beneath the at-rest layer as it is.
  else
    await (store instanceof AtRestStore ? store.inner : store).putCheckpoint(sealed.record, sealed.outputs);
  return id;
}

/** `CheckpointConflictError` when the store holds checkpoint `id` under another run. */
async function assertNotElsewhere(store: CheckpointStore, id: string, pipelineId: string): Promise<void> {
  let owner: string | undefined;
  try {
    owner = (await store.getCheckpoint(id))?.metadata.pipeline_id;
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    owner = "(unreadable)";
  }
  if (owner !== undefined)
    throw new CheckpointConflictError(
      id,
      `Checkpoint ${id} already exists in the store under run ${owner}, not ${pipelineId}; nothing was imported`,
    );
}
