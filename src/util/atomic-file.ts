/**
 * Atomic, durable file writes (file store, export files, backups, reports, graphs). A file is first written in full to a temp file
 * beside its target (`.<name>.<random>.tmp`), flushed, and only then moved into place, so a
 * crash can leave a stray temp file but never a half-written target.
 *
 * Opening, writing into the page cache, renaming and linking are synchronous system calls: on a
 * local disk each takes microseconds, less than a round trip through libuv's thread pool, and a
 * checkpoint write makes a dozen of them. Flushes (`fsync`), which wait for the disk and can take
 * milliseconds, run on the thread pool so the event loop stays free, and the temp files of one
 * write are flushed together rather than one after another.
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsync, linkSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { mkdir, open } from "node:fs/promises";
import { basename, dirname, join, relative, sep } from "node:path";
import { promisify } from "node:util";
import { hasCode } from "./fs-util.js";
import { durableTempName, removeStaleTemps } from "./stale-temps.js";

const fsyncFd = promisify(fsync);

/** True for the temp files this module writes; readers skip them. */
export function isTempName(name: string): boolean {
  return name.startsWith(".") && name.endsWith(".tmp");
}

/** Flushes a folder's entries (new, renamed, removed files) to disk. */
export async function fsyncDir(dir: string): Promise<void> {
  // Windows cannot open a folder for fsync; there the rename is as durable as it gets.
  if (process.platform === "win32") return;
  const fd = openSync(dir, "r");
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/** Flushes a file's content to disk (a file written without flushing, flushed later in a batch). */
export async function fsyncFile(path: string): Promise<void> {
  const fd = openSync(path, "r+");
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/** Removes a file now (one system call); false when it was already gone. */
export function unlinkIfPresent(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (error) {
    if (hasCode(error, "ENOENT")) return false;
    throw error;
  }
}

/** A file to write: its folder, its final name and its content. */
export interface FileWrite {
  dir: string;
  name: string;
  data: string | Uint8Array;
}

/** A written (and, when asked, flushed) temp file, not yet moved into place. */
export interface TempFile extends FileWrite {
  /** Full path of the temp file. */
  temp: string;
  /** Full path of the target. */
  target: string;
}

/**
 * Files held open at once by {@link writeTemps}: a checkpoint with thousands of new outputs must
 * not run into the common limit of 1,024 open files per process (EMFILE).
 */
export const OPEN_FILES_PER_BATCH = 64;

/**
 * Writes every file to a temp file beside its target and flushes them, `OPEN_FILES_PER_BATCH` at
 * a time, each batch's flushes together. On failure no temp file is left behind and the failure
 * is thrown.
 */
export async function writeTemps(
  files: readonly FileWrite[],
  flush: boolean,
  batchSize = OPEN_FILES_PER_BATCH,
): Promise<TempFile[]> {
  const temps: TempFile[] = [];
  const fds: number[] = [];
  try {
    for (let start = 0; start < files.length; start += batchSize) {
      for (const file of files.slice(start, start + batchSize)) {
        const temp = join(file.dir, `.${file.name}.${randomBytes(6).toString("hex")}.tmp`);
        const fd = openSync(temp, "wx");
        fds.push(fd);
        temps.push({ ...file, temp, target: join(file.dir, file.name) });
        writeAll(fd, file.data);
      }
      if (flush) await Promise.all(fds.map((fd) => fsyncFd(fd)));
      for (const fd of fds.splice(0)) closeSync(fd);
    }
    return temps;
  } catch (error) {
    discardTemps(temps, fds);
    throw error;
  }
}

function writeAll(fd: number, data: string | Uint8Array): void {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  let offset = 0;
  while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
}

/** Removes temp files after a failure; the original failure is the one the caller must see. */
export function discardTemps(temps: readonly TempFile[], fds: readonly number[] = []): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // Closing can only fail for a bad descriptor; the write error is what matters.
    }
  }
  for (const { temp } of temps) {
    try {
      unlinkIfPresent(temp);
    } catch {
      // A leftover temp file is ignored by readers.
    }
  }
}

/** Moves a temp file onto its target, replacing any file there. */
export function moveIntoPlace(file: TempFile): void {
  try {
    renameSync(file.temp, file.target);
  } catch (error) {
    discardTemps([file]);
    throw error;
  }
}

/**
 * Moves a temp file to its target only if the target does not exist yet; false when it does. The
 * hard link fails with EEXIST instead of replacing, which makes the check and the write one step.
 */
export function linkIntoPlace(file: TempFile): boolean {
  try {
    linkSync(file.temp, file.target);
  } catch (error) {
    discardTemps([file]);
    if (hasCode(error, "EEXIST")) return false;
    throw error;
  }
  unlinkSync(file.temp);
  return true;
}

/**
 * Writes `dir/name` atomically, replacing any existing file. The caller fsyncs `dir` afterwards
 * (once for a batch of writes) to make the rename durable.
 */
export async function replaceFile(dir: string, name: string, data: string, fsync: boolean): Promise<void> {
  const [temp] = await writeTemps([{ dir, name, data }], fsync);
  moveIntoPlace(temp as TempFile);
}

/**
 * Writes `dir/name` atomically only if it does not exist yet; returns false when it does.
 * The caller fsyncs `dir` afterwards.
 */
export async function createFile(dir: string, name: string, data: string, fsync: boolean): Promise<boolean> {
  const [temp] = await writeTemps([{ dir, name, data }], fsync);
  return linkIntoPlace(temp as TempFile);
}

/**
 * Writes the file at `path` so that it is there, whole, once this resolves, even if the machine
 * loses power right after: a temp file beside it, fsync, rename, fsync of the folder. Missing
 * folders are created, and each one's own entry is flushed too. Every file cairn writes outside
 * a store (exports, backups, reports, graphs) goes through here. The temp file's name says which
 * process writes it (`stale-temps.ts`), so temp files a killed writer left in the folder are
 * removed first, and never one a live writer is still writing.
 */
export async function writeFileDurably(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  const created = await mkdir(dir, { recursive: true });
  if (created === undefined) removeStaleTemps(dir);
  const temp = join(dir, durableTempName(basename(path)));
  const fd = openSync(temp, "wx");
  try {
    writeAll(fd, data);
    await fsyncFd(fd);
  } catch (error) {
    discardTemps([{ dir, name: basename(path), data, temp, target: path }], [fd]);
    throw error;
  }
  closeSync(fd);
  moveIntoPlace({ dir, name: basename(path), data, temp, target: path });
  await fsyncFolders(dir, created);
}

/** Flushes `dir`, and when `mkdir` created folders (`created`: the outermost), each one's entry. */
async function fsyncFolders(dir: string, created: string | undefined): Promise<void> {
  await fsyncDir(dir);
  if (created !== undefined) {
    // A new folder's entry lives in its parent: flush every parent from the innermost one up.
    const levels = relative(dirname(created), dir).split(sep).length;
    let folder = dirname(dir);
    for (let i = 1; i <= levels; i++, folder = dirname(folder)) await fsyncDir(folder);
  }
}

/** Appends text to a file being written by {@link writeFileDurablyStreaming}. */
export type WriteChunk = (text: string) => Promise<void>;

/**
 * {@link writeFileDurably} for content produced piece by piece: `produce` writes chunks to the
 * temp file as it goes, so memory holds one chunk, not the whole file. The file is moved into
 * place (fsync, rename, fsync of the folder) only when `produce` resolves; if it throws, the
 * temp file is removed, any existing file at `path` is left as it was, and the error is thrown.
 */
export async function writeFileDurablyStreaming<T>(
  path: string,
  produce: (write: WriteChunk) => Promise<T>,
): Promise<T> {
  const dir = dirname(path);
  const created = await mkdir(dir, { recursive: true });
  if (created === undefined) removeStaleTemps(dir);
  const name = basename(path);
  const file: TempFile = { dir, name, data: "", temp: join(dir, durableTempName(name)), target: path };
  const handle = await open(file.temp, "wx");
  let result: T;
  try {
    result = await produce(async (text) => {
      const bytes = Buffer.from(text, "utf8");
      let offset = 0;
      while (offset < bytes.length) offset += (await handle.write(bytes, offset)).bytesWritten;
    });
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {
      // Closing can only fail for a bad descriptor; the write error is what matters.
    });
    discardTemps([file]);
    throw error;
  }
  await handle.close();
  moveIntoPlace(file);
  await fsyncFolders(dir, created);
  return result;
}
