/**
 * The file store: one folder per run, one JSON file per checkpoint, stage outputs stored once
 * per run under their hash.
 *
 *   basePath/<pipelineId>/<sequence padded to 10 digits>-<checkpointId>.json
 *   basePath/<pipelineId>/outputs/<sha256>.json
 *   basePath/<pipelineId>/outputs/.run-key   the run's key record (`run-key.ts`)
 *   basePath/.leases/   leases (`run-leases.ts`) and run locks (`file-leases.ts`)
 *   basePath/.runs/     the runs-by-name index (`runs-index.ts`)
 *   basePath/.staging/, basePath/.trash/   whole-run imports and deletes (`staging.ts`)
 *   basePath/.feed/     the change feed (`file-feed.ts`); basePath/.meta/  meta values
 *   basePath/.cairn-layout.json   `{"layout":2}`, the store's layout version (`layout.ts`):
 *                       written by the first write, checked on open; a newer one is refused
 *
 * Every write goes to a temp file that is flushed and then moved into place, and the folder is
 * flushed after, so a crash never leaves a half-written checkpoint. A checkpoint is written
 * after its outputs: a crash in between leaves unreferenced outputs, never a checkpoint whose
 * outputs are missing. Checkpoint writes of one run are serialized within the instance and,
 * by the run's lock file, across processes.
 */
import { rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CheckpointNotFoundError, InvalidConfigError } from "../../core/errors.js";
import { unknownOptionsProblem } from "../../core/options.js";
import { unlinkIfPresent } from "../../util/atomic-file.js";
import { KeyedLock, readdirIfPresent } from "../../util/fs-util.js";
import { checkLeaseArgs } from "../lease.js";
import type {
  CheckpointRecord,
  CheckpointStore,
  CorruptEntry,
  DeleteCheckpointsOptions,
  ImportedCheckpoint,
  ImportRunOptions,
  Lease,
  LeaseAttempt,
  ListedCheckpoint,
  ListRunsQuery,
  OutputRecord,
  PutOptions,
  RunHead,
  RunPage,
  StatusPatch,
  StoreChange,
} from "../types.js";
import { checkpointFileName, outputFileName, parseOutputFileName } from "./checkpoint-file.js";
import { entryPath, readEntry } from "./corrupt-entries.js";
import { removalChange } from "./feed-changes.js";
import { DEFAULT_FEED_RETENTION, type Declare, FileFeed } from "./file-feed.js";
import { withRunLock } from "./file-leases.js";
import { FILE_STORE_OPTIONS, type FileStoreOptions, feedRetentionOf } from "./file-options.js";
import { readHeadRecord } from "./head-record.js";
import { indexRun } from "./id-index.js";
import { StoreLayout } from "./layout.js";
import { listRun } from "./listing.js";
import { deleteLocked, importLocked, type LockedWriter, putLocked, updateLocked } from "./locked-writes.js";
import { findById, Locations } from "./lookup.js";
import { readMeta, writeMeta } from "./meta-files.js";
import { readNewest } from "./newest.js";
import { type RunFolder, removeCheckpointFiles, removeCorruptFile, removeOutputFiles } from "./removal.js";
import { readOutputs, syncDir } from "./run-folders.js";
import { holdsOnlyKey, readRunKey, writeRunKey } from "./run-key.js";
import { RunLeases } from "./run-leases.js";
import { HEAD, listRunIds, OUTPUTS, runFolder } from "./run-paths.js";
import { RunsIndex } from "./runs-index.js";
import { checkImport, stageRun } from "./staging.js";
import { setupFileStore } from "./store-setup.js";

export { FEED_POLL_MS } from "./file-feed.js";
export type { FileStoreOptions } from "./file-options.js";

/** Stores checkpoints as JSON files, one folder per run. */
export class FileStore implements CheckpointStore {
  readonly strategy = "file";
  readonly persistent = true;
  readonly location: string;
  /** Absolute folder holding the runs. */
  readonly basePath: string;
  private readonly fsync: boolean;
  private readonly readOnly: boolean;
  /** Serializes writes to one run within this instance, so a check and its write never interleave. */
  private readonly locks = new KeyedLock();
  private readonly runs: RunsIndex;
  private readonly leases: RunLeases;
  private readonly locations = new Locations();
  private readonly layout: StoreLayout;
  private readonly feed: FileFeed;

  constructor(options: FileStoreOptions) {
    const unknown = unknownOptionsProblem("the file store", options, FILE_STORE_OPTIONS);
    if (unknown !== undefined) throw new InvalidConfigError(unknown);
    this.basePath = resolve(options.basePath);
    this.fsync = options.fsync ?? true;
    this.readOnly = options.readOnly ?? false;
    this.location = `file:${this.basePath}`;
    this.runs = new RunsIndex(this.basePath, this.fsync);
    this.leases = new RunLeases(this.basePath, this.fsync);
    this.layout = new StoreLayout(this.basePath, this.fsync);
    const retention = feedRetentionOf(options, DEFAULT_FEED_RETENTION);
    this.feed = new FileFeed(this.basePath, this.fsync, this.readOnly, retention, () => this.layout.write());
  }

  /** Checks the base folder and, for a store an older cairn wrote, builds the runs index once. */
  async setup(): Promise<void> {
    const { basePath, location, fsync, readOnly, layout, runs, feed } = this;
    await setupFileStore({ basePath, location, fsync, readOnly, layout, runs, feed });
  }

  /**
   * Writes new outputs, then the checkpoint file create-only, all under the run's cross-process
   * lock: the fencing check, the tip check and the write are one step for every other writer.
   * In an indexed run neither check lists the folder: the id is claimed by its marker
   * (`id-claim.ts`) and the tip is the head hint's file when it is there (`newestForWrite`).
   */
  async putCheckpoint(
    record: CheckpointRecord,
    outputs: readonly OutputRecord[],
    fence?: Lease,
    options: PutOptions = {},
  ): Promise<void> {
    const { metadata } = record;
    const { pipeline_id: pipelineId, checkpoint_id: id } = metadata;
    const dir = this.runDir(pipelineId);
    const name = checkpointFileName(metadata.sequence, id);
    const outputNames = outputs.map((o) => outputFileName(o.hash));
    this.runs.nameFolder(metadata.pipeline_name);
    await this.layout.write();
    const target = { dir, name, outputNames };
    await this.queued(pipelineId, (declare) =>
      putLocked(this.writer, declare, target, record, outputs, fence, options),
    );
  }

  /**
   * Stages the whole run folder under `.staging` (flushed, without the lock), then publishes it
   * under the run's lock with one rename; see `staging.ts`. The checks run again under the lock.
   */
  async importRun(
    pipelineId: string,
    checkpoints: readonly ImportedCheckpoint[],
    options: ImportRunOptions,
  ): Promise<void> {
    for (const { record } of checkpoints) this.runs.nameFolder(record.metadata.pipeline_name);
    await this.layout.write();
    this.locations.forget(pipelineId);
    // Refused before the staging (which can take long) too, not only under the lock.
    await checkImport(this.basePath, pipelineId, checkpoints, options);
    const staged = await stageRun(this.basePath, pipelineId, checkpoints, this.fsync, options.runKey);
    try {
      await this.queued(pipelineId, (declare) =>
        importLocked(this.writer, declare, this.runDir(pipelineId), pipelineId, checkpoints, options, staged),
      );
    } finally {
      await rm(staged.folder, { recursive: true, force: true });
    }
  }

  /** Takes the run's lease under the run's cross-process lock; see `run-leases.ts` for expiry. */
  async acquireLease(pipelineId: string, owner: string, ttlMs: number): Promise<LeaseAttempt> {
    checkLeaseArgs(owner, ttlMs);
    return this.leases.acquire(this.checkRun(pipelineId), owner, ttlMs);
  }

  /** Extends a lease still held. */
  async renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    checkLeaseArgs(lease.owner, ttlMs);
    return this.leases.renew({ ...lease, pipelineId: this.checkRun(lease.pipelineId) }, ttlMs);
  }

  /** Ends a lease still held, keeping its token. */
  async releaseLease(lease: Lease): Promise<void> {
    await this.leases.release({ ...lease, pipelineId: this.checkRun(lease.pipelineId) });
  }

  /** The lease file's record if unreleased and unexpired by this machine's clock (`run-leases.ts`). */
  async getLease(pipelineId: string): Promise<Lease | undefined> {
    return this.leases.recorded(this.checkRun(pipelineId));
  }

  private checkRun(pipelineId: string): string {
    this.runDir(pipelineId);
    return pipelineId;
  }

  /** Reads one checkpoint by id: where a listing saw it, where its marker says, else by listing. */
  async getCheckpoint(checkpointId: string): Promise<CheckpointRecord | undefined> {
    return (await findById(this.basePath, this.locations, checkpointId))?.record;
  }

  /** Reads the run's checkpoint with the highest sequence, parsing no other file. */
  async getLatestCheckpoint(pipelineId: string): Promise<CheckpointRecord | undefined> {
    const dir = this.runDir(pipelineId);
    return readNewest(pipelineId, dir);
  }

  /**
   * For checkpoint files changed by hand (and runs an older cairn wrote): removes the run's head
   * hint, so the next lookup lists the folder, points the id markers at the run's files and flags
   * it indexed, and recomputes the run's runs-index entry from its checkpoints.
   */
  async rebuildIndexes(pipelineId: string): Promise<string[]> {
    const dir = this.runDir(pipelineId);
    const head = join(dir, OUTPUTS, HEAD);
    return this.locks.run(pipelineId, () =>
      withRunLock(this.basePath, pipelineId, async () => {
        const done: string[] = [];
        if (unlinkIfPresent(head)) {
          await this.sync(join(dir, OUTPUTS));
          done.push(`removed the newest-checkpoint hint ${head}; the next write writes it again`);
        }
        done.push(...indexRun(this.basePath, pipelineId, dir));
        return [...done, ...(await this.runs.rebuild(pipelineId, await listRun(pipelineId, dir)))];
      }),
    );
  }

  /** A page of a pipeline's runs from the runs index: one or two folder listings. */
  async listRuns(query: ListRunsQuery): Promise<RunPage> {
    return this.runs.list(query);
  }

  /** Lists the run's checkpoints oldest first; unreadable files are reported as corrupt entries. */
  async listCheckpoints(pipelineId: string): Promise<ListedCheckpoint[]> {
    const dir = this.runDir(pipelineId);
    const listing = await listRun(pipelineId, dir);
    // A walk reads each listed checkpoint by id next: each lookup then opens the file it knows.
    this.locations.remember(pipelineId, dir, listing);
    return listing;
  }

  /** Lists the run folders, sorted, but those holding only a key record (one `stat` each). */
  async listPipelineIds(): Promise<string[]> {
    const ids = await listRunIds(this.basePath);
    return ids.filter((id) => !holdsOnlyKey(this.runDir(id)));
  }

  /** The run's key record (`outputs/.run-key`); undefined when it has none. */
  async getRunKey(pipelineId: string): Promise<string | undefined> {
    return readRunKey(this.runDir(pipelineId));
  }

  /** Compare-and-set of the run's key record under the run's cross-process lock. */
  async putRunKey(pipelineId: string, record: string, expected: string | undefined): Promise<boolean> {
    const dir = this.runDir(pipelineId);
    await this.layout.write();
    return this.locks.run(pipelineId, () =>
      // Through the feed (declaring nothing): a killed writer's changes are settled before the
      // folder is made again, so its inode tests still see the folder it left.
      this.locked(pipelineId, async () => {
        if (readRunKey(dir) !== expected) return false;
        await writeRunKey(this.basePath, dir, record, this.fsync);
        return true;
      }),
    );
  }

  /** Rewrites a checkpoint's file with patched status fields, keeping its body bytes. */
  async updateCheckpoint(checkpointId: string, patch: StatusPatch): Promise<void> {
    const found = (await findById(this.basePath, this.locations, checkpointId))?.found;
    if (!found) throw new CheckpointNotFoundError(checkpointId);
    const { pipelineId } = found;
    await this.queued(pipelineId, (declare) =>
      updateLocked(this.writer, declare, found, checkpointId, patch),
    );
  }

  /** Deletes checkpoint files by id, corrupt ones included; returns how many ids existed. */
  async deleteCheckpoints(
    pipelineId: string,
    checkpointIds: readonly string[],
    options: DeleteCheckpointsOptions = {},
  ): Promise<number> {
    const run = this.folder(pipelineId);
    const ids = new Set(checkpointIds);
    // Under the run's lock, so the run's changes reach the feed in the order they happen.
    return this.locks.run(pipelineId, async () => {
      if (readdirIfPresent(run.dir) === undefined) return 0;
      return this.locked(pipelineId, (declare) =>
        removeCheckpointFiles(run, ids, options.retention === true, async (found) => {
          const name = this.runs.nameOf(pipelineId);
          await declare(found.map((f) => removalChange(this.basePath, name, f)));
        }),
      );
    });
  }

  /** The run's head record (`outputs/.run-head`, see `head-record.ts`). */
  async getRunHead(pipelineId: string): Promise<RunHead | undefined> {
    return readHeadRecord(this.runDir(pipelineId));
  }

  /** Reads outputs by hash; hashes not stored are absent from the map. */
  async getOutputs(pipelineId: string, hashes: readonly string[]): Promise<Map<string, string>> {
    return readOutputs(join(this.runDir(pipelineId), OUTPUTS), hashes);
  }

  /** Lists the hashes of the run's stored outputs, sorted. */
  async listOutputHashes(pipelineId: string): Promise<string[]> {
    const names = readdirIfPresent(join(this.runDir(pipelineId), OUTPUTS));
    return (names ?? []).flatMap((n) => parseOutputFileName(n) ?? []).sort();
  }

  /** Deletes outputs by hash; returns how many existed. */
  async deleteOutputs(pipelineId: string, hashes: readonly string[]): Promise<number> {
    const run = this.folder(pipelineId);
    return this.locks.run(pipelineId, () => removeOutputFiles(run, hashes));
  }

  /**
   * Scrubs the run's key record (zeros, flushed, unlinked), then renames the run's folder into
   * `.trash` and removes its runs-index entry and the folder: a crash never leaves a half-deleted
   * run (at worst a run without its key, which is unreadable as intended), and the next setup
   * finishes what a crash left.
   */
  async deleteRun(pipelineId: string): Promise<void> {
    const dir = this.runDir(pipelineId);
    this.locations.forget(pipelineId);
    await this.locks.run(pipelineId, async () => {
      // Nothing to delete: no lock file, so a store that does not exist stays that way.
      if (readdirIfPresent(dir) === undefined && !this.runs.has(pipelineId)) return;
      await this.locked(pipelineId, (declare) => deleteLocked(this.writer, declare, dir, pipelineId));
    });
  }

  /** The text of a corrupt entry's file (a folder or a link is described in JSON instead). */
  async readCorruptEntry(entry: CorruptEntry): Promise<string> {
    return readEntry(entryPath(this.runDir(entry.pipelineId), entry), entry);
  }

  /** Unlinks a corrupt entry's file from its run folder, once sure it still does not parse. */
  async removeCorruptEntry(entry: CorruptEntry): Promise<void> {
    const run = this.folder(entry.pipelineId);
    await this.locks.run(entry.pipelineId, () => removeCorruptFile(run, entry));
  }

  /** Changes after `since`, oldest first (`file-feed.ts`). */
  async readChanges(since: string | undefined, limit: number): Promise<StoreChange[]> {
    return this.feed.readChanges(since, limit);
  }

  /** The cursor of the feed's newest change. */
  async feedCursor(): Promise<string> {
    return this.feed.feedCursor();
  }

  /** Resolves once a change after `since` may exist: `fs.watch`, and a poll every `FEED_POLL_MS`. */
  async waitForChanges(since: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return this.feed.waitForChanges(since, timeoutMs, signal);
  }

  /** A meta value (`.meta/<key>.value`); undefined when unset. */
  async getMeta(key: string): Promise<string | undefined> {
    return readMeta(this.basePath, key);
  }

  /** Sets a meta value by temp file and rename. */
  async putMeta(key: string, value: string): Promise<void> {
    await this.layout.write();
    await writeMeta(this.basePath, key, value, this.fsync);
  }

  /** Nothing to release: no handle stays open between calls. */
  async close(): Promise<void> {}

  /** Runs a write in the run's in-process queue, then under its lock file, recording its changes. */
  private queued<T>(pipelineId: string, fn: (declare: Declare) => Promise<T>): Promise<T> {
    // The queue first: waiting in it is cheaper than polling the lock file.
    return this.locks.run(pipelineId, () => this.locked(pipelineId, fn));
  }

  /** Runs a write under the run's lock file, recording its changes in the feed (`file-feed.ts`). */
  private locked<T>(pipelineId: string, fn: (declare: Declare) => Promise<T>): Promise<T> {
    return withRunLock(this.basePath, pipelineId, () => this.feed.record(pipelineId, fn));
  }

  /** What the locked steps of a write need (`locked-writes.ts`). */
  private get writer(): LockedWriter {
    return { basePath: this.basePath, fsync: this.fsync, runs: this.runs, leases: this.leases };
  }

  /** The run's folder; refuses a name that would not be a plain folder of the base folder. */
  private runDir(pipelineId: string): string {
    return runFolder(this.basePath, pipelineId);
  }

  /** The run's folder with this store's durability, for the deletions in `removal.ts`. */
  private folder(pipelineId: string): RunFolder {
    return { basePath: this.basePath, pipelineId, dir: this.runDir(pipelineId), fsync: this.fsync };
  }

  private async sync(dir: string): Promise<void> {
    await syncDir(dir, this.fsync);
  }
}
