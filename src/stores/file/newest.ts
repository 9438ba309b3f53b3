/**
 * Finding a run's newest checkpoint in the file store: from the head hint, from the run folder's
 * names, and as the tip a conditional write (`expectedTip`) is checked against.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CheckpointCorruptError } from "../../core/errors.js";
import { compareStored } from "../../core/record.js";
import { hasCode, mapLimit, readdirIfPresent } from "../../util/fs-util.js";
import type { CheckpointRecord, StoredMetadata } from "../types.js";
import { parseCheckpointFileName } from "./checkpoint-file.js";
import { HEAD, OUTPUTS, readLocated } from "./run-paths.js";

/**
 * The checkpoint file names with the highest sequence, in one pass without sorting: resume
 * reads a run's folder, and at thousands of checkpoints sorting and matching every name would
 * cost more than reading the folder. Several names only after concurrent writers forked a run
 * (possible before every write checked the tip).
 */
export function newestNames(names: readonly string[]): string[] {
  let best: string | undefined;
  for (const name of names) {
    // Names compare by their zero-padded sequence first; only a name that beats the best is matched.
    if ((best === undefined || name > best) && parseCheckpointFileName(name)) best = name;
  }
  if (best === undefined) return [];
  const sequence = best.slice(0, 11);
  return names.filter((n) => n.startsWith(sequence) && parseCheckpointFileName(n));
}

/**
 * The id of the run's newest checkpoint given `newest` (from {@link newestNames}), `null` when
 * the run has none. The file name tells the id, so one newest file is not even read. An entry
 * that cannot be parsed counts as the newest when it has the highest sequence: its id is what a
 * conditional write is refused with, so the writer can see it is unreadable.
 */
export async function tipOf(
  pipelineId: string,
  dir: string,
  newest: readonly string[],
): Promise<string | null> {
  const idOf = (name: string) => parseCheckpointFileName(name)?.checkpointId as string;
  if (newest.length === 0) return null;
  if (newest.length === 1) return idOf(newest[0] as string);
  // A fork left by older writers: the one listings put last, as getLatestCheckpoint reads it.
  let best: StoredMetadata | undefined;
  for (const name of newest) {
    try {
      const { metadata } = await readLocated({ pipelineId, dir, name });
      if (!best || compareStored(metadata, best) > 0) best = metadata;
    } catch (error) {
      if (error instanceof CheckpointCorruptError || hasCode(error, "EISDIR")) return idOf(name);
      if (!hasCode(error, "ENOENT")) throw error;
    }
  }
  return best?.checkpoint_id ?? null;
}

/**
 * The checkpoint the run's head hint names, without listing the folder; undefined when there
 * is no usable hint (none, not a checkpoint file name, or naming a file that is gone).
 */
export async function readHinted(pipelineId: string, dir: string): Promise<CheckpointRecord | undefined> {
  const name = hintedName(dir);
  if (name === undefined) return undefined;
  try {
    return await readLocated({ pipelineId, dir, name });
  } catch (error) {
    if (hasCode(error, "ENOENT")) return undefined;
    throw error;
  }
}

/** The checkpoint file name the run's head hint holds; undefined when there is none or it is not one. */
export function hintedName(dir: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, OUTPUTS, HEAD), "utf8");
  } catch (error) {
    if (hasCode(error, "ENOENT", "ENOTDIR", "EISDIR")) return undefined;
    throw error;
  }
  const name = text.endsWith("\n") ? text.slice(0, -1) : "";
  return parseCheckpointFileName(name) ? name : undefined;
}

/**
 * The run's newest checkpoint names for a write under the run's lock: the hinted file when it is
 * there (every writer keeps the hint under that lock, so it names the newest), else from the
 * folder's names, which `list` reads only then.
 */
export function newestForWrite(dir: string, list: () => readonly string[]): string[] {
  const hinted = hintedName(dir);
  if (hinted !== undefined && existsSync(join(dir, hinted))) return [hinted];
  return newestNames(list());
}

/**
 * The run's checkpoint with the highest sequence: the hinted file when the hint is there, else
 * the newest names of a listing, parsing no other file.
 */
export async function readNewest(pipelineId: string, dir: string): Promise<CheckpointRecord | undefined> {
  const hinted = await readHinted(pipelineId, dir);
  if (hinted) return hinted;
  // A file deleted between the listing and the read sends us back to list again.
  for (let attempt = 1; ; attempt++) {
    const tied = newestNames(readdirIfPresent(dir) ?? []);
    if (tied.length === 0) return undefined;
    try {
      const records = await mapLimit(tied, (n) => readLocated({ pipelineId, dir, name: n }));
      return records.reduce((a, b) => (compareStored(a.metadata, b.metadata) >= 0 ? a : b));
    } catch (error) {
      if (!hasCode(error, "ENOENT") || attempt >= 5) throw error;
    }
  }
}
