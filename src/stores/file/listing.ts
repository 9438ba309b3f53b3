/**
 * Reading a run folder's entries as checkpoints for the file store: each entry either parses,
 * or is reported as a corrupt entry naming its file and why it was refused. A file deleted
 * between listing the folder and reading it is simply left out.
 */
import type { Dirent } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointCorruptError } from "../../core/errors.js";
import { compareStored } from "../../core/record.js";
import { isTempName } from "../../util/atomic-file.js";
import { hasCode, mapLimit } from "../../util/fs-util.js";
import type { CorruptEntry, ListedCheckpoint, StoredMetadata } from "../types.js";
import { parseCheckpointFileName } from "./checkpoint-file.js";
import { type Located, OUTPUTS, readLocated } from "./run-paths.js";

/** Lists the run's checkpoints oldest first; unreadable files are reported as corrupt entries. */
export async function listRun(pipelineId: string, dir: string): Promise<ListedCheckpoint[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (hasCode(error, "ENOENT")) return [];
    throw error;
  }
  const names = entries
    .filter((e) => !(e.name === OUTPUTS && e.isDirectory()) && !isTempName(e.name))
    .map((e) => ({ name: e.name, isFile: e.isFile() }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const listed = await mapLimit(names, (entry) => listEntry(pipelineId, dir, entry.name, entry.isFile));
  const present = listed.filter((e): e is ListedCheckpoint => e !== undefined);
  // Valid entries are ordered by their metadata; corrupt ones keep their place by file name.
  const ok = present
    .flatMap((e) => (e.ok ? [e.metadata] : []))
    .sort(compareStored)
    .values();
  return present.map((e) => (e.ok ? { ok: true, metadata: ok.next().value as StoredMetadata } : e));
}

/** One listing entry; undefined when the file vanished since the folder was read. */
async function listEntry(
  pipelineId: string,
  dir: string,
  name: string,
  isFile: boolean,
): Promise<ListedCheckpoint | undefined> {
  const location = join(dir, name);
  const parsed = parseCheckpointFileName(name);
  const corrupt = (reason: string): ListedCheckpoint => {
    const entry: CorruptEntry = { pipelineId, checkpointId: parsed?.checkpointId, location, reason };
    return { ok: false, corrupt: entry };
  };
  if (!parsed) return corrupt("file name does not match <sequence>-<checkpoint id>.json");
  if (!isFile) return corrupt("not a regular file");
  try {
    const record = await readLocated({ pipelineId, dir, name });
    return { ok: true, metadata: record.metadata };
  } catch (error) {
    if (error instanceof CheckpointCorruptError) return corrupt(error.problems.join("; "));
    if (hasCode(error, "ENOENT")) return undefined;
    throw error;
  }
}

/** True when the file reads as a checkpoint; false when it is corrupt, a folder or gone. */
export async function parses(found: Located): Promise<boolean> {
  try {
    await readLocated(found);
    return true;
  } catch (error) {
    if (error instanceof CheckpointCorruptError || hasCode(error, "ENOENT", "EISDIR")) return false;
    throw error;
  }
}
