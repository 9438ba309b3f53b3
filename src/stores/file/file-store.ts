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
import type { Dirent } from "node:fs";
import { mkdir, readdir, readFile, rm, rmdir, stat } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import {
  CheckpointConflictError,
  CheckpointCorruptError,
  CheckpointNotFoundError,
  InvalidNameError,
  StoreUnavailableError,
} from "../../core/errors.js";
import { assertValidName, isValidName } from "../../core/ids.js";
import { applyPatch, compareStored } from "../../core/record.js";
import { createFile, fsyncDir, isTempName, removeIfPresent, replaceFile } from "../../util/atomic-file.js";
import { exists, hasCode, KeyedLock, mapLimit, readdirIfPresent } from "../../util/fs-util.js";
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
  StoredMetadata,
} from "../types.js";
import {
  candidateRuns,
  checkpointFileName,
  formatCheckpointFile,
  isFileOf,
  outputFileName,
  parseCheckpointFile,
  parseCheckpointFileName,
  parseOutputFileName,
} from "./checkpoint-file.js";
import { entryPath, readEntry, removeEntry } from "./corrupt-entries.js";
import { readLease, withRunLock, writeLease } from "./file-leases.js";

const OUTPUTS = "outputs";

/** Options of the file store. */
export interface FileStoreOptions {
  /** Folder holding one subfolder per run; resolved against the working directory. */
  basePath: string;
  /** Flush files and folders to disk on every write (default true); off only for tests and benchmarks. */
  fsync?: boolean;
}

/** Where a checkpoint's file is. */
interface Located {
  pipelineId: string;
  dir: string;
  name: string;
}

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
        await this.put(record, outputs);
      });
    } else await this.put(record, outputs);
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

  private async put(record: CheckpointRecord, outputs: readonly OutputRecord[]): Promise<void> {
    const { metadata, body } = record;
    const id = assertValidName("checkpointId", metadata.checkpoint_id);
    const dir = this.runDir(metadata.pipeline_id);
    const name = checkpointFileName(metadata.sequence, id);
    const outputNames = outputs.map((o) => outputFileName(o.hash));
    await this.locks.run(metadata.pipeline_id, async () => {
      // Checked before any output is written, so a refused put normally leaves nothing behind.
      if (await this.holds(metadata.pipeline_id, id)) throw new CheckpointConflictError(id);
      if (await this.ensureDir(dir)) await this.sync(this.basePath);
      if (outputs.length > 0) await this.writeOutputs(dir, outputs, outputNames);
      const created = await createFile(dir, name, formatCheckpointFile(metadata, body), this.fsync);
      if (!created) throw new CheckpointConflictError(id);
      await this.sync(dir);
    });
  }

  /** Reads one checkpoint by id, searching the run folders its id points to first. */
  async getCheckpoint(checkpointId: string): Promise<CheckpointRecord | undefined> {
    assertValidName("checkpointId", checkpointId);
    const found = await this.locate(checkpointId);
    try {
      return found && (await this.readLocated(found));
    } catch (error) {
      // Deleted between finding and reading it: absent.
      if (hasCode(error, "ENOENT")) return undefined;
      throw error;
    }
  }

  /** Reads the run's checkpoint with the highest sequence, parsing no other file. */
  async getLatestCheckpoint(pipelineId: string): Promise<CheckpointRecord | undefined> {
    const dir = this.runDir(pipelineId);
    // A file deleted between the listing and the read sends us back to list again.
    for (let attempt = 1; ; attempt++) {
      const names = (await readdirIfPresent(dir))?.filter((n) => parseCheckpointFileName(n)).sort();
      const last = names?.at(-1);
      if (!names || last === undefined) return undefined;
      // Ties on sequence (only after concurrent writers) are broken the way listings order them.
      const sequence = last.slice(0, 10);
      const tied = names.filter((n) => n.startsWith(sequence));
      try {
        const records = await mapLimit(tied, (n) => this.readLocated({ pipelineId, dir, name: n }));
        return records.reduce((a, b) => (compareStored(a.metadata, b.metadata) >= 0 ? a : b));
      } catch (error) {
        if (!hasCode(error, "ENOENT") || attempt >= 5) throw error;
      }
    }
  }

  /** Lists the run's checkpoints oldest first; unreadable files are reported as corrupt entries. */
  async listCheckpoints(pipelineId: string): Promise<ListedCheckpoint[]> {
    const dir = this.runDir(pipelineId);
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (hasCode(error, "ENOENT")) return [];
      throw error;
    }
    const names = entries
      .filter((e) => !(e.name === OUTPUTS && e.isDirectory()) && !isTempName(e.name))
      .map((e) => ({ name: e.name, isFile: e.isFile() }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const listed = await mapLimit(names, (entry) =>
      this.listEntry(pipelineId, dir, entry.name, entry.isFile),
    );
    const present = listed.filter((e): e is ListedCheckpoint => e !== undefined);
    // Valid entries are ordered by their metadata; corrupt ones keep their place by file name.
    const ok = present
      .flatMap((e) => (e.ok ? [e.metadata] : []))
      .sort(compareStored)
      .values();
    return present.map((e) => (e.ok ? { ok: true, metadata: ok.next().value as StoredMetadata } : e));
  }

  /** Lists the run folders, sorted. */
  async listPipelineIds(): Promise<string[]> {
    let entries: Dirent[];
    try {
      entries = await readdir(this.basePath, { withFileTypes: true });
    } catch (error) {
      if (hasCode(error, "ENOENT")) return [];
      throw error;
    }
    return entries
      .filter((e) => e.isDirectory() && isValidName(e.name))
      .map((e) => e.name)
      .sort();
  }

  /** Rewrites a checkpoint's file with patched status fields, keeping its body bytes. */
  async updateCheckpoint(checkpointId: string, patch: StatusPatch): Promise<void> {
    assertValidName("checkpointId", checkpointId);
    const found = await this.locate(checkpointId);
    if (!found) throw new CheckpointNotFoundError(checkpointId);
    await this.locks.run(found.pipelineId, async () => {
      let record: CheckpointRecord;
      try {
        record = await this.readLocated(found);
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
      const names = await readdirIfPresent(dir);
      if (!names) return 0;
      const deleted = new Set<string>();
      for (const name of names) {
        const parsed = parseCheckpointFileName(name);
        if (parsed && ids.has(parsed.checkpointId) && (await removeIfPresent(join(dir, name)))) {
          deleted.add(parsed.checkpointId);
        }
      }
      if (deleted.size > 0) {
        await this.sync(dir);
        await this.dropIfEmpty(dir);
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
        return await readFile(join(outputs, name), "utf8");
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
    const names = await readdirIfPresent(join(this.runDir(pipelineId), OUTPUTS));
    return (names ?? []).flatMap((n) => parseOutputFileName(n) ?? []).sort();
  }

  /** Deletes outputs by hash; returns how many existed. */
  async deleteOutputs(pipelineId: string, hashes: readonly string[]): Promise<number> {
    const dir = this.runDir(pipelineId);
    const outputs = join(dir, OUTPUTS);
    const names = [...new Set(hashes)].map(outputFileName);
    return this.locks.run(pipelineId, async () => {
      let deleted = 0;
      for (const name of names) if (await removeIfPresent(join(outputs, name))) deleted++;
      if (deleted > 0) {
        await this.sync(outputs);
        await this.dropIfEmpty(dir);
      }
      return deleted;
    });
  }

  /** Removes the run's folder and everything in it. */
  async deleteRun(pipelineId: string): Promise<void> {
    const dir = this.runDir(pipelineId);
    await this.locks.run(pipelineId, async () => {
      const existed = (await readdirIfPresent(dir)) !== undefined;
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
      if (parsed && (await this.parses({ pipelineId: entry.pipelineId, dir, name }))) {
        throw new CheckpointConflictError(
          parsed.checkpointId,
          `${path} parses as a checkpoint now; it is not removed as a corrupt entry`,
        );
      }
      await removeEntry(path, entry);
      await this.sync(dir);
      await this.dropIfEmpty(dir);
    });
  }

  /** True when the file reads as a checkpoint; false when it is corrupt, a folder or gone. */
  private async parses(found: Located): Promise<boolean> {
    try {
      await this.readLocated(found);
      return true;
    } catch (error) {
      if (error instanceof CheckpointCorruptError || hasCode(error, "ENOENT", "EISDIR")) return false;
      throw error;
    }
  }

  /** Nothing to release: no handle stays open between calls. */
  async close(): Promise<void> {}

  /** The run's folder; refuses a name that is invalid or would resolve outside the base folder. */
  private runDir(pipelineId: string): string {
    assertValidName("pipelineId", pipelineId);
    const dir = resolve(this.basePath, pipelineId);
    // The name pattern already excludes separators and `..`; this guards the folder itself.
    if (relative(this.basePath, dir) !== pipelineId) {
      throw new InvalidNameError("pipelineId", pipelineId, "it resolves outside the store's folder");
    }
    return dir;
  }

  private async sync(dir: string): Promise<void> {
    if (this.fsync) await fsyncDir(dir);
  }

  /** Creates a folder; true when it was created (so its parent needs flushing). */
  private async ensureDir(dir: string): Promise<boolean> {
    try {
      await mkdir(dir);
      return true;
    } catch (error) {
      if (hasCode(error, "EEXIST")) return false;
      if (!hasCode(error, "ENOENT")) throw error;
    }
    // The base folder itself does not exist yet: this is the store's first write.
    await mkdir(dirname(dir), { recursive: true });
    await mkdir(dir);
    return true;
  }

  private async writeOutputs(dir: string, outputs: readonly OutputRecord[], names: string[]): Promise<void> {
    const folder = join(dir, OUTPUTS);
    const createdFolder = await this.ensureDir(folder);
    const written = new Set<string>();
    for (const [i, { body }] of outputs.entries()) {
      const name = names[i] as string;
      if (written.has(name) || (!createdFolder && (await exists(join(folder, name))))) continue;
      // Same hash, same bytes: replacing a copy written concurrently is harmless.
      await replaceFile(folder, name, body, this.fsync);
      written.add(name);
    }
    const wrote = written.size > 0;
    // Flushed before the checkpoint is written, so a durable checkpoint implies durable outputs.
    if (wrote) await this.sync(folder);
    if (createdFolder) await this.sync(dir);
  }

  /** True when a file of that id exists in the run or in any run folder its id points to. */
  private async holds(pipelineId: string, checkpointId: string): Promise<boolean> {
    for (const runId of new Set([pipelineId, ...candidateRuns(checkpointId)])) {
      if (await this.findIn(runId, checkpointId)) return true;
    }
    return false;
  }

  private async locate(checkpointId: string): Promise<Located | undefined> {
    const tried = new Set<string>();
    for (const runId of candidateRuns(checkpointId)) {
      tried.add(runId);
      const found = await this.findIn(runId, checkpointId);
      if (found) return found;
    }
    // The id does not start with its run id (renamed, imported, hand-made): look everywhere.
    for (const runId of await this.listPipelineIds()) {
      if (tried.has(runId)) continue;
      const found = await this.findIn(runId, checkpointId);
      if (found) return found;
    }
    return undefined;
  }

  private async findIn(pipelineId: string, checkpointId: string): Promise<Located | undefined> {
    const dir = this.runDir(pipelineId);
    let names: string[] | undefined;
    try {
      names = await readdirIfPresent(dir);
    } catch (error) {
      // A candidate that is a plain file in the base folder is simply not a run.
      if (hasCode(error, "ENOTDIR")) return undefined;
      throw error;
    }
    const name = names
      ?.filter((n) => isFileOf(n, checkpointId))
      .sort()
      .at(-1);
    return name === undefined ? undefined : { pipelineId, dir, name };
  }

  private async readLocated({ pipelineId, dir, name }: Located): Promise<CheckpointRecord> {
    const path = join(dir, name);
    const parsed = parseCheckpointFileName(name);
    if (!parsed) throw new CheckpointCorruptError(undefined, `${path}: not a checkpoint file name`);
    const text = await readFile(path, "utf8");
    return parseCheckpointFile(text, { pipelineId, path, ...parsed });
  }

  /** One listing entry; undefined when the file vanished since the folder was read. */
  private async listEntry(
    pipelineId: string,
    dir: string,
    name: string,
    isFile: boolean,
  ): Promise<ListedCheckpoint | undefined> {
    const location = join(dir, name);
    const parsed = parseCheckpointFileName(name);
    const corrupt = (reason: string): ListedCheckpoint => {
      const entry: CorruptEntry = { pipelineId, checkpointId: parsed?.checkpointId, location, reason };
      return { ok: false, corrupt: entry };
    };
    if (!parsed) return corrupt("file name does not match <sequence>-<checkpoint id>.json");
    if (!isFile) return corrupt("not a regular file");
    try {
      const record = await this.readLocated({ pipelineId, dir, name });
      return { ok: true, metadata: record.metadata };
    } catch (error) {
      if (error instanceof CheckpointCorruptError) return corrupt(error.problems.join("; "));
      if (hasCode(error, "ENOENT")) return undefined;
      throw error;
    }
  }

  /** Removes the run folder once it holds no checkpoint and no output. */
  private async dropIfEmpty(dir: string): Promise<void> {
    const names = await readdirIfPresent(dir);
    if (!names || names.some((n) => n !== OUTPUTS)) return;
    try {
      if (names.length > 0) await rmdir(join(dir, OUTPUTS));
      await rmdir(dir);
    } catch (error) {
      // Something was added meanwhile (or `outputs` is not a folder): the run is not empty after all.
      if (hasCode(error, "ENOTEMPTY", "EEXIST", "ENOTDIR", "ENOENT")) return;
      throw error;
    }
    await this.sync(this.basePath);
  }
}
