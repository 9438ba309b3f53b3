/**
 * Folder upkeep of the file store: creating a run's folders, writing its outputs, flushing
 * folders, and removing a run folder once nothing is left in it.
 */
import { mkdir, rmdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fsyncDir, replaceFile } from "../../util/atomic-file.js";
import { exists, hasCode, readdirIfPresent } from "../../util/fs-util.js";
import type { OutputRecord } from "../types.js";
import { OUTPUTS } from "./run-paths.js";

/** Flushes a folder's entries to disk, when the store flushes at all. */
export async function syncDir(dir: string, fsync: boolean): Promise<void> {
  if (fsync) await fsyncDir(dir);
}

/** Creates a folder; true when it was created (so its parent needs flushing). */
export async function ensureDir(dir: string): Promise<boolean> {
  try {
    await mkdir(dir);
    return true;
  } catch (error) {
    if (hasCode(error, "EEXIST")) return false;
    if (!hasCode(error, "ENOENT")) throw error;
  }
  // The base folder itself does not exist yet: this is the store's first write.
  await mkdir(dirname(dir), { recursive: true });
  await mkdir(dir);
  return true;
}

/** Writes the outputs not stored yet into the run's outputs folder, named by `names`. */
export async function writeOutputs(
  dir: string,
  outputs: readonly OutputRecord[],
  names: string[],
  fsync: boolean,
): Promise<void> {
  const folder = join(dir, OUTPUTS);
  const createdFolder = await ensureDir(folder);
  const written = new Set<string>();
  for (const [i, { body }] of outputs.entries()) {
    const name = names[i] as string;
    if (written.has(name) || (!createdFolder && (await exists(join(folder, name))))) continue;
    // Same hash, same bytes: replacing a copy written concurrently is harmless.
    await replaceFile(folder, name, body, fsync);
    written.add(name);
  }
  const wrote = written.size > 0;
  // Flushed before the checkpoint is written, so a durable checkpoint implies durable outputs.
  if (wrote) await syncDir(folder, fsync);
  if (createdFolder) await syncDir(dir, fsync);
}

/** Removes the run folder once it holds no checkpoint and no output. */
export async function dropIfEmpty(basePath: string, dir: string, fsync: boolean): Promise<void> {
  const names = await readdirIfPresent(dir);
  if (!names || names.some((n) => n !== OUTPUTS)) return;
  try {
    if (names.length > 0) await rmdir(join(dir, OUTPUTS));
    await rmdir(dir);
  } catch (error) {
    // Something was added meanwhile (or `outputs` is not a folder): the run is not empty after all.
    if (hasCode(error, "ENOTEMPTY", "EEXIST", "ENOTDIR", "ENOENT")) return;
    throw error;
  }
  await syncDir(basePath, fsync);
}
