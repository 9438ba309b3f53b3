/**
 * The file store's meta values (`getMeta`/`putMeta`): `basePath/.meta/<key>.value`, the value's
 * text, replaced by temp file and rename (flushed with the folder when the store flushes), so a
 * reader sees the old value or the new one, never half of one. The `.value` suffix keeps the
 * valid keys `.` and `..` plain file names. A dot-folder, so no listing takes it for a run.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { replaceFile } from "../../util/atomic-file.js";
import { hasCode } from "../../util/fs-util.js";
import { ensureDir, syncDir } from "./run-folders.js";

/** Meta values, inside the base folder. */
export const META_DIR = ".meta";

const fileName = (key: string) => `${key}.value`;

/** The value of `key`; undefined when unset. */
export function readMeta(basePath: string, key: string): string | undefined {
  try {
    return readFileSync(join(basePath, META_DIR, fileName(key)), "utf8");
  } catch (error) {
    if (hasCode(error, "ENOENT", "ENOTDIR")) return undefined;
    throw error;
  }
}

/** Sets `key` durably (last write wins). */
export async function writeMeta(basePath: string, key: string, value: string, fsync: boolean): Promise<void> {
  const dir = join(basePath, META_DIR);
  if (ensureDir(dir)) await syncDir(basePath, fsync);
  await replaceFile(dir, fileName(key), value, fsync);
  await syncDir(dir, fsync);
}
