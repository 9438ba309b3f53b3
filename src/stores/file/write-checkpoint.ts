/**
 * Writing one checkpoint of the file store to disk: its new outputs, the head hint and the
 * checkpoint file, in the order that keeps every crash harmless. The caller holds the run's lock
 * and has checked the id, the lease and the tip.
 */
import { join } from "node:path";
import { CheckpointConflictError } from "../../core/errors.js";
import {
  discardTemps,
  linkIntoPlace,
  moveIntoPlace,
  type TempFile,
  unlinkIfPresent,
  writeTemps,
} from "../../util/atomic-file.js";
import type { CheckpointRecord, OutputRecord } from "../types.js";
import { formatCheckpointFile } from "./checkpoint-file.js";
import { ensureDir, newOutputs, syncDir } from "./run-folders.js";
import { HEAD, INDEXED } from "./run-paths.js";

/** One checkpoint to write. */
export interface CheckpointWrite {
  /** The run's folder. */
  dir: string;
  /** The checkpoint's file name. */
  name: string;
  record: CheckpointRecord;
  outputs: readonly OutputRecord[];
  /** The outputs' file names, in the same order. */
  outputNames: string[];
  /** True when the checkpoint has a higher sequence than any other of the run. */
  leads: boolean;
  /** Also write the run's indexed flag (the run had no checkpoint, and this one's id is marked). */
  flag?: boolean;
  /** The checkpoint file's text, when the caller formatted it already. */
  text?: string;
  /** Must resolve before anything is moved into place (the feed's intent, written meanwhile). */
  beforeCommit?: Promise<unknown>;
}

/**
 * Writes the outputs, then the checkpoint. A write that `leads` points the head hint at its
 * checkpoint, any other removes the hint, and either is durable before the checkpoint can be.
 * Every writer holds the run's lock and does this, so the hint never names a checkpoint older
 * than the newest; after a crash it may name one that was never written, and readers then list
 * the folder (`getLatestCheckpoint`). Files added by hand are the one way to make it stale,
 * which `rebuildIndexes` is for.
 */
export async function writeCheckpoint(
  basePath: string,
  write: CheckpointWrite,
  fsync: boolean,
): Promise<void> {
  const { dir, name, record, outputs, outputNames, leads, flag = false } = write;
  if (ensureDir(dir)) await syncDir(basePath, fsync);
  const fresh = newOutputs(dir, outputs, outputNames, leads || flag);
  if (fresh.createdFolder) await syncDir(dir, fsync);
  const head = join(fresh.folder, HEAD);
  const hint = { dir: fresh.folder, name: HEAD, data: `${name}\n` };
  const early = [
    ...fresh.writes,
    ...(leads ? [hint] : []),
    ...(flag ? [{ dir: fresh.folder, name: INDEXED, data: "" }] : []),
  ];
  // Everything is written and flushed together; the order that matters is of the moves
  // into place: outputs and hint first, their folder flushed, then the checkpoint.
  const text = write.text ?? formatCheckpointFile(record.metadata, record.body);
  let temps: TempFile[];
  try {
    temps = await writeTemps([...early, { dir, name, data: text }], fsync);
  } catch (error) {
    await write.beforeCommit?.catch(() => undefined);
    throw error;
  }
  try {
    await write.beforeCommit;
  } catch (error) {
    discardTemps(temps);
    throw error;
  }
  const checkpoint = temps.pop() as TempFile;
  let moved = 0;
  try {
    for (; moved < temps.length; moved++) moveIntoPlace(temps[moved] as TempFile);
    const dropped = !leads && unlinkIfPresent(head);
    if (temps.length > 0 || dropped) await syncDir(fresh.folder, fsync);
  } catch (error) {
    discardTemps([checkpoint, ...temps.slice(moved)]);
    throw error;
  }
  if (!linkIntoPlace(checkpoint)) {
    // The hint must not name a checkpoint this write did not make.
    unlinkIfPresent(head);
    throw new CheckpointConflictError(record.metadata.checkpoint_id);
  }
  await syncDir(dir, fsync);
}
