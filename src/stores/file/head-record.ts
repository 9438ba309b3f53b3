/**
 * The file store's run head record, `outputs/.run-head`: JSON of the run's last checkpoint
 * written (sequence, id, checksum) and retention's tombstone. Replaced by rename under the run's
 * lock after each checkpoint file is in place, so it never names a checkpoint that was not
 * written; a crash in between leaves it one write behind, which is never reported as a loss.
 * Unlike the `.head` hint it is never removed by a write, so files deleted by hand stay visible.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { CheckpointCorruptError } from "../../core/errors.js";
import { fsyncDir, replaceFile } from "../../util/atomic-file.js";
import { readJsonFile } from "../../util/fs-util.js";
import type { RunHead, StoredMetadata } from "../types.js";
import { OUTPUTS } from "./run-paths.js";

/** The head record's name in the outputs folder; not a hash, so output listings never see it. */
export const HEAD_RECORD = ".run-head";

/** The head record's text for a run whose last checkpoint is `m`, keeping `pruned`. */
export function headRecordText(m: StoredMetadata, pruned?: RunHead["pruned"]): string {
  const head: RunHead = { sequence: m.sequence, checkpointId: m.checkpoint_id, checksum: m.checksum };
  if (pruned) head.pruned = pruned;
  return `${JSON.stringify(head)}\n`;
}

/** The run's head record; undefined when it has none; `CheckpointCorruptError` when unreadable. */
export function readHeadRecord(dir: string): RunHead | undefined {
  const path = join(dir, OUTPUTS, HEAD_RECORD);
  const file = readJsonFile(path);
  if (file === undefined) return undefined;
  const head = file.value;
  if (!isRunHead(head)) throw new CheckpointCorruptError(undefined, `${path}: not a run head record`);
  return head;
}

function isRunHead(value: unknown): value is RunHead {
  if (typeof value !== "object" || value === null) return false;
  const h = value as Record<string, unknown>;
  const pruned = h.pruned as Record<string, unknown> | undefined;
  return (
    Number.isInteger(h.sequence) &&
    typeof h.checkpointId === "string" &&
    typeof h.checksum === "string" &&
    (pruned === undefined ||
      (typeof pruned === "object" &&
        pruned !== null &&
        Number.isInteger(pruned.throughSequence) &&
        typeof pruned.at === "string"))
  );
}

/** Replaces the run's head record; the caller holds the run's lock. */
export async function writeHeadRecord(dir: string, text: string, fsync: boolean): Promise<void> {
  const folder = join(dir, OUTPUTS);
  mkdirSync(folder, { recursive: true });
  await replaceFile(folder, HEAD_RECORD, text, fsync);
  if (fsync) await fsyncDir(folder);
}

/** Records on the head that retention removed checkpoints up to `through`; the caller holds the run's lock. */
export async function recordPruned(dir: string, through: number, fsync: boolean): Promise<void> {
  const head = readHeadRecord(dir);
  if (!head) return;
  const previous = head.pruned?.throughSequence ?? -1;
  head.pruned = { throughSequence: Math.max(previous, through), at: new Date().toISOString() };
  await writeHeadRecord(dir, `${JSON.stringify(head)}\n`, fsync);
}

/** The tombstone a write keeps; an unreadable record is replaced by the write, not kept. */
export function keptPruned(dir: string): RunHead["pruned"] {
  try {
    return readHeadRecord(dir)?.pruned;
  } catch (error) {
    if (error instanceof CheckpointCorruptError) return undefined;
    throw error;
  }
}
