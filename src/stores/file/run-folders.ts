/**
 * Folder upkeep of the file store: creating a run's folders, writing and reading its outputs,
 * flushing folders, and removing a run folder once nothing is left in it.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { rmdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { type FileWrite, fsyncDir, unlinkIfPresent } from "../../util/atomic-file.js";
import { hasCode, mapLimit, readdirIfPresent } from "../../util/fs-util.js";
import type { OutputRecord } from "../types.js";
import { outputFileName } from "./checkpoint-file.js";
import { HEAD_RECORD } from "./head-record.js";
import { HEAD, INDEXED, OUTPUTS } from "./run-paths.js";

/** Flushes a folder's entries to disk, when the store flushes at all. */
export async function syncDir(dir: string, fsync: boolean): Promise<void> {
  if (fsync) await fsyncDir(dir);
}

/** Creates a folder; true when it was created (so its parent needs flushing). */
export function ensureDir(dir: string): boolean {
  try {
    mkdirSync(dir);
    return true;
  } catch (error) {
    if (hasCode(error, "EEXIST")) return false;
    if (!hasCode(error, "ENOENT")) throw error;
  }
  // The base folder itself does not exist yet: this is the store's first write. Another process
  // may be making the same folder at this moment: one of them creates it, neither fails.
  mkdirSync(dirname(dir), { recursive: true });
  try {
    mkdirSync(dir);
    return true;
  } catch (error) {
    if (hasCode(error, "EEXIST")) return false;
    throw error;
  }
}

/** The output files a checkpoint must add to its run's outputs folder, and whether it made that folder. */
export interface NewOutputs {
  folder: string;
  createdFolder: boolean;
  writes: FileWrite[];
}

/**
 * Creates the run's outputs folder when missing and lists the outputs not stored yet, named by
 * `names`. Same hash, same bytes: an output already there is never written again.
 */
export function newOutputs(
  dir: string,
  outputs: readonly OutputRecord[],
  names: string[],
  /** Create the folder even without outputs (it holds the head hint). */
  needFolder = false,
): NewOutputs {
  const folder = join(dir, OUTPUTS);
  const createdFolder = (needFolder || outputs.length > 0) && ensureDir(folder);
  const seen = new Set<string>();
  const writes: FileWrite[] = [];
  for (const [i, { body }] of outputs.entries()) {
    const name = names[i] as string;
    if (seen.has(name)) continue;
    seen.add(name);
    if (!createdFolder && existsSync(join(folder, name))) continue;
    writes.push({ dir: folder, name, data: body });
  }
  return { folder, createdFolder, writes };
}

/** Removes the run folder once it holds no checkpoint and no output. */
export async function dropIfEmpty(basePath: string, dir: string, fsync: boolean): Promise<void> {
  const names = readdirIfPresent(dir);
  if (!names || names.some((n) => n !== OUTPUTS)) return;
  try {
    // Without checkpoints or outputs the head hint, the index flag and the head record name
    // nothing: the run was deleted through the store, and they must not keep the folder alive.
    if (names.length > 0) {
      const outputs = join(dir, OUTPUTS);
      const own = [HEAD, INDEXED, HEAD_RECORD];
      if ((readdirIfPresent(outputs) ?? []).some((n) => !own.includes(n))) return;
      for (const flag of own) unlinkIfPresent(join(outputs, flag));
      await rmdir(outputs);
    }
    await rmdir(dir);
  } catch (error) {
    // Something was added meanwhile (or `outputs` is not a folder): the run is not empty after all.
    if (hasCode(error, "ENOTEMPTY", "EEXIST", "ENOTDIR", "ENOENT")) return;
    throw error;
  }
  await syncDir(basePath, fsync);
}

/** Reads outputs by hash from a run's outputs folder; hashes not stored are absent from the map. */
export async function readOutputs(folder: string, hashes: readonly string[]): Promise<Map<string, string>> {
  const unique = [...new Set(hashes)];
  const names = unique.map(outputFileName);
  const bodies = await mapLimit(names, async (name) => {
    try {
      return readFileSync(join(folder, name), "utf8");
    } catch (error) {
      if (hasCode(error, "ENOENT")) return undefined;
      throw error;
    }
  });
  const found = new Map<string, string>();
  unique.forEach((hash, i) => {
    const body = bodies[i];
    if (body !== undefined) found.set(hash, body);
  });
  return found;
}
