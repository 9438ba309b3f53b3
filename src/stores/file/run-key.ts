/**
 * The file store's run key record, `outputs/.run-key` in the run's folder: the record's text as
 * UTF-8. Inside the run folder so that an import publishes it with the run in one rename, and
 * a delete moves it with the run; not a hash, so output listings never see it. Written by
 * temp file and rename under the run's lock; destroyed by overwriting its bytes with zeros
 * (flushed) before it is unlinked, so the key does not stay readable in the freed blocks of a
 * plain overwrite-in-place filesystem (see the README, "Secure deletion", for what this
 * cannot reach: copy-on-write filesystems, SSD remapping, snapshots and backups).
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  fsync,
  opendirSync,
  openSync,
  readFileSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { fsyncDir, isTempName, replaceFile, unlinkIfPresent } from "../../util/atomic-file.js";
import { hasCode } from "../../util/fs-util.js";
import { HEAD_RECORD } from "./head-record.js";
import { ensureDir, syncDir } from "./run-folders.js";
import { HEAD, INDEXED, OUTPUTS } from "./run-paths.js";

const fsyncFd = promisify(fsync);

/** The key record's name in the run's outputs folder. */
export const RUN_KEY = ".run-key";

/** Where a run folder keeps its key record. */
export const runKeyPath = (dir: string): string => join(dir, OUTPUTS, RUN_KEY);

/** The run's key record; undefined when it has none. */
export function readRunKey(dir: string): string | undefined {
  try {
    return readFileSync(runKeyPath(dir), "utf8");
  } catch (error) {
    if (hasCode(error, "ENOENT", "ENOTDIR")) return undefined;
    throw error;
  }
}

/**
 * Replaces (or creates, with the run's folders) the run's key record; the caller holds the run's
 * lock. A record it replaces is scrubbed after the new one is in place: never before, so a crash
 * leaves the old record or the new one, never none.
 */
export async function writeRunKey(
  basePath: string,
  dir: string,
  record: string,
  fsync: boolean,
): Promise<void> {
  const outputs = join(dir, OUTPUTS);
  const madeRun = ensureDir(dir);
  const madeOutputs = ensureDir(outputs);
  let old: number | undefined;
  try {
    old = openSync(runKeyPath(dir), "r+");
  } catch (error) {
    if (!hasCode(error, "ENOENT")) throw error;
  }
  try {
    await replaceFile(outputs, RUN_KEY, record, fsync);
    await syncDir(outputs, fsync);
    if (madeOutputs) await syncDir(dir, fsync);
    if (madeRun) await syncDir(basePath, fsync);
    // The replaced file's inode lives on through `old` until closed: its bytes are zeroed there.
    if (old !== undefined) await zeroFile(old);
  } finally {
    if (old !== undefined) closeSync(old);
  }
}

/** Overwrites an open file's bytes with zeros of the same length and flushes them to disk. */
async function zeroFile(fd: number): Promise<void> {
  const size = fstatSync(fd).size;
  const zeros = Buffer.alloc(Math.min(size, 65_536));
  for (let offset = 0; offset < size; ) {
    offset += writeSync(fd, zeros, 0, Math.min(zeros.length, size - offset), offset);
  }
  // Always flushed, whatever the store's fsync option: unflushed zeros of a file about to be
  // unlinked may never reach the disk, which would leave the old bytes there.
  await fsyncFd(fd);
}

/**
 * Destroys a key record file: its bytes overwritten with zeros and flushed, then unlinked (the
 * folder flushed when the store flushes). False when there was none.
 */
export async function scrubKeyFile(path: string, fsync: boolean): Promise<boolean> {
  let fd: number;
  try {
    fd = openSync(path, "r+");
  } catch (error) {
    if (hasCode(error, "ENOENT", "ENOTDIR")) return false;
    throw error;
  }
  try {
    await zeroFile(fd);
  } finally {
    closeSync(fd);
  }
  unlinkIfPresent(path);
  if (fsync) await fsyncDir(dirname(path));
  return true;
}

/** The names a run folder's `outputs` holds for the store itself, which make no run content. */
const OWN = new Set([HEAD, INDEXED, HEAD_RECORD, RUN_KEY]);

/** True when every entry of `dir` passes `allowed`; undefined when `dir` is not a folder. */
function onlyEntries(dir: string, allowed: (name: string) => boolean): boolean | undefined {
  let folder: ReturnType<typeof opendirSync>;
  try {
    folder = opendirSync(dir);
  } catch (error) {
    if (hasCode(error, "ENOENT", "ENOTDIR")) return undefined;
    throw error;
  }
  try {
    // Read one entry at a time: a run with checkpoints is told apart by its first few entries.
    for (let entry = folder.readSync(); entry !== null; entry = folder.readSync()) {
      if (!allowed(entry.name)) return false;
    }
    return true;
  } finally {
    folder.closeSync();
  }
}

/**
 * True when the run folder holds a key record and nothing else of a run (no checkpoint, no
 * output): a run whose writer made its key first, or whose content was all deleted. Costs one
 * `stat` for a folder without a key record.
 */
export function holdsOnlyKey(dir: string): boolean {
  if (!existsSync(runKeyPath(dir))) return false;
  if (onlyEntries(dir, (name) => name === OUTPUTS || isTempName(name)) !== true) return false;
  return onlyEntries(join(dir, OUTPUTS), (name) => OWN.has(name) || isTempName(name)) === true;
}
