/**
 * The file store: one folder per run, one JSON file per checkpoint, stage outputs stored once
 * per run under their hash.
 *
 *   basePath/<pipelineId>/<sequence padded to 10 digits>-<checkpointId>.json
 *   basePath/<pipelineId>/outputs/<sha256>.json
 *
 * Every write goes to a temp file that is flushed and then moved into place, and the folder is
 * flushed after, so a crash never leaves a half-written checkpoint. A checkpoint is written
 * after its outputs: a crash in between leaves unreferenced outputs, never a checkpoint whose
 * outputs are missing. Writes within one store instance are serialized per run.
 */
import { readFileSync } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import {
  CheckpointConflictError,
  CheckpointNotFoundError,
  InvalidConfigError,
  StoreUnavailableError,
} from "../../core/errors.js";
import { assertValidName } from "../../core/ids.js";
import { unknownOptionsProblem } from "../../core/options.js";
import { applyPatch, compareStored } from "../../core/record.js";
import {
  discardTemps,
  linkIntoPlace,
  moveIntoPlace,
  replaceFile,
  type TempFile,
  unlinkIfPresent,
  writeTemps,
} from "../../util/atomic-file.js";
import { hasCode, KeyedLock, mapLimit, readdirIfPresent } from "../../util/fs-util.js";
import { assertFence, checkLeaseArgs, decideAcquire, isSameLease } from "../lease.js";
import type {
  CheckpointRecord,
  CheckpointStore,
  CorruptEntry,
  Lease,
  LeaseAttempt,
  ListedCheckpoint,
  OutputRecord,
  StatusPatch,
} from "../types.js";
import {
  checkpointFileName,
  formatCheckpointFile,
  outputFileName,
  parseCheckpointFileName,
  parseOutputFileName,
} from "./checkpoint-file.js";
import { entryPath, readEntry, removeEntry } from "./corrupt-entries.js";
import { readLease, withRunLock, writeLease } from "./file-leases.js";
import { listRun, parses } from "./listing.js";
import { dropIfEmpty, ensureDir, newOutputs, syncDir } from "./run-folders.js";
import { HEAD, holds, listRunIds, locate, OUTPUTS, readLocated, runFolder } from "./run-paths.js";

/**
 * The checkpoint file names with the highest sequence, in one pass without sorting: resume
 * reads a run's folder, and at thousands of checkpoints sorting and matching every name would
 * cost more than reading the folder. Several names only after concurrent writers.
 */
function newestNames(names: readonly string[]): string[] {
  let best: string | undefined;
  for (const name of names) {
    // Names compare by their zero-padded sequence first; only a name that beats the best is matched.
    if ((best === undefined || name > best) && parseCheckpointFileName(name)) best = name;
  }
  if (best === undefined) return [];
  const sequence = best.slice(0, 11);
  return names.filter((n) => n.startsWith(sequence) && parseCheckpointFileName(n));
}

/** Options of the file store. */
export interface FileStoreOptions {
  /** Folder holding one subfolder per run; resolved against the working directory. */
  basePath: string;
  /** Flush files and folders to disk on every write (default true); off only for tests and benchmarks. */
  fsync?: boolean;
}

const FILE_STORE_OPTIONS = ["basePath", "fsync"] as const satisfies readonly (keyof FileStoreOptions)[];

/** Stores checkpoints as JSON files, one folder per run. */
export class FileStore implements CheckpointStore {
  readonly strategy = "file";
  readonly persistent = true;
  readonly location: string;
  /** Absolute folder holding the runs. */
  readonly basePath: string;
  private readonly fsync: boolean;
  /** Serializes writes to one run within this instance, so a check and its write never interleave. */
  private readonly locks = new KeyedLock();

  constructor(options: FileStoreOptions) {
    const unknown = unknownOptionsProblem("the file store", options, FILE_STORE_OPTIONS);
    if (unknown !== undefined) throw new InvalidConfigError(unknown);
    this.basePath = resolve(options.basePath);
    this.fsync = options.fsync ?? true;
    this.location = `file:${this.basePath}`;
  }

  /** Creates the base folder. */
  async setup(): Promise<void> {
    // Nothing is created until the first write: a read-only command on a mistyped path must
    // not leave an empty store behind. A path that is not a folder is reported at once.
    try {
      if (!(await stat(this.basePath)).isDirectory()) {
        throw new StoreUnavailableError("file", `${this.basePath} is not a folder`);
      }
    } catch (error) {
      if (!hasCode(error, "ENOENT")) throw error;
    }
  }

  /** Writes new outputs, then the checkpoint file create-only. */
  async putCheckpoint(
    record: CheckpointRecord,
    outputs: readonly OutputRecord[],
    fence?: Lease,
  ): Promise<void> {
    if (fence) {
      // The fencing check and the write must not interleave with another process taking the lease.
      await withRunLock(this.basePath, this.checkRun(record.metadata.pipeline_id), async () => {
        assertFence(await readLease(this.basePath, record.metadata.pipeline_id), fence);
        await this.put(record, outputs, true);
      });
    } else await this.put(record, outputs, false);
  }

  /** Takes the run's lease under the run's cross-process lock. */
  async acquireLease(pipelineId: string, owner: string, ttlMs: number): Promise<LeaseAttempt> {
    checkLeaseArgs(owner, ttlMs);
    return withRunLock(this.basePath, this.checkRun(pipelineId), async () => {
      const attempt = decideAcquire(
        pipelineId,
        await readLease(this.basePath, pipelineId),
        owner,
        ttlMs,
        Date.now(),
      );
      if (attempt.acquired) await writeLease(this.basePath, attempt.lease, this.fsync);
      return attempt;
    });
  }

  /** Extends a lease still held. */
  async renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    checkLeaseArgs(lease.owner, ttlMs);
    return withRunLock(this.basePath, this.checkRun(lease.pipelineId), async () => {
      if (!isSameLease(await readLease(this.basePath, lease.pipelineId), lease)) return undefined;
      const renewed = { ...lease, expiresAt: new Date(Date.now() + ttlMs) };
      await writeLease(this.basePath, renewed, this.fsync);
      return renewed;
    });
  }

  /** Ends a lease still held, keeping its token. */
  async releaseLease(lease: Lease): Promise<void> {
    await withRunLock(this.basePath, this.checkRun(lease.pipelineId), async () => {
      if (isSameLease(await readLease(this.basePath, lease.pipelineId), lease)) {
        await writeLease(this.basePath, { ...lease, expiresAt: new Date(0) }, this.fsync);
      }
    });
  }

  private checkRun(pipelineId: string): string {
    this.runDir(pipelineId);
    return pipelineId;
  }

  /**
   * Writes the outputs, then the checkpoint. A fenced write (under the run's lease and its
   * cross-process lock, so no other writer interleaves) also points the head hint at the new
   * checkpoint, and makes the hint durable before the checkpoint can be: the hint may name a
   * checkpoint that a crash kept from being written (a reader then lists the folder), never
   * one older than the newest. An unfenced write removes the hint the same way, since it
   * cannot keep it in step with another process.
   */
  private async put(
    record: CheckpointRecord,
    outputs: readonly OutputRecord[],
    fenced: boolean,
  ): Promise<void> {
    const { metadata, body } = record;
    const id = assertValidName("checkpointId", metadata.checkpoint_id);
    const dir = this.runDir(metadata.pipeline_id);
    const name = checkpointFileName(metadata.sequence, id);
    const outputNames = outputs.map((o) => outputFileName(o.hash));
    await this.locks.run(metadata.pipeline_id, async () => {
      // Checked before any output is written, so a refused put normally leaves nothing behind.
      if (await holds(this.basePath, metadata.pipeline_id, id)) throw new CheckpointConflictError(id);
      if (ensureDir(dir)) await this.sync(this.basePath);
      const fresh = newOutputs(dir, outputs, outputNames, fenced);
      if (fresh.createdFolder) await this.sync(dir);
      const head = join(fresh.folder, HEAD);
      const early = fenced
        ? [...fresh.writes, { dir: fresh.folder, name: HEAD, data: `${name}\n` }]
        : fresh.writes;
      // Everything is written and flushed together; the order that matters is of the moves
      // into place: outputs and hint first, their folder flushed, then the checkpoint.
      const text = formatCheckpointFile(metadata, body);
      const temps = await writeTemps([...early, { dir, name, data: text }], this.fsync);
      const checkpoint = temps.pop() as TempFile;
      let moved = 0;
      try {
        for (; moved < temps.length; moved++) moveIntoPlace(temps[moved] as TempFile);
        const dropped = !fenced && unlinkIfPresent(head);
        if (temps.length > 0 || dropped) await this.sync(fresh.folder);
      } catch (error) {
        discardTemps([checkpoint, ...temps.slice(moved)]);
        throw error;
      }
      if (!linkIntoPlace(checkpoint)) {
        // The hint must not name a checkpoint this write did not make.
        if (fenced) unlinkIfPresent(head);
        throw new CheckpointConflictError(id);
      }
      await this.sync(dir);
    });
  }

  /** Reads one checkpoint by id, searching the run folders its id points to first. */
  async getCheckpoint(checkpointId: string): Promise<CheckpointRecord | undefined> {
    assertValidName("checkpointId", checkpointId);
    const found = await locate(this.basePath, checkpointId);
    try {
      return found && (await readLocated(found));
    } catch (error) {
      // Deleted between finding and reading it: absent.
      if (hasCode(error, "ENOENT")) return undefined;
      throw error;
    }
  }

  /** Reads the run's checkpoint with the highest sequence, parsing no other file. */
  async getLatestCheckpoint(pipelineId: string): Promise<CheckpointRecord | undefined> {
    const dir = this.runDir(pipelineId);
    const hinted = await this.readHinted(pipelineId, dir);
    if (hinted) return hinted;
    // A file deleted between the listing and the read sends us back to list again.
    for (let attempt = 1; ; attempt++) {
      const tied = newestNames(readdirIfPresent(dir) ?? []);
      if (tied.length === 0) return undefined;
      try {
        const records = await mapLimit(tied, (n) => readLocated({ pipelineId, dir, name: n }));
        return records.reduce((a, b) => (compareStored(a.metadata, b.metadata) >= 0 ? a : b));
      } catch (error) {
        if (!hasCode(error, "ENOENT") || attempt >= 5) throw error;
      }
    }
  }

  /**
   * The checkpoint the run's head hint names, without listing the folder; undefined when there
   * is no usable hint (none, not a checkpoint file name, or naming a file that is gone).
   */
  private async readHinted(pipelineId: string, dir: string): Promise<CheckpointRecord | undefined> {
    let text: string;
    try {
      text = readFileSync(join(dir, OUTPUTS, HEAD), "utf8");
    } catch (error) {
      if (hasCode(error, "ENOENT", "ENOTDIR", "EISDIR")) return undefined;
      throw error;
    }
    const name = text.endsWith("\n") ? text.slice(0, -1) : "";
    if (!parseCheckpointFileName(name)) return undefined;
    try {
      return await readLocated({ pipelineId, dir, name });
    } catch (error) {
      if (hasCode(error, "ENOENT")) return undefined;
      throw error;
    }
  }

  /** Removes the run's head hint, so the next lookup lists the folder; for checkpoint files changed by hand. */
  async rebuildIndexes(pipelineId: string): Promise<string[]> {
    const dir = this.runDir(pipelineId);
    return this.locks.run(pipelineId, async () => {
      if (!unlinkIfPresent(join(dir, OUTPUTS, HEAD))) return [];
      await this.sync(join(dir, OUTPUTS));
      return [
        `removed the newest-checkpoint hint ${join(dir, OUTPUTS, HEAD)}; the next write under a lease writes it again`,
      ];
    });
  }

  /** Lists the run's checkpoints oldest first; unreadable files are reported as corrupt entries. */
  async listCheckpoints(pipelineId: string): Promise<ListedCheckpoint[]> {
    return listRun(pipelineId, this.runDir(pipelineId));
  }

  /** Lists the run folders, sorted. */
  async listPipelineIds(): Promise<string[]> {
    return listRunIds(this.basePath);
  }

  /** Rewrites a checkpoint's file with patched status fields, keeping its body bytes. */
  async updateCheckpoint(checkpointId: string, patch: StatusPatch): Promise<void> {
    assertValidName("checkpointId", checkpointId);
    const found = await locate(this.basePath, checkpointId);
    if (!found) throw new CheckpointNotFoundError(checkpointId);
    await this.locks.run(found.pipelineId, async () => {
      let record: CheckpointRecord;
      try {
        record = await readLocated(found);
      } catch (error) {
        if (hasCode(error, "ENOENT")) throw new CheckpointNotFoundError(checkpointId);
        throw error;
      }
      const text = formatCheckpointFile(applyPatch(record.metadata, patch), record.body);
      await replaceFile(found.dir, found.name, text, this.fsync);
      await this.sync(found.dir);
    });
  }

  /** Deletes checkpoint files by id, corrupt ones included; returns how many ids existed. */
  async deleteCheckpoints(pipelineId: string, checkpointIds: readonly string[]): Promise<number> {
    const dir = this.runDir(pipelineId);
    const ids = new Set(checkpointIds.map((id) => assertValidName("checkpointId", id)));
    return this.locks.run(pipelineId, async () => {
      const names = readdirIfPresent(dir);
      if (!names) return 0;
      const deleted = new Set<string>();
      for (const name of names) {
        const parsed = parseCheckpointFileName(name);
        if (parsed && ids.has(parsed.checkpointId) && unlinkIfPresent(join(dir, name))) {
          deleted.add(parsed.checkpointId);
        }
      }
      if (deleted.size > 0) {
        await this.sync(dir);
        await dropIfEmpty(this.basePath, dir, this.fsync);
      }
      return deleted.size;
    });
  }

  /** Reads outputs by hash; hashes not stored are absent from the map. */
  async getOutputs(pipelineId: string, hashes: readonly string[]): Promise<Map<string, string>> {
    const outputs = join(this.runDir(pipelineId), OUTPUTS);
    const unique = [...new Set(hashes)];
    const names = unique.map(outputFileName);
    const bodies = await mapLimit(names, async (name) => {
      try {
        return readFileSync(join(outputs, name), "utf8");
      } catch (error) {
        if (hasCode(error, "ENOENT")) return undefined;
        throw error;
      }
    });
    const found = new Map<string, string>();
    unique.forEach((hash, i) => {
      const body = bodies[i];
      if (body !== undefined) found.set(hash, body);
    });
    return found;
  }

  /** Lists the hashes of the run's stored outputs, sorted. */
  async listOutputHashes(pipelineId: string): Promise<string[]> {
    const names = readdirIfPresent(join(this.runDir(pipelineId), OUTPUTS));
    return (names ?? []).flatMap((n) => parseOutputFileName(n) ?? []).sort();
  }

  /** Deletes outputs by hash; returns how many existed. */
  async deleteOutputs(pipelineId: string, hashes: readonly string[]): Promise<number> {
    const dir = this.runDir(pipelineId);
    const outputs = join(dir, OUTPUTS);
    const names = [...new Set(hashes)].map(outputFileName);
    return this.locks.run(pipelineId, async () => {
      let deleted = 0;
      for (const name of names) if (unlinkIfPresent(join(outputs, name))) deleted++;
      if (deleted > 0) {
        await this.sync(outputs);
        await dropIfEmpty(this.basePath, dir, this.fsync);
      }
      return deleted;
    });
  }

  /** Removes the run's folder and everything in it. */
  async deleteRun(pipelineId: string): Promise<void> {
    const dir = this.runDir(pipelineId);
    await this.locks.run(pipelineId, async () => {
      const existed = readdirIfPresent(dir) !== undefined;
      await rm(dir, { recursive: true, force: true });
      if (existed) await this.sync(this.basePath);
    });
  }

  /** The text of a corrupt entry's file (a folder or a link is described in JSON instead). */
  async readCorruptEntry(entry: CorruptEntry): Promise<string> {
    return readEntry(entryPath(this.runDir(entry.pipelineId), entry), entry);
  }

  /** Unlinks a corrupt entry's file from its run folder, once sure it still does not parse. */
  async removeCorruptEntry(entry: CorruptEntry): Promise<void> {
    const dir = this.runDir(entry.pipelineId);
    const path = entryPath(dir, entry);
    const name = basename(path);
    await this.locks.run(entry.pipelineId, async () => {
      const parsed = parseCheckpointFileName(name);
      if (parsed && (await parses({ pipelineId: entry.pipelineId, dir, name }))) {
        throw new CheckpointConflictError(
          parsed.checkpointId,
          `${path} parses as a checkpoint now; it is not removed as a corrupt entry`,
        );
      }
      await removeEntry(path, entry);
      await this.sync(dir);
      await dropIfEmpty(this.basePath, dir, this.fsync);
    });
  }

  /** Nothing to release: no handle stays open between calls. */
  async close(): Promise<void> {}

  /** The run's folder; refuses a name that is invalid or would resolve outside the base folder. */
  private runDir(pipelineId: string): string {
    return runFolder(this.basePath, pipelineId);
  }

  private async sync(dir: string): Promise<void> {
    await syncDir(dir, this.fsync);
  }
}
