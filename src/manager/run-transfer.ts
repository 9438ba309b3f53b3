import { CheckpointConflictError, CheckpointCorruptError, InvalidArgumentError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import { compareStored, type StoredMetadata } from "../core/record.js";
import type { CheckpointStore, ImportedCheckpoint } from "../stores/types.js";
import { AtRestStore } from "../transforms/at-rest-store.js";
import { writeFileDurablyStreaming } from "../util/atomic-file.js";
import type { ParentLookup } from "./check.js";
import { importCheckpointObject } from "./checkpoint-transfer.js";
import { readExport } from "./export-read.js";
import { Readdresser } from "./readdress.js";
import { walkRun } from "./run-walk.js";
import { fileRunKey, type RunKey, SealedOpener, StoredTexts, storedRunKey } from "./sealed-transfer.js";
import { checkImported, EXPORT_VERSION, parseExportObject, runExportText } from "./transfer.js";
import type { VerifiedRecord } from "./verify.js";

/** Called as a long operation advances: `done` of `total` items of the current `phase`. */
export type ProgressCallback = (done: number, total: number, phase: string) => void;

/** A checkpoint left out of a run export because it does not verify. */
export interface SkippedCheckpoint {
  /** Null when the stored entry cannot even be parsed far enough to tell its id. */
  checkpointId: string | null;
  /** Where the entry is (file path, row key), for unparseable entries; otherwise null. */
  location: string | null;
  reason: string;
}

/** Options of `exportPipeline`. */
export interface RunExportOptions {
  /** Leave checkpoints that fail verification out (listed in the report and the file) instead of refusing. */
  skipCorrupt?: boolean;
  /**
   * Export an encrypted run in plaintext, on purpose. Its outputs are then referenced by SHA-256
   * (not by keyed address) and each record is sealed again with a new checksum; the file says
   * `"readdressed": true`. Without it an encrypted run exports sealed (the key is still needed).
   */
  decrypt?: boolean;
  onProgress?: ProgressCallback;
}

/** What a run export wrote. */
export interface RunExportReport {
  pipelineId: string;
  path: string;
  /** Ids written, oldest first. */
  checkpointIds: string[];
  skipped: SkippedCheckpoint[];
  /** How the run's data is in the file: `sealed` (encrypted), `decrypted` (re-addressed) or `plain`. */
  form: ExportForm;
}

/** How an export holds a run's data. */
export type ExportForm = "plain" | "sealed" | "decrypted";

/** Options of `importPipeline`. */
export interface RunImportOptions {
  /** Replace the run (or, for a single-checkpoint file, the checkpoint) if it already exists. */
  overwrite?: boolean;
  /** Largest export file read, in bytes; larger is `CAIRN_TOO_LARGE`, checked before reading. Default 1 GiB. */
  maxImportBytes?: number;
  onProgress?: ProgressCallback;
}

/** What an import stored. */
export interface RunImportReport {
  /** `run` for a run export, `checkpoint` for a single-checkpoint export. */
  kind: "run" | "checkpoint";
  pipelineId: string;
  /** Ids stored, oldest first. */
  checkpointIds: string[];
  /** How many checkpoints of the run the store held before and `overwrite` replaced. */
  replaced: number;
}

const count = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * Writes every checkpoint of a run to one file, durably, after the run walk checked each: what
 * `validateRun` calls invalid makes the export fail, unless `skipCorrupt` is set, which leaves
 * exactly those out and lists them. A checkpoint deleted during the walk is not exported.
 */
export async function exportRun(
  store: CheckpointStore,
  pipelineId: string,
  path: string,
  now: Date,
  options: RunExportOptions = {},
): Promise<RunExportReport> {
  assertValidName("pipelineId", pipelineId);
  if (typeof path !== "string" || path.length === 0)
    throw new InvalidArgumentError("export path must be a file path");
  const checkpointIds: string[] = [];
  const skipped: SkippedCheckpoint[] = [];
  const onProgress =
    options.onProgress && ((d: number, t: number) => options.onProgress?.(d, t, "verifying"));
  // Written as the walk goes, one checkpoint per line (greppable, diffable, and read back a line
  // at a time): memory holds one checkpoint, whatever the size of the run, and the hashes of the
  // outputs written so far, so each output is in the file once.
  const written = new Set<string>();
  // Before the file is created: an encrypted run needs its key, sealed or decrypted.
  const runKey = await storedRunKey(store, pipelineId);
  const form: ExportForm = runKey === undefined ? "plain" : options.decrypt ? "decrypted" : "sealed";
  const lineOf = exportLines(store, form, runKey, now, written);
  await writeFileDurablyStreaming(path, async (write) => {
    const head = JSON.stringify({
      export_version: EXPORT_VERSION,
      kind: "run",
      pipeline_id: pipelineId,
      exported_at: now.toISOString(),
      ...(form === "sealed" ? { sealed: true, run_key: runKey?.record } : {}),
      ...(form === "decrypted" ? { readdressed: true } : {}),
    });
    await write(`${head.slice(0, -1)},"checkpoints":[`);
    const walked = walkRun(lineOf.store, pipelineId, onProgress ? { onProgress } : {});
    for await (const { verdict, verified } of walked) {
      if (verdict.status === "invalid") {
        skipped.push({
          checkpointId: verdict.checkpointId,
          location: verdict.corrupt?.location ?? null,
          reason: verdict.problems.map((p) => p.message).join("; "),
        });
      } else if (verified) {
        await write(`${checkpointIds.length === 0 ? "" : ","}\n${lineOf.text(verified)}`);
        checkpointIds.push(verified.record.metadata.checkpoint_id);
      }
    }
    // Refusing now leaves no file: the temp file is removed and `path` is left as it was.
    if (skipped.length > 0 && !options.skipCorrupt) {
      throw new CheckpointCorruptError(undefined, [
        `${count(skipped.length, "checkpoint")} of run ${pipelineId} ${skipped.length === 1 ? "is" : "are"} invalid (fail verification)`,
        ...skipped.map((s) => `${s.checkpointId ?? s.location}: ${s.reason}`),
        "export with skipCorrupt to leave them out",
      ]);
    }
    if (checkpointIds.length === 0) {
      throw new CheckpointCorruptError(
        undefined,
        `no checkpoint of run ${pipelineId} verifies; nothing to export`,
      );
    }
    await write(`\n],"skipped_corrupt":${JSON.stringify(skipped)}}\n`);
  });
  return { pipelineId, path, checkpointIds, skipped, form };
}

/**
 * How each verified checkpoint of a run export is written, and the store the walk reads: for a
 * sealed export, one that keeps the stored texts it reads, so they are written as verified.
 */
function exportLines(
  store: CheckpointStore,
  form: ExportForm,
  runKey: RunKey | undefined,
  now: Date,
  written: Set<string>,
): { store: CheckpointStore; text(verified: VerifiedRecord): string } {
  if (form === "sealed") {
    // storedRunKey found the key through the at-rest layer's ring: anything else is a bug.
    if (!runKey || !(store instanceof AtRestStore))
      throw new Error("a sealed export reads through the at-rest layer");
    const texts = new StoredTexts();
    const fields = { export_version: EXPORT_VERSION, exported_at: now.toISOString() };
    return {
      store: texts.over(store),
      text: (verified) => JSON.stringify({ ...fields, ...texts.lineFields(verified, runKey.key, written) }),
    };
  }
  const readdresser = form === "decrypted" ? new Readdresser() : undefined;
  return {
    store,
    text: (verified) =>
      runExportText(readdresser ? readdresser.readdress(verified) : verified, now, written).trimEnd(),
  };
}

/** A run export, verified: what to store, and the key record of a sealed one. */
interface ParsedRun {
  pipelineId: string;
  /** Each checkpoint as it is to be stored (a sealed export's texts as they are), oldest first. */
  checkpoints: ImportedCheckpoint[];
  runKey: string | undefined;
}

/**
 * Verifies every checkpoint of a parsed run export, their run, order and chain links, before
 * anything is stored. A sealed export is opened with its run's key (the store's ring must hold
 * the key-encryption key its key record names, else `KeyMissingError`).
 */
async function parseRun(
  store: CheckpointStore,
  parsed: Record<string, unknown>,
  source: string,
  maxRecordBytes: number | undefined,
): Promise<ParsedRun> {
  const pipelineId = parsed.pipeline_id;
  if (typeof pipelineId !== "string")
    throw new CheckpointCorruptError(undefined, `${source}: pipeline_id is missing`);
  try {
    assertValidName("pipeline_id", pipelineId);
  } catch (error) {
    throw new CheckpointCorruptError(undefined, `${source}: ${(error as Error).message}`, { cause: error });
  }
  const items = parsed.checkpoints;
  if (!Array.isArray(items) || items.length === 0) {
    throw new CheckpointCorruptError(undefined, `${source}: checkpoints must be a non-empty array`);
  }
  const opener =
    parsed.sealed === true
      ? new SealedOpener(fileRunKey(store, pipelineId, parsed.run_key, source), maxRecordBytes)
      : undefined;
  // Outputs a checkpoint of a 1.1 file refers to are in it or in an earlier one: parsed in order.
  const shared = new Map<string, string>();
  const checksums = new Map<string, string>();
  const fileParents: ParentLookup = async (parentId) => {
    const checksum = checksums.get(parentId);
    return checksum === undefined ? undefined : { checksum };
  };
  const checkpoints: ImportedCheckpoint[] = [];
  let previous: StoredMetadata | undefined;
  for (const [i, item] of items.entries()) {
    const where = `${source} checkpoint #${i + 1}`;
    const line = opener
      ? await opener.openLine(item, where, shared)
      : { plain: parseExportObject(item as Record<string, unknown>, where, shared), stored: undefined };
    const m = line.plain.record.metadata;
    if (m.pipeline_id !== pipelineId) {
      throw new CheckpointCorruptError(
        m.checkpoint_id,
        `${where} belongs to run ${m.pipeline_id}, not ${pipelineId}`,
      );
    }
    if (checksums.has(m.checkpoint_id) || (previous && compareStored(previous, m) >= 0)) {
      throw new CheckpointCorruptError(
        m.checkpoint_id,
        `${where} is out of order or repeated: checkpoints must be oldest first, each once`,
      );
    }
    // Parents are looked up in the file only: one that is not in it (removed by retention, or left
    // out as corrupt) is no break, as in validation; the store's copy of the run is replaced.
    await checkImported(line.plain, fileParents, where, opener?.addressMatches);
    checksums.set(m.checkpoint_id, m.checksum);
    previous = m;
    checkpoints.push(line.stored ?? line.plain);
  }
  return { pipelineId, checkpoints, runKey: opener?.runKey.record };
}

/**
 * How many checkpoints the store already holds for the run, after making sure no id of the file
 * belongs to another run (which `overwrite` could not replace). Reads only; writes nothing.
 */
async function existingCheckpoints(
  store: CheckpointStore,
  pipelineId: string,
  sealed: readonly ImportedCheckpoint[],
  onProgress?: ProgressCallback,
): Promise<{ existing: number; clashing: number }> {
  const listing = await store.listCheckpoints(pipelineId);
  const inRun = new Set<string>();
  for (const e of listing) {
    const id = e.ok ? e.metadata.checkpoint_id : e.corrupt.checkpointId;
    if (id !== undefined) inRun.add(id);
  }
  let clashing = 0;
  for (const [i, s] of sealed.entries()) {
    onProgress?.(i, sealed.length, "checking");
    const id = s.record.metadata.checkpoint_id;
    if (inRun.has(id)) {
      clashing++;
      continue;
    }
    let owner: string | undefined;
    try {
      owner = (await store.getCheckpoint(id))?.metadata.pipeline_id;
    } catch (error) {
      if (!(error instanceof CheckpointCorruptError)) throw error;
      owner = "(unreadable)";
    }
    if (owner !== undefined) {
      throw new CheckpointConflictError(
        id,
        `Checkpoint ${id} already exists in the store under run ${owner}, not ${pipelineId}; nothing was imported`,
      );
    }
  }
  onProgress?.(sealed.length, sealed.length, "checking");
  return { existing: listing.length, clashing };
}

/**
 * Imports an export file: a run export (every checkpoint verified, then stored with one atomic
 * `importRun`, so no reader ever sees the run half-imported) or a single-checkpoint export. A run
 * the store already holds is a conflict, found before anything is written; `overwrite` replaces
 * the whole run in the same atomic step, never deleting it first. `maxRecordBytes` bounds what
 * a sealed text may open into (the manager's setting).
 */
export async function importRun(
  store: CheckpointStore,
  path: string,
  options: RunImportOptions = {},
  maxRecordBytes?: number,
): Promise<RunImportReport> {
  const parsed = await readExport(path, options.maxImportBytes);
  const overwrite = options.overwrite ?? false;
  if (parsed.kind === undefined || parsed.kind === "checkpoint") {
    const { pipelineId, checkpointId } = await importCheckpointObject(
      store,
      parsed,
      path,
      overwrite,
      maxRecordBytes,
    );
    options.onProgress?.(1, 1, "writing");
    return { kind: "checkpoint", pipelineId, checkpointIds: [checkpointId], replaced: 0 };
  }
  if (parsed.kind !== "run") {
    throw new CheckpointCorruptError(
      undefined,
      `${path} has an unknown kind ${JSON.stringify(parsed.kind)} (expected "run")`,
    );
  }
  const { pipelineId, checkpoints: sealed, runKey } = await parseRun(store, parsed, path, maxRecordBytes);
  const { existing, clashing } = await existingCheckpoints(store, pipelineId, sealed, options.onProgress);
  if (existing > 0 && !overwrite) {
    throw new CheckpointConflictError(
      pipelineId,
      `Run ${pipelineId} already has ${count(existing, "checkpoint")} in the store (${clashing} of the ${sealed.length} in ${path}); nothing was imported; import with overwrite to replace the run`,
    );
  }
  options.onProgress?.(0, sealed.length, "writing");
  // One atomic step: the run appears (or replaces the old one) whole, never half-imported.
  // A sealed run is stored as it is, with its key record: it keeps its data key.
  await store.importRun(pipelineId, sealed, {
    replace: overwrite,
    ...(runKey !== undefined ? { runKey } : {}),
  });
  options.onProgress?.(sealed.length, sealed.length, "writing");
  return {
    kind: "run",
    pipelineId,
    checkpointIds: sealed.map((s) => s.record.metadata.checkpoint_id),
    replaced: existing,
  };
}
