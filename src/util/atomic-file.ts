/**
 * Atomic, durable file writes (file store, export files). A file is first written in full to a temp file
 * beside its target (`.<name>.<random>.tmp`), flushed, and only then moved into place, so a
 * crash can leave a stray temp file but never a half-written target.
 */
import { randomBytes } from "node:crypto";
import { link, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { hasCode } from "./fs-util.js";

/** True for the temp files this module writes; readers skip them. */
export function isTempName(name: string): boolean {
  return name.startsWith(".") && name.endsWith(".tmp");
}

/** Flushes a folder's entries (new, renamed, removed files) to disk. */
export async function fsyncDir(dir: string): Promise<void> {
  // Windows cannot open a folder for fsync; there the rename is as durable as it gets.
  if (process.platform === "win32") return;
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Removes a file; a file that is already gone is fine. */
export async function removeIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if (hasCode(error, "ENOENT")) return false;
    throw error;
  }
}

/** Writes `data` to a new temp file in `dir` and returns its path; removes it on failure. */
async function writeTemp(dir: string, name: string, data: string, fsync: boolean): Promise<string> {
  const temp = join(dir, `.${name}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const handle = await open(temp, "wx");
    try {
      await handle.writeFile(data, "utf8");
      if (fsync) await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    await cleanup(temp, error);
  }
  return temp;
}

/** Removes a temp file after a failure, then rethrows the failure (not a cleanup error). */
async function cleanup(temp: string, error: unknown): Promise<never> {
  try {
    await removeIfPresent(temp);
  } catch {
    // The original failure is the one the caller must see; a leftover temp file is ignored by readers.
  }
  throw error;
}

/**
 * Writes `dir/name` atomically, replacing any existing file. The caller fsyncs `dir` afterwards
 * (once for a batch of writes) to make the rename durable.
 */
export async function replaceFile(dir: string, name: string, data: string, fsync: boolean): Promise<void> {
  const temp = await writeTemp(dir, name, data, fsync);
  try {
    await rename(temp, join(dir, name));
  } catch (error) {
    await cleanup(temp, error);
  }
}

/**
 * Writes `dir/name` atomically only if it does not exist yet; returns false when it does. The
 * hard link fails with EEXIST instead of replacing, which makes the check and the write one step.
 */
export async function createFile(dir: string, name: string, data: string, fsync: boolean): Promise<boolean> {
  const temp = await writeTemp(dir, name, data, fsync);
  try {
    await link(temp, join(dir, name));
  } catch (error) {
    if (hasCode(error, "EEXIST")) {
      await unlink(temp);
      return false;
    }
    await cleanup(temp, error);
  }
  await unlink(temp);
  return true;
}
