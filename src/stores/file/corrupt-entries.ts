/**
 * Corrupt entries of the file store: reading one for a backup, and removing it. A listing entry
 * names its file by path; the path is used only after checking that it is a plain entry of the
 * run's own folder, so a forged entry cannot read or delete anything else.
 */
import { lstat, readdir, readFile, readlink, rmdir, unlink } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { CheckpointNotFoundError, InvalidArgumentError } from "../../core/errors.js";
import { isTempName } from "../../util/atomic-file.js";
import { hasCode } from "../../util/fs-util.js";
import type { CorruptEntry } from "../types.js";

const gone = (entry: CorruptEntry) =>
  new CheckpointNotFoundError(
    entry.checkpointId ?? entry.location,
    `The corrupt entry ${entry.location} is no longer in the store`,
  );

/**
 * The entry's absolute path, refused unless it is a direct entry of `runDir` that listings
 * report (temp files never are). The `outputs` folder can pass: only an empty folder is removed.
 */
export function entryPath(runDir: string, entry: CorruptEntry): string {
  const path = resolve(runDir, String(entry.location));
  const name = basename(path);
  if (dirname(path) !== runDir || isTempName(name)) {
    throw new InvalidArgumentError(
      `${JSON.stringify(entry.location)} is not an entry of the run folder ${runDir}`,
    );
  }
  return path;
}

/** The stored bytes of a file entry as text; a folder or a link is described in JSON instead. */
export async function readEntry(path: string, entry: CorruptEntry): Promise<string> {
  try {
    const info = await lstat(path);
    if (info.isFile()) return await readFile(path, "utf8");
    // Never followed: a link could point anywhere on the machine.
    if (info.isSymbolicLink()) return JSON.stringify({ type: "symlink", target: await readlink(path) });
    if (info.isDirectory())
      return JSON.stringify({ type: "directory", entries: (await readdir(path)).sort() });
    return JSON.stringify({ type: "other", size: info.size });
  } catch (error) {
    if (hasCode(error, "ENOENT")) throw gone(entry);
    throw error;
  }
}

/** Removes a file or link entry, or an empty folder; a folder with content is left to a person. */
export async function removeEntry(path: string, entry: CorruptEntry): Promise<void> {
  try {
    if ((await lstat(path)).isDirectory()) await rmdir(path);
    else await unlink(path);
  } catch (error) {
    if (hasCode(error, "ENOENT")) throw gone(entry);
    if (hasCode(error, "ENOTEMPTY", "EEXIST")) {
      throw new InvalidArgumentError(
        `${path} is a folder with content; cairn removes only what it could have written: remove it by hand`,
      );
    }
    throw error;
  }
}
