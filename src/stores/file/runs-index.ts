/**
 * The file store's runs-by-name index, so that `listRuns` reads one small folder, never every run:
 *
 *   basePath/.runs/<pipelineName>/all/<createdAt>~<pipelineId>         one empty file per run
 *   basePath/.runs/<pipelineName>/unfinished/<createdAt>~<pipelineId>  until the run finishes
 *   basePath/.runs/.ids/<pipelineId>.json   which entry is the run's: {"name", "entry"}
 *   basePath/.runs/.version                 written last, once the index covers every run
 *
 * An entry's NAME is its sort key (`createdAt` with `_` for `:`, which every file system takes),
 * so a page is one folder listing and no file read. The store changes an entry only under the
 * run's cross-process lock, and always in this order: the run's `.ids` file is made durable
 * before its entries, and old entries are removed before the `.ids` file that names them, so
 * an entry can always be found from its run. A run enters the index before its first checkpoint
 * is linked (a crash in between leaves an entry for a run with no checkpoint, which callers treat
 * as absent) and leaves `unfinished/` after its `pipeline_complete` checkpoint is (a crash in
 * between lists a finished run as unfinished, which a resume finds complete): never the reverse,
 * which would hide a run from resume.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CheckpointCorruptError, InvalidArgumentError } from "../../core/errors.js";
import { isValidName } from "../../core/ids.js";
import { PIPELINE_COMPLETE_STAGE } from "../../core/types.js";
import { fsyncDir, fsyncFile, isTempName, replaceFile, unlinkIfPresent } from "../../util/atomic-file.js";
import { hasCode, mapLimit, readdirIfPresent } from "../../util/fs-util.js";
import type { ListedCheckpoint, ListRunsQuery, RunEntry, RunPage, StoredMetadata } from "../types.js";
import { parseCheckpointFileName } from "./checkpoint-file.js";
import { withRunLock } from "./file-leases.js";
import { syncDir } from "./run-folders.js";
import { childFolder, listRunIds, readLocated, runFolder } from "./run-paths.js";

/** The index folder, inside the base folder: a dot-folder, so never taken for a run. */
export const RUNS_DIR = ".runs";
const IDS = ".ids";
const MARKER = ".version";
const ALL = "all";
const UNFINISHED = "unfinished";
const ENTRY = /^([-+0-9][-+0-9_.TZ]*)~([A-Za-z0-9][A-Za-z0-9._-]{0,127})$/;

/** An entry name and what it says. */
interface Key {
  name: string;
  createdAt: string;
  pipelineId: string;
}

/** What the `.ids` file of a run holds. */
interface Pointer {
  name: string;
  entry: string;
}

const entryName = (createdAt: string, pipelineId: string) =>
  `${createdAt.replaceAll(":", "_")}~${pipelineId}`;

function parseEntry(name: string): Key | undefined {
  const match = ENTRY.exec(name);
  if (!match) return undefined;
  return { name, createdAt: (match[1] as string).replaceAll("_", ":"), pipelineId: match[2] as string };
}

/** Newest first: `createdAt`, then `pipelineId`, both descending, in byte order. */
const newestFirst = (a: Key, b: Key) =>
  a.createdAt < b.createdAt
    ? 1
    : a.createdAt > b.createdAt
      ? -1
      : a.pipelineId < b.pipelineId
        ? 1
        : a.pipelineId > b.pipelineId
          ? -1
          : 0;

/** The runs-by-name index of one file store. */
export class RunsIndex {
  private readonly root: string;
  /** The store held no checkpoint at setup: the index is complete from its first entry on. */
  private fresh = false;

  constructor(
    private readonly basePath: string,
    private readonly fsync: boolean,
  ) {
    this.root = join(basePath, RUNS_DIR);
  }

  /**
   * Builds the whole index once for a store an older cairn wrote (no marker yet), from each run's
   * first and newest checkpoint, each run under its lock; the marker is written last, so a build
   * cut short is done again. A store with no checkpoint at all gets nothing written.
   */
  async setup(): Promise<void> {
    if (existsSync(join(this.root, MARKER))) return;
    // Entries are written unflushed and flushed all at once before the marker, rather than a few
    // flushes per run: until the marker is durable, a crash only means building again.
    const builder = new RunsIndex(this.basePath, false);
    let indexed = 0;
    for (const pipelineId of await listRunIds(this.basePath)) {
      const dir = runFolder(this.basePath, pipelineId);
      const made = await withRunLock(this.basePath, pipelineId, async () => {
        const entry = await describeRun(pipelineId, dir);
        await builder.set(pipelineId, entry);
        return entry !== undefined;
      });
      if (made) indexed++;
    }
    if (indexed === 0 && !existsSync(this.root)) {
      this.fresh = true;
      return;
    }
    if (this.fsync) await flushIndex(this.basePath, this.root);
    await this.writeMarker();
  }

  /**
   * For a read-only open: whether the index can answer, without building anything. False for a
   * store an older cairn wrote (runs, but no marker), which `cairn migrate` indexes.
   */
  async built(): Promise<boolean> {
    if (existsSync(join(this.root, MARKER))) return true;
    return (await listRunIds(this.basePath)).length === 0;
  }

  /** Enters a run that has no checkpoint yet, unfinished; before its first checkpoint is written. */
  async add(pipelineId: string, pipelineName: string, createdAt: string): Promise<void> {
    await this.set(pipelineId, { pipelineId, pipelineName, createdAt, finished: false });
    if (this.fresh) {
      await this.writeMarker();
      this.fresh = false;
    }
  }

  /** Marks the run finished; after its `pipeline_complete` checkpoint is written. */
  async finish(pipelineId: string): Promise<void> {
    const pointer = this.readPointer(pipelineId);
    if (!pointer) return;
    const folder = join(this.nameFolder(pointer.name), UNFINISHED);
    if (unlinkIfPresent(join(folder, pointer.entry))) await syncDir(folder, this.fsync);
  }

  /**
   * The run's pipeline name as its index entry has it, for the feed's changes; "" when the run
   * has none, or an entry the index cannot read (the change is still recorded, only unnamed).
   */
  nameOf(pipelineId: string): string {
    try {
      return this.readPointer(pipelineId)?.name ?? "";
    } catch (error) {
      if (error instanceof CheckpointCorruptError) return "";
      throw error;
    }
  }

  /** True when the index has anything for the run. */
  has(pipelineId: string): boolean {
    return existsSync(this.pointerPath(pipelineId));
  }

  /** Removes the run's entries; after its checkpoints are gone. */
  async remove(pipelineId: string): Promise<void> {
    await this.set(pipelineId, undefined);
  }

  /** Recomputes the run's entry from its checkpoints (oldest first); returns what changed. */
  async rebuild(pipelineId: string, listed: readonly ListedCheckpoint[]): Promise<string[]> {
    const ok = listed.flatMap((e) => (e.ok ? [e.metadata] : []));
    const first = ok[0];
    const finished = ok.some((m) => m.stage_name === PIPELINE_COMPLETE_STAGE);
    return this.set(pipelineId, first && entryOf(first, finished));
  }

  /** One page of a pipeline's runs, newest first, from one or two folder listings. */
  async list(query: ListRunsQuery): Promise<RunPage> {
    const { pipelineName, limit = 100 } = query;
    const after = query.cursor === undefined ? undefined : parseEntry(query.cursor);
    if (query.cursor !== undefined && !after) {
      throw new InvalidArgumentError("listRuns cursor is not one this store gave");
    }
    const folder = this.nameFolder(pipelineName);
    const open = new Set(readdirIfPresent(join(folder, UNFINISHED)) ?? []);
    const names = query.unfinished ? [...open] : (readdirIfPresent(join(folder, ALL)) ?? []);
    const keys = names
      .flatMap((n) => parseEntry(n) ?? [])
      .filter((k) => !after || newestFirst(k, after) > 0)
      .sort(newestFirst);
    const page = keys.slice(0, limit);
    const runs = page.map(
      (k): RunEntry => ({
        pipelineId: k.pipelineId,
        pipelineName,
        createdAt: k.createdAt,
        finished: !open.has(k.name),
      }),
    );
    const last = page.at(-1);
    return keys.length > limit && last ? { runs, nextCursor: last.name } : { runs };
  }

  /**
   * Makes the index say `want` about the run (nothing, when undefined); returns what changed,
   * one line each. The order of the steps is what keeps every entry reachable (see above).
   */
  private async set(pipelineId: string, want: RunEntry | undefined): Promise<string[]> {
    const done: string[] = [];
    let old: Pointer | undefined;
    try {
      old = this.readPointer(pipelineId);
    } catch (error) {
      if (!(error instanceof CheckpointCorruptError)) throw error;
      // Only a hand edit makes one; whatever entries it named cannot be known, so it is replaced.
      done.push(`replaced the unreadable ${this.pointerPath(pipelineId)}`);
    }
    const next = want && { name: want.pipelineName, entry: entryName(want.createdAt, pipelineId) };
    if (old && (old.name !== next?.name || old.entry !== next.entry)) {
      const folders = [ALL, UNFINISHED].map((f) => join(this.nameFolder(old.name), f));
      const removed = folders.filter((f) => unlinkIfPresent(join(f, old.entry)));
      await Promise.all(removed.map((f) => syncDir(f, this.fsync)));
      if (removed.length > 0) done.push(`removed the runs-index entry ${old.name}/${old.entry}`);
    }
    const ids = join(this.root, IDS);
    if (!want || !next) {
      if (unlinkIfPresent(this.pointerPath(pipelineId))) await syncDir(ids, this.fsync);
      return done;
    }
    if (old?.name !== next.name || old.entry !== next.entry) {
      await this.makeFolders(IDS);
      await replaceFile(ids, `${pipelineId}.json`, JSON.stringify(next), this.fsync);
      await syncDir(ids, this.fsync);
    }
    const name = childFolder(this.root, "pipelineName", next.name);
    await this.makeFolders(next.name, ALL);
    await this.makeFolders(next.name, UNFINISHED);
    const all = join(name, ALL);
    const open = join(name, UNFINISHED);
    const changed = [
      ...(!want.finished && touch(join(open, next.entry)) ? [open] : []),
      ...(want.finished && unlinkIfPresent(join(open, next.entry)) ? [open] : []),
      ...(touch(join(all, next.entry)) ? [all] : []),
    ];
    await Promise.all(changed.map((f) => syncDir(f, this.fsync)));
    if (changed.length > 0) {
      done.push(
        `wrote the runs-index entry ${next.name}/${next.entry} (${want.finished ? "finished" : "unfinished"})`,
      );
    }
    return done;
  }

  /**
   * Creates `.runs/<parts...>` one level at a time, flushing each parent that gained a folder.
   * The base folder exists: every caller holds a run's lock, whose file is in it.
   */
  private async makeFolders(...parts: string[]): Promise<void> {
    let parent = this.basePath;
    for (const part of [RUNS_DIR, ...parts]) {
      const dir = join(parent, part);
      try {
        mkdirSync(dir);
        await syncDir(parent, this.fsync);
      } catch (error) {
        if (!hasCode(error, "EEXIST")) throw error;
      }
      parent = dir;
    }
  }

  private async writeMarker(): Promise<void> {
    await this.makeFolders();
    await replaceFile(this.root, MARKER, "1\n", this.fsync);
    await syncDir(this.root, this.fsync);
  }

  /** The index folder of a pipeline name; refuses a name that is not a plain folder name. */
  nameFolder(pipelineName: string): string {
    return childFolder(this.root, "pipelineName", pipelineName);
  }

  private pointerPath(pipelineId: string): string {
    return join(this.root, IDS, `${pipelineId}.json`);
  }

  /** The run's `.ids` file; `CheckpointCorruptError` when it is not one this store wrote. */
  private readPointer(pipelineId: string): Pointer | undefined {
    const path = this.pointerPath(pipelineId);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (error) {
      if (hasCode(error, "ENOENT")) return undefined;
      throw error;
    }
    let pointer: Partial<Pointer> | null = null;
    try {
      pointer = JSON.parse(text) as Partial<Pointer> | null;
    } catch {
      // Reported below with the file's path, which is what a person needs to repair it.
    }
    const { name, entry } = pointer ?? {};
    // Both become paths: only a plain name and an entry name are ever used.
    if (typeof name !== "string" || !isValidName(name) || typeof entry !== "string" || !parseEntry(entry)) {
      throw new CheckpointCorruptError(
        undefined,
        `${path}: not a runs-index entry (rebuild the run's indexes)`,
      );
    }
    return { name, entry };
  }
}

const entryOf = (first: StoredMetadata, finished: boolean): RunEntry => ({
  pipelineId: first.pipeline_id,
  pipelineName: first.pipeline_name,
  createdAt: first.timestamp,
  finished,
});

/** Creates an empty file; false when it exists. Its name is all it says, so nothing needs flushing but its folder. */
function touch(path: string): boolean {
  try {
    closeSync(openSync(path, "wx"));
    return true;
  } catch (error) {
    if (hasCode(error, "EEXIST")) return false;
    throw error;
  }
}

/** Flushes the `.ids` files and every folder of the index (and the base folder holding it), several at a time. */
async function flushIndex(basePath: string, root: string): Promise<void> {
  const ids = join(root, IDS);
  const files = (readdirIfPresent(ids) ?? []).filter((n) => !isTempName(n)).map((n) => join(ids, n));
  const dirs = [basePath, root];
  for (const name of readdirIfPresent(root) ?? []) {
    const path = join(root, name);
    if (name === IDS) dirs.push(path);
    else if (!name.startsWith("."))
      dirs.push(path, ...(readdirIfPresent(path) ?? []).map((n) => join(path, n)));
  }
  await mapLimit(files, fsyncFile);
  await mapLimit(dirs, fsyncDir);
}

/** A run's entry from its first and newest readable checkpoints; undefined when it has none. */
async function describeRun(pipelineId: string, dir: string): Promise<RunEntry | undefined> {
  const names = (readdirIfPresent(dir) ?? []).filter((n) => parseCheckpointFileName(n)).sort();
  const first = await firstReadable(pipelineId, dir, names);
  if (!first) return undefined;
  const newest = await firstReadable(pipelineId, dir, names.reverse());
  return entryOf(first, newest?.stage_name === PIPELINE_COMPLETE_STAGE);
}

async function firstReadable(
  pipelineId: string,
  dir: string,
  names: readonly string[],
): Promise<StoredMetadata | undefined> {
  for (const name of names) {
    try {
      return (await readLocated({ pipelineId, dir, name })).metadata;
    } catch (error) {
      if (!(error instanceof CheckpointCorruptError) && !hasCode(error, "ENOENT", "EISDIR")) throw error;
    }
  }
  return undefined;
}
