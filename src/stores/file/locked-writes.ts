/**
 * The steps of the file store's writes that run under the run's lock (`FileStore.queued`):
 * the checks and the files of a put, a status update, a whole-run import and a run deletion,
 * each declaring its changes to the feed (`file-feed.ts`) before its files move into place.
 */
import { join } from "node:path";
import { CheckpointNotFoundError, TipMovedError } from "../../core/errors.js";
import { applyPatch } from "../../core/record.js";
import { PIPELINE_COMPLETE_STAGE } from "../../core/types.js";
import { replaceFile } from "../../util/atomic-file.js";
import { hasCode } from "../../util/fs-util.js";
import { assertFence } from "../lease.js";
import type {
  CheckpointRecord,
  ImportedCheckpoint,
  ImportRunOptions,
  Lease,
  OutputRecord,
  PutOptions,
  StatusPatch,
} from "../types.js";
import { formatCheckpointFile } from "./checkpoint-file.js";
import { fileChange, importChanges, runRemovalChange } from "./feed-changes.js";
import type { Declare } from "./file-feed.js";
import { headRecordText, keptPruned, writeHeadRecord } from "./head-record.js";
import { claimId } from "./id-claim.js";
import { isIndexed } from "./id-index.js";
import { newestForWrite, tipOf } from "./newest.js";
import { syncDir } from "./run-folders.js";
import { holdsOnlyKey, runKeyPath, scrubKeyFile } from "./run-key.js";
import type { RunLeases } from "./run-leases.js";
import { type Located, lazyNames, readLocated } from "./run-paths.js";
import type { RunsIndex } from "./runs-index.js";
import { checkImport, publishRun, type Staged, stagedRunFolder, trashRun } from "./staging.js";
import { writeCheckpoint } from "./write-checkpoint.js";

/** What the locked steps need of the store. */
export interface LockedWriter {
  readonly basePath: string;
  readonly fsync: boolean;
  readonly runs: RunsIndex;
  readonly leases: RunLeases;
}

/** Where a put goes: the run folder, the checkpoint's file name and its outputs' file names. */
export interface PutTarget {
  dir: string;
  name: string;
  outputNames: string[];
}

/** The locked step of `putCheckpoint`: fence, id claim, tip check, files, head record. */
export async function putLocked(
  w: LockedWriter,
  declare: Declare,
  { dir, name, outputNames }: PutTarget,
  record: CheckpointRecord,
  outputs: readonly OutputRecord[],
  fence: Lease | undefined,
  options: PutOptions,
): Promise<void> {
  const { metadata } = record;
  const { pipeline_id: pipelineId, checkpoint_id: id } = metadata;
  if (fence) assertFence(w.leases.current(pipelineId), fence);
  const list = lazyNames(dir);
  // Checked before any output is written, so a refused put normally leaves nothing behind.
  const unclaim = await claimId(w.basePath, id, { pipelineId, dir, name }, list);
  try {
    const newest = newestForWrite(dir, list);
    const { expectedTip } = options;
    if (expectedTip !== undefined) {
      const actual = await tipOf(pipelineId, dir, newest);
      if (actual !== expectedTip) throw new TipMovedError(id, pipelineId, expectedTip, actual);
    }
    if (newest.length === 0) await w.runs.add(pipelineId, metadata.pipeline_name, metadata.timestamp);
    // Written out of order (a lower or equal sequence), it is not the newest: the hint goes.
    const leads = newest.length === 0 || name.slice(0, 10) > (newest[0] as string).slice(0, 10);
    // The run's first checkpoint, its id marked: from now on the run is indexed.
    const flag = newest.length === 0 && !isIndexed(dir);
    const text = formatCheckpointFile(metadata, record.body);
    // The intent is written while the checkpoint's files are: only their moves wait for it.
    const beforeCommit = declare([fileChange("checkpoint", w.basePath, metadata, join(dir, name), text)]);
    beforeCommit.catch(() => undefined); // awaited by writeCheckpoint, whatever happens first
    const write = { dir, name, record, outputs, outputNames, leads, flag, text, beforeCommit };
    await writeCheckpoint(w.basePath, write, w.fsync);
    // After the checkpoint is in place: the record never names a checkpoint not written.
    await writeHeadRecord(dir, headRecordText(metadata, keptPruned(dir)), w.fsync);
  } catch (error) {
    unclaim();
    throw error;
  }
  if (metadata.stage_name === PIPELINE_COMPLETE_STAGE) await w.runs.finish(pipelineId);
}

/** The locked step of `importRun`: the checks again, the changes declared, then the publish. */
export async function importLocked(
  w: LockedWriter,
  declare: Declare,
  dir: string,
  pipelineId: string,
  checkpoints: readonly ImportedCheckpoint[],
  options: ImportRunOptions,
  staged: Staged,
): Promise<void> {
  await checkImport(w.basePath, pipelineId, checkpoints, options);
  const metas = checkpoints.map((c) => c.record.metadata);
  const run = stagedRunFolder(staged);
  await declare([
    ...(holdsOnlyKey(dir) ? [] : runRemovalChange(w.basePath, dir, w.runs.nameOf(pipelineId))),
    ...importChanges(w.basePath, dir, run, staged.nonce, pipelineId, metas),
  ]);
  const keepKey = options.runKey === undefined;
  await publishRun(w.basePath, w.runs, pipelineId, checkpoints, staged, w.fsync, keepKey);
}

/** The locked step of `updateCheckpoint`: reads the file again, then replaces it patched. */
export async function updateLocked(
  w: LockedWriter,
  declare: Declare,
  found: Located,
  checkpointId: string,
  patch: StatusPatch,
): Promise<void> {
  let record: CheckpointRecord;
  try {
    record = await readLocated(found);
  } catch (error) {
    if (hasCode(error, "ENOENT")) throw new CheckpointNotFoundError(checkpointId);
    throw error;
  }
  const metadata = applyPatch(record.metadata, patch);
  const text = formatCheckpointFile(metadata, record.body);
  await declare([fileChange("status", w.basePath, metadata, join(found.dir, found.name), text)]);
  await replaceFile(found.dir, found.name, text, w.fsync);
  await syncDir(found.dir, w.fsync);
}

/** The locked step of `deleteRun`: its change declared, the key record scrubbed, the folder trashed. */
export async function deleteLocked(
  w: LockedWriter,
  declare: Declare,
  dir: string,
  pipelineId: string,
): Promise<void> {
  // A folder holding only a key record is a run with nothing stored yet: no change.
  if (!holdsOnlyKey(dir)) await declare(runRemovalChange(w.basePath, dir, w.runs.nameOf(pipelineId)));
  await scrubKeyFile(runKeyPath(dir), w.fsync);
  await trashRun(w.basePath, w.runs, pipelineId, w.fsync);
}
