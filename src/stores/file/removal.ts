/**
 * The file store's deletions inside one run folder: checkpoint files by id (with their id markers
 * and, for retention, the head record's tombstone), outputs by hash, and corrupt entries. Kept apart from
 * `file-store.ts`, which decides the locking around them.
 */
import { basename, join } from "node:path";
import { CheckpointConflictError } from "../../core/errors.js";
import { unlinkIfPresent } from "../../util/atomic-file.js";
import { readdirIfPresent } from "../../util/fs-util.js";
import type { CorruptEntry } from "../types.js";
import { outputFileName, parseCheckpointFileName } from "./checkpoint-file.js";
import { entryPath, removeEntry } from "./corrupt-entries.js";
import { recordPruned } from "./head-record.js";
import { dropMarker } from "./id-index.js";
import { parses } from "./listing.js";
import { dropIfEmpty, syncDir } from "./run-folders.js";
import { OUTPUTS } from "./run-paths.js";

/** Where a deletion happens and how durably. */
export interface RunFolder {
  basePath: string;
  pipelineId: string;
  dir: string;
  fsync: boolean;
}

/** A checkpoint file about to be unlinked. */
export interface FoundCheckpoint {
  path: string;
  checkpointId: string;
  sequence: number;
}

/**
 * Unlinks the checkpoint files of `ids` in the run folder (corrupt ones too: by file name) and
 * returns how many ids existed. With `retention`, the head record's tombstone names the highest
 * sequence removed; the head itself never moves back. `before` is told which files go, oldest
 * first, before the first one does (the feed declares them).
 */
export async function removeCheckpointFiles(
  run: RunFolder,
  ids: ReadonlySet<string>,
  retention: boolean,
  before?: (found: FoundCheckpoint[]) => Promise<void>,
): Promise<number> {
  const { basePath, pipelineId, dir, fsync } = run;
  const names = readdirIfPresent(dir);
  if (!names) return 0;
  const found: (FoundCheckpoint & { name: string })[] = [];
  for (const name of [...names].sort()) {
    const parsed = parseCheckpointFileName(name);
    if (parsed && ids.has(parsed.checkpointId)) found.push({ ...parsed, name, path: join(dir, name) });
  }
  if (found.length === 0) return 0;
  await before?.(found.map(({ path, checkpointId, sequence }) => ({ path, checkpointId, sequence })));
  const deleted = new Set<string>();
  let through = -1;
  for (const { name, path, checkpointId, sequence } of found) {
    if (unlinkIfPresent(path)) {
      deleted.add(checkpointId);
      // After the file: a crash in between leaves a stale marker, which lookups pass over.
      dropMarker(basePath, checkpointId, { pipelineId, dir, name });
      through = Math.max(through, sequence);
    }
  }
  if (deleted.size > 0) {
    await syncDir(dir, fsync);
    if (retention) await recordPruned(dir, through, fsync);
    await dropIfEmpty(basePath, dir, fsync);
  }
  return deleted.size;
}

/** Unlinks the output files of `hashes`; returns how many existed. */
export async function removeOutputFiles(run: RunFolder, hashes: readonly string[]): Promise<number> {
  const { basePath, dir, fsync } = run;
  const outputs = join(dir, OUTPUTS);
  let deleted = 0;
  for (const name of [...new Set(hashes)].map(outputFileName)) {
    if (unlinkIfPresent(join(outputs, name))) deleted++;
  }
  if (deleted > 0) {
    await syncDir(outputs, fsync);
    await dropIfEmpty(basePath, dir, fsync);
  }
  return deleted;
}

/** Unlinks a corrupt entry's file from its run folder, once sure it still does not parse. */
export async function removeCorruptFile(run: RunFolder, entry: CorruptEntry): Promise<void> {
  const { basePath, pipelineId, dir, fsync } = run;
  const path = entryPath(dir, entry);
  const name = basename(path);
  const parsed = parseCheckpointFileName(name);
  if (parsed && (await parses({ pipelineId, dir, name }))) {
    throw new CheckpointConflictError(
      parsed.checkpointId,
      `${path} parses as a checkpoint now; it is not removed as a corrupt entry`,
    );
  }
  await removeEntry(path, entry);
  await syncDir(dir, fsync);
  await dropIfEmpty(basePath, dir, fsync);
}
