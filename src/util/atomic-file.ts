import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Temp file name beside `target`: hidden, unique, and recognizable as a leftover. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${randomBytes(6).toString("hex")}.tmp`);
}

/** fsyncs a folder so a rename or link inside it survives a crash. */
export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `data` to a unique temp file beside `target` and fsyncs it; returns the temp path. */
export async function writeTemp(target: string, data: string | Uint8Array, durable = true): Promise<string> {
  const temp = tempPathFor(target);
  const handle = await open(temp, "wx");
  try {
    await handle.writeFile(data);
    if (durable) await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  } finally {
    await handle.close().catch(() => undefined);
  }
  return temp;
}

/**
 * Replaces `target` atomically and durably: temp file, fsync, rename, fsync the folder.
 * A reader sees the old file or the new one, never a half-written one.
 */
export async function writeFileAtomic(
  target: string,
  data: string | Uint8Array,
  durable = true,
): Promise<void> {
  const temp = await writeTemp(target, data, durable);
  try {
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  if (durable) await fsyncDir(dirname(target));
}
