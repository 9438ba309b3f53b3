/**
 * The file store's checkpoint-id index: one small marker file per checkpoint id,
 * `basePath/.ids/<2 hex chars of the id's SHA-256>/<checkpointId>`, holding `<run>/<file name>`.
 * A lookup by id opens one marker instead of listing run folders, and a write claims its id by
 * creating the marker create-only, which is the uniqueness check across runs and processes.
 *
 * Markers are a cache checked against the real files: one whose file is gone is stale and
 * sends the caller back to listing. A run folder whose `outputs/.indexed` flag exists has a
 * marker for every checkpoint this store wrote into it (written before the checkpoint file);
 * runs without the flag (older stores) are listed as before until `rebuildIndexes` marks them.
 * Markers are not flushed one by one: a marker lost in a crash only makes a lookup list again.
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { unlinkIfPresent } from "../../util/atomic-file.js";
import { hasCode, readdirIfPresent } from "../../util/fs-util.js";
import { isFileOf, parseCheckpointFileName } from "./checkpoint-file.js";
import { ensureDir } from "./run-folders.js";
import { INDEXED, type Located, OUTPUTS, runFolder } from "./run-paths.js";

/** The index folder under the base folder. */
export const IDS_DIR = ".ids";

/** True when the run folder carries the indexed flag. */
export function isIndexed(dir: string): boolean {
  return existsSync(join(dir, OUTPUTS, INDEXED));
}

function shardOf(basePath: string, checkpointId: string): string {
  const shard = createHash("sha256").update(checkpointId).digest("hex").slice(0, 2);
  return join(basePath, IDS_DIR, shard);
}

function markerText(found: Located): string {
  return `${found.pipelineId}/${found.name}\n`;
}

/** Where the id's marker says its file is; undefined without a (well-formed) marker. */
export function readMarker(basePath: string, checkpointId: string): Located | undefined {
  let text: string;
  try {
    text = readFileSync(join(shardOf(basePath, checkpointId), checkpointId), "utf8");
  } catch (error) {
    if (hasCode(error, "ENOENT", "ENOTDIR", "EISDIR")) return undefined;
    throw error;
  }
  const slash = text.indexOf("/");
  if (slash < 1 || !text.endsWith("\n")) return undefined;
  const pipelineId = text.slice(0, slash);
  const name = text.slice(slash + 1, -1);
  if (!isFileOf(name, checkpointId)) return undefined;
  try {
    return { pipelineId, dir: runFolder(basePath, pipelineId), name };
  } catch {
    // A marker edited to name something outside the store is no marker.
    return undefined;
  }
}

/** True when the located file is there. */
export function isPresent(found: Located): boolean {
  return existsSync(join(found.dir, found.name));
}

/**
 * Creates the id's marker pointing at `found`, create-only: `true` when this call created it,
 * `false` when a marker for the id exists already (its content is left as it is).
 */
export function claimMarker(basePath: string, checkpointId: string, found: Located): boolean {
  const shard = shardOf(basePath, checkpointId);
  const path = join(shard, checkpointId);
  let fd: number;
  try {
    fd = openSync(path, "wx");
  } catch (error) {
    if (hasCode(error, "EEXIST")) return false;
    if (!hasCode(error, "ENOENT")) throw error;
    // The shard's first marker: made once, then created as above.
    ensureDir(join(basePath, IDS_DIR));
    ensureDir(shard);
    try {
      fd = openSync(path, "wx");
    } catch (again) {
      if (hasCode(again, "EEXIST")) return false;
      throw again;
    }
  }
  try {
    writeSync(fd, markerText(found));
  } catch (error) {
    closeSync(fd);
    unlinkIfPresent(path);
    throw error;
  }
  closeSync(fd);
  return true;
}

/** Points the id's marker at `found`, replacing a stale one. */
export function setMarker(basePath: string, checkpointId: string, found: Located): void {
  const shard = shardOf(basePath, checkpointId);
  ensureDir(join(basePath, IDS_DIR));
  ensureDir(shard);
  writeFileSync(join(shard, checkpointId), markerText(found));
}

/** Removes the id's marker if it still points at `found` (another run may have claimed the id since). */
export function dropMarker(basePath: string, checkpointId: string, found: Located): void {
  const marked = readMarker(basePath, checkpointId);
  if (marked && marked.pipelineId === found.pipelineId && marked.name === found.name) {
    unlinkIfPresent(join(shardOf(basePath, checkpointId), checkpointId));
  }
}

/** Writes the run's indexed flag (its outputs folder must exist). */
export function flagIndexed(dir: string): void {
  writeFileSync(join(dir, OUTPUTS, INDEXED), "");
}

/**
 * Points the markers of every checkpoint file in the run folder at it and flags the run indexed
 * (for `rebuildIndexes`: runs an older cairn wrote, files added or renamed by hand). Returns what
 * it changed, for the repair report.
 */
export function indexRun(basePath: string, pipelineId: string, dir: string): string[] {
  const names = readdirIfPresent(dir);
  if (!names) return [];
  // Several files of one id: the one a listing lookup would find (the highest name).
  const newest = new Map<string, string>();
  for (const name of names.sort()) {
    const parsed = parseCheckpointFileName(name);
    if (parsed) newest.set(parsed.checkpointId, name);
  }
  let set = 0;
  for (const [id, name] of newest) {
    const marked = readMarker(basePath, id);
    if (marked?.pipelineId === pipelineId && marked.name === name) continue;
    if (marked && marked.pipelineId !== pipelineId && isPresent(marked)) continue;
    setMarker(basePath, id, { pipelineId, dir, name });
    set++;
  }
  const done = set > 0 ? [`pointed ${set} checkpoint id marker(s) at the files of run ${pipelineId}`] : [];
  if (newest.size > 0 && !isIndexed(dir)) {
    ensureDir(join(dir, OUTPUTS));
    flagIndexed(dir);
    done.push(`flagged run ${pipelineId} as indexed: lookups by id no longer list its folder`);
  }
  return done;
}

/** Drops the markers pointing at the checkpoint files among `names` (a run moved out of the store). */
export function dropMarkers(
  basePath: string,
  pipelineId: string,
  dir: string,
  names: readonly string[],
): void {
  for (const name of names) {
    const parsed = parseCheckpointFileName(name);
    if (parsed) dropMarker(basePath, parsed.checkpointId, { pipelineId, dir, name });
  }
}
