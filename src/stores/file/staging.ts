/**
 * Whole-run imports and deletions of the file store, each one step for readers:
 *
 *   basePath/.staging/<pipelineId>~<nonce>/owner.json   who stages it: {host, pid}
 *   basePath/.staging/<pipelineId>~<nonce>/run/         the run folder being built
 *   basePath/.trash/<pipelineId>~<nonce>/               the old run moved aside (or an empty
 *                                                       folder), until the index is updated
 *
 * An import writes the whole run folder under `.staging` and flushes it, without the run's lock;
 * then, under the lock, moves the old run folder (if any) into `.trash`, renames the staged one
 * into place, updates the runs index and removes the trash. A delete renames the run folder into
 * `.trash` first. So a run folder is always absent, old or complete. A kill leaves at most a
 * staging folder (whose owner is dead) and a trash entry, which `recoverLeftovers` resolves at
 * the next setup: a staged run whose trash entry exists was half-way through its publish and is
 * renamed into place; any other dead one is removed; every trash entry gets the run's index
 * entry recomputed and is removed. Readers never look into dot-folders.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CheckpointConflictError } from "../../core/errors.js";
import { fsyncDir } from "../../util/atomic-file.js";
import { hasCode, mapLimit, readdirIfPresent } from "../../util/fs-util.js";
import type { ImportedCheckpoint, ImportRunOptions } from "../types.js";
import { checkpointFileName, formatCheckpointFile, outputFileName } from "./checkpoint-file.js";
import { withRunLock } from "./file-leases.js";
import { HEAD_RECORD, headRecordText } from "./head-record.js";
import { dropMarkers, isPresent, readMarker, setMarker } from "./id-index.js";
import { listRun } from "./listing.js";
import { newestNames } from "./newest.js";
import { ensureDir, syncDir } from "./run-folders.js";
import { holdsOnlyKey, RUN_KEY, readRunKey, runKeyPath, scrubKeyFile } from "./run-key.js";
import { HEAD, holds, INDEXED, OUTPUTS, runFolder } from "./run-paths.js";
import type { RunsIndex } from "./runs-index.js";

/** Staged imports, inside the base folder. */
export const STAGING_DIR = ".staging";
/** Runs moved aside by an import or a delete, inside the base folder. */
export const TRASH_DIR = ".trash";
const RUN = "run";
const OWNER = "owner.json";
/** A staging folder of another host counts as abandoned after this long. */
const FOREIGN_STAGING_MS = 3_600_000;

const fsyncFd = promisify(fsync);
const ENTRY = /^([A-Za-z0-9][A-Za-z0-9._-]*)~([0-9a-f]{16})$/;

/** A staged run, ready to publish. */
export interface Staged {
  /** `.staging/<pipelineId>~<nonce>`. */
  folder: string;
  nonce: string;
}

async function writeFlushed(path: string, data: string, flush: boolean): Promise<void> {
  const fd = openSync(path, "wx");
  try {
    const bytes = Buffer.from(data, "utf8");
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    if (flush) await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes the run's folder (checkpoints, outputs, head hint) under `.staging`, every file and
 * folder flushed. On failure the staging folder is removed and the failure thrown.
 */
export async function stageRun(
  basePath: string,
  pipelineId: string,
  checkpoints: readonly ImportedCheckpoint[],
  flush: boolean,
  runKey?: string,
): Promise<Staged> {
  const staging = join(basePath, STAGING_DIR);
  ensureDir(staging);
  const nonce = randomBytes(8).toString("hex");
  const folder = join(staging, `${pipelineId}~${nonce}`);
  mkdirSync(folder);
  try {
    await writeFlushed(join(folder, OWNER), JSON.stringify({ host: hostname(), pid: process.pid }), flush);
    const run = join(folder, RUN);
    const outputs = join(run, OUTPUTS);
    mkdirSync(run);
    mkdirSync(outputs);
    const files = new Map<string, string>();
    for (const { record, outputs: introduced } of checkpoints) {
      const m = record.metadata;
      files.set(
        join(run, checkpointFileName(m.sequence, m.checkpoint_id)),
        formatCheckpointFile(m, record.body),
      );
      for (const o of introduced) files.set(join(outputs, outputFileName(o.hash)), o.body);
    }
    // The hint names the newest checkpoint, as its write would have left it: none after a tie.
    const newest = newestNames(
      checkpoints.map((c) => checkpointFileName(c.record.metadata.sequence, c.record.metadata.checkpoint_id)),
    );
    if (newest.length === 1) files.set(join(outputs, HEAD), `${newest[0]}\n`);
    // Published only after its markers exist (`publishRun`), so the run is indexed from the start.
    files.set(join(outputs, INDEXED), "");
    const last = checkpoints.at(-1);
    if (last) files.set(join(outputs, HEAD_RECORD), headRecordText(last.record.metadata));
    if (runKey !== undefined) files.set(join(outputs, RUN_KEY), runKey);
    await mapLimit([...files], ([path, data]) => writeFlushed(path, data, flush));
    if (flush) await mapLimit([outputs, run, folder, staging, basePath], fsyncDir);
    return { folder, nonce };
  } catch (error) {
    await rm(folder, { recursive: true, force: true });
    throw error;
  }
}

/** The run folder inside a staged import, renamed into place by the publish. */
export const stagedRunFolder = (staged: Staged): string => join(staged.folder, RUN);

/** Refuses an import the store cannot take: the run exists (without `replace`), or an id is another run's. */
export async function checkImport(
  basePath: string,
  pipelineId: string,
  checkpoints: readonly ImportedCheckpoint[],
  options: ImportRunOptions,
): Promise<void> {
  const dir = runFolder(basePath, pipelineId);
  // A folder holding only a key record is a new run's (its writer made the key first).
  if (!options.replace && readdirIfPresent(dir) !== undefined && !holdsOnlyKey(dir)) {
    throw new CheckpointConflictError(pipelineId, `Run ${pipelineId} already exists in the store`);
  }
  for (const { record } of checkpoints) {
    const id = record.metadata.checkpoint_id;
    if (await holds(basePath, pipelineId, id, [])) throw new CheckpointConflictError(id);
    // Held by a run its id does not name: only its marker tells (listing every run would not scale).
    const marked = readMarker(basePath, id);
    if (marked && marked.pipelineId !== pipelineId && isPresent(marked))
      throw new CheckpointConflictError(id);
  }
}

/**
 * Publishes a staged run in place of whatever the run folder holds; the caller holds the run's
 * lock and has checked that it may. `fresh`: the run has no folder (its index entry is added
 * first, as before a first checkpoint). With `keepKey` (no key record given), the key record of
 * a folder holding only that is copied into the staged run first; a replaced run's key record is
 * scrubbed with the old run.
 */
export async function publishRun(
  basePath: string,
  runs: RunsIndex,
  pipelineId: string,
  checkpoints: readonly ImportedCheckpoint[],
  staged: Staged,
  flush: boolean,
  keepKey = true,
): Promise<void> {
  const dir = runFolder(basePath, pipelineId);
  const trash = ensureTrash(basePath);
  const aside = join(trash, `${pipelineId}~${staged.nonce}`);
  const first = (checkpoints[0] as ImportedCheckpoint).record.metadata;
  const replacing = readdirIfPresent(dir) !== undefined;
  const pending = keepKey && replacing && holdsOnlyKey(dir) ? readRunKey(dir) : undefined;
  if (pending !== undefined) {
    const outputs = join(staged.folder, RUN, OUTPUTS);
    await writeFlushed(join(outputs, RUN_KEY), pending, flush);
    await syncDir(outputs, flush);
  }
  const names = new Set<string>();
  for (const { record } of checkpoints) {
    const name = checkpointFileName(record.metadata.sequence, record.metadata.checkpoint_id);
    names.add(name);
    // Before the publishing rename: a crash after it leaves no checkpoint without its marker.
    setMarker(basePath, record.metadata.checkpoint_id, { pipelineId, dir, name });
  }
  if (replacing) {
    renameSync(dir, aside);
  } else {
    await runs.add(pipelineId, first.pipeline_name, first.timestamp);
    // An empty trash entry is the journal: a kill from here on gets the index entry recomputed.
    mkdirSync(aside);
  }
  await syncDir(trash, flush);
  await syncDir(basePath, flush);
  try {
    renameSync(join(staged.folder, RUN), dir);
  } catch (error) {
    // Put back what was there; the caller removes the staging folder.
    if (replacing) renameSync(aside, dir);
    else await rm(aside, { recursive: true, force: true });
    throw error;
  }
  await syncDir(basePath, flush);
  await rm(staged.folder, { recursive: true, force: true });
  await runs.rebuild(
    pipelineId,
    checkpoints.map((c) => ({ ok: true, metadata: c.record.metadata })),
  );
  const replaced = (readdirIfPresent(aside) ?? []).filter((n) => !names.has(n));
  dropMarkers(basePath, pipelineId, dir, replaced);
  await scrubKeyFile(runKeyPath(aside), flush);
  await rm(aside, { recursive: true, force: true });
  await syncDir(trash, flush);
}

/** Deletes a run folder in one step for readers: renamed into `.trash`, then removed. */
export async function trashRun(
  basePath: string,
  runs: RunsIndex,
  pipelineId: string,
  flush: boolean,
): Promise<void> {
  const dir = runFolder(basePath, pipelineId);
  if (readdirIfPresent(dir) !== undefined) {
    const trash = ensureTrash(basePath);
    const aside = join(trash, `${pipelineId}~${randomBytes(8).toString("hex")}`);
    renameSync(dir, aside);
    await syncDir(basePath, flush);
    await runs.remove(pipelineId);
    // Best effort after the move: a marker left by a crash is stale, and lookups pass over it.
    dropMarkers(basePath, pipelineId, dir, readdirIfPresent(aside) ?? []);
    await rm(aside, { recursive: true, force: true });
    await syncDir(trash, flush);
    return;
  }
  await runs.remove(pipelineId);
}

function ensureTrash(basePath: string): string {
  const trash = join(basePath, TRASH_DIR);
  ensureDir(trash);
  return trash;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return hasCode(error, "EPERM");
  }
}

/** Whether the process that staged a folder is gone (on another host: judged by age). */
function abandoned(folder: string): boolean {
  try {
    const owner = JSON.parse(readFileSync(join(folder, OWNER), "utf8")) as { host?: unknown; pid?: unknown };
    if (owner.host === hostname() && typeof owner.pid === "number") return !isAlive(owner.pid);
  } catch (error) {
    // No owner file yet (killed right after the mkdir, or being written now): judged by age.
    if (!hasCode(error, "ENOENT") && !(error instanceof SyntaxError)) throw error;
  }
  try {
    return Date.now() - statSync(folder).mtimeMs > FOREIGN_STAGING_MS;
  } catch (error) {
    if (hasCode(error, "ENOENT")) return false;
    throw error;
  }
}

/**
 * Finishes or undoes what killed imports and deletes left behind (see the file's comment); each
 * run under its lock. Returns what it did, one line each.
 */
export async function recoverLeftovers(basePath: string, runs: RunsIndex, flush: boolean): Promise<string[]> {
  const done: string[] = [];
  const staging = join(basePath, STAGING_DIR);
  const trash = join(basePath, TRASH_DIR);
  for (const name of readdirIfPresent(staging) ?? []) {
    const match = ENTRY.exec(name);
    const folder = join(staging, name);
    if (!match || !abandoned(folder)) continue;
    const [, pipelineId = "", nonce] = match;
    await withRunLock(basePath, pipelineId, async () => {
      const run = join(folder, RUN);
      const dir = runFolder(basePath, pipelineId);
      const journal = join(trash, `${pipelineId}~${nonce}`);
      if (
        readdirIfPresent(journal) !== undefined &&
        readdirIfPresent(run) !== undefined &&
        readdirIfPresent(dir) === undefined
      ) {
        renameSync(run, dir);
        await syncDir(basePath, flush);
        done.push(`finished the interrupted import of run ${pipelineId}`);
      } else if (readdirIfPresent(run) !== undefined) {
        done.push(`removed the unfinished import of run ${pipelineId} (${folder})`);
      }
      await rm(folder, { recursive: true, force: true });
    });
  }
  for (const name of readdirIfPresent(trash) ?? []) {
    const match = ENTRY.exec(name);
    if (!match) continue;
    const pipelineId = match[1] as string;
    await withRunLock(basePath, pipelineId, async () => {
      const aside = join(trash, name);
      // Gone meanwhile: its import or delete finished under the lock.
      if (readdirIfPresent(aside) === undefined) return;
      const dir = runFolder(basePath, pipelineId);
      done.push(...(await runs.rebuild(pipelineId, await listRun(pipelineId, dir))));
      // A key record moved aside with its run was being destroyed: it is scrubbed, not only unlinked.
      await scrubKeyFile(runKeyPath(aside), flush);
      await rm(aside, { recursive: true, force: true });
      await syncDir(trash, flush);
      done.push(`removed ${aside}, left by an interrupted import or delete of run ${pipelineId}`);
    });
  }
  return done;
}
