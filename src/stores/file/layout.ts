/**
 * The file store's layout version: `<basePath>/.cairn-layout.json`, `{"layout":2}`. It says how
 * the folders and files under the base folder are arranged, so that an older cairn facing a
 * store a newer cairn rearranged refuses it (`FormatTooNewError`) instead of misreading it. It is
 * read when the store opens and written, create-only, by the first write of an instance; a
 * store an older cairn wrote simply has none until then. Its name starts with a dot and it is a
 * file, so no listing takes it for a run.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointCorruptError, FormatTooNewError } from "../../core/errors.js";
import { createFile, replaceFile } from "../../util/atomic-file.js";
import { readJsonFile } from "../../util/fs-util.js";
import { syncDir } from "./run-folders.js";

/**
 * The layout this cairn writes and reads. 2 added the change feed (`.feed/`, `.meta/`): every
 * write must append to the feed, so a cairn that knows only layout 1 (and would write without
 * it, leaving changes the feed silently lacks) must refuse the store. Layout 1 is read as is
 * and raised to 2 by the first write.
 */
export const FILE_LAYOUT_VERSION = 2;

/** The layout file's name in the base folder. */
export const LAYOUT_FILE = ".cairn-layout.json";

/** The layout version recorded in the base folder; undefined when none is (yet). */
export function readLayout(basePath: string): number | undefined {
  const path = join(basePath, LAYOUT_FILE);
  const file = readJsonFile(path);
  if (file === undefined) return undefined;
  const { text } = file;
  const layout = (file.value as { layout?: unknown } | null | undefined)?.layout;
  if (typeof layout !== "number" || !Number.isInteger(layout) || layout < 1) {
    throw new CheckpointCorruptError(undefined, `${path} holds no layout version: ${text.slice(0, 100)}`);
  }
  return layout;
}

/** A store's layout file: checked on open, written before the instance's first write. */
export class StoreLayout {
  private written: Promise<void> | undefined;

  constructor(
    private readonly basePath: string,
    private readonly fsync: boolean,
  ) {}

  /** Refuses a base folder whose layout is newer than this cairn's. */
  check(): void {
    checkLayout(this.basePath);
  }

  /** Writes the layout file once per instance; a failed attempt is tried again next time. */
  write(): Promise<void> {
    this.written ??= writeLayout(this.basePath, this.fsync).catch((error: unknown) => {
      this.written = undefined;
      throw error;
    });
    return this.written;
  }
}

/** Refuses a base folder whose layout is newer than this cairn's. */
export function checkLayout(basePath: string): void {
  const found = readLayout(basePath);
  if (found !== undefined && found > FILE_LAYOUT_VERSION) {
    throw new FormatTooNewError("store layout", join(basePath, LAYOUT_FILE), found, FILE_LAYOUT_VERSION);
  }
}

/**
 * Writes the layout file unless one is there (temp file, flush, hard link: never replacing a
 * newer cairn's), then checks the one that is there.
 */
export async function writeLayout(basePath: string, fsync: boolean): Promise<void> {
  await mkdir(basePath, { recursive: true });
  const text = `${JSON.stringify({ layout: FILE_LAYOUT_VERSION })}\n`;
  if (await createFile(basePath, LAYOUT_FILE, text, fsync)) {
    await syncDir(basePath, fsync);
    return;
  }
  checkLayout(basePath);
  // An older layout: raised before this instance writes anything an older cairn would miss.
  if ((readLayout(basePath) ?? 0) < FILE_LAYOUT_VERSION) {
    await replaceFile(basePath, LAYOUT_FILE, text, fsync);
    await syncDir(basePath, fsync);
  }
}
