/**
 * Where things are in the file store: a run's folder under the base folder, the run folders
 * themselves, and the file holding a checkpoint of a given id. A checkpoint id usually starts
 * with its run id, so the run folders it points to are searched before any other.
 */
import type { Dirent } from "node:fs";
import { readFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { CheckpointCorruptError, InvalidNameError } from "../../core/errors.js";
import { isValidName } from "../../core/ids.js";
import { hasCode, readdirIfPresent } from "../../util/fs-util.js";
import type { CheckpointRecord } from "../types.js";
import { candidateRuns, isFileOf, parseCheckpointFile, parseCheckpointFileName } from "./checkpoint-file.js";

/** The run's subfolder holding its outputs. */
export const OUTPUTS = "outputs";

/**
 * The newest-checkpoint hint, in the outputs folder: the file name of the run's newest
 * checkpoint, kept by fenced writes (see `FileStore.putCheckpoint`). Not an output: its name is
 * not a hash, so output listings never see it.
 */
export const HEAD = ".head";

/**
 * The indexed flag, in the outputs folder: every checkpoint of the run has a marker in the id
 * index (`id-index.ts`). Like the hint, not an output.
 */
export const INDEXED = ".indexed";

/** Where a checkpoint's file is. */
export interface Located {
  pipelineId: string;
  dir: string;
  name: string;
}

/** The run's folder; refuses a name that would not be a plain run folder of the base folder. */
export function runFolder(basePath: string, pipelineId: string): string {
  return childFolder(basePath, "pipelineId", pipelineId);
}

/**
 * `parent/name`, refused unless it is a direct child whose name starts with no dot. Names are
 * checked against the name pattern once, by `GuardedStore`; this is the path check the store
 * keeps itself, so that no name can reach outside its folder or into the store's own
 * dot-folders (`.leases`, `.runs`).
 */
export function childFolder(parent: string, field: string, name: string): string {
  const dir = resolve(parent, String(name));
  if (dirname(dir) !== parent || basename(dir) !== name || name.startsWith(".")) {
    throw new InvalidNameError(field, name, "it is not a plain folder name inside the store's folder");
  }
  return dir;
}

/** The folder's names, read on the first call only (an empty list when it does not exist). */
export function lazyNames(dir: string): () => string[] {
  let names: string[] | undefined;
  return () => {
    names ??= readdirIfPresent(dir) ?? [];
    return names;
  };
}

/** Lists the run folders, sorted. */
export async function listRunIds(basePath: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(basePath, { withFileTypes: true });
  } catch (error) {
    if (hasCode(error, "ENOENT")) return [];
    throw error;
  }
  return entries
    .filter((e) => e.isDirectory() && isValidName(e.name))
    .map((e) => e.name)
    .sort();
}

/**
 * True when a file of that id exists in the run (whose folder's `names` the caller has read) or
 * in any other run folder its id points to.
 */
export async function holds(
  basePath: string,
  pipelineId: string,
  checkpointId: string,
  names: readonly string[],
): Promise<boolean> {
  if (names.some((n) => isFileOf(n, checkpointId))) return true;
  for (const runId of candidateRuns(checkpointId)) {
    if (runId !== pipelineId && (await findIn(basePath, runId, checkpointId))) return true;
  }
  return false;
}

/** Finds the file of a checkpoint id, in the run folders its id points to first. */
export async function locate(basePath: string, checkpointId: string): Promise<Located | undefined> {
  const tried = new Set<string>();
  for (const runId of candidateRuns(checkpointId)) {
    tried.add(runId);
    const found = await findIn(basePath, runId, checkpointId);
    if (found) return found;
  }
  // The id does not start with its run id (renamed, imported, hand-made): look everywhere.
  for (const runId of await listRunIds(basePath)) {
    if (tried.has(runId)) continue;
    const found = await findIn(basePath, runId, checkpointId);
    if (found) return found;
  }
  return undefined;
}

/** The file of a checkpoint id in one run folder, by listing it. */
export async function findIn(
  basePath: string,
  pipelineId: string,
  checkpointId: string,
): Promise<Located | undefined> {
  const dir = runFolder(basePath, pipelineId);
  let names: string[] | undefined;
  try {
    names = readdirIfPresent(dir);
  } catch (error) {
    // A candidate that is a plain file in the base folder is simply not a run.
    if (hasCode(error, "ENOTDIR")) return undefined;
    throw error;
  }
  const name = names
    ?.filter((n) => isFileOf(n, checkpointId))
    .sort()
    .at(-1);
  return name === undefined ? undefined : { pipelineId, dir, name };
}

/** Reads and parses a located checkpoint file. */
export async function readLocated({ pipelineId, dir, name }: Located): Promise<CheckpointRecord> {
  const path = join(dir, name);
  const parsed = parseCheckpointFileName(name);
  if (!parsed) throw new CheckpointCorruptError(undefined, `${path}: not a checkpoint file name`);
  // One synchronous read: for a page-cached file it is cheaper than readFile's thread-pool round trips.
  const text = readFileSync(path, "utf8");
  return parseCheckpointFile(text, { pipelineId, path, ...parsed });
}
