import { CheckpointNotFoundError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import { assertKnownOptions } from "../core/options.js";
import type { CheckpointRecord } from "../core/record.js";
import type {
  CheckpointMetadata,
  CheckpointStatistics,
  CheckpointStatusValue,
  CreateCheckpointInput,
  PipelineCheckpoint,
  PipelineSummary,
  ResumeContext,
  ValidationResult,
} from "../core/types.js";
import type { ChangeEvent, WatchOptions } from "../feed/types.js";
import type { Lease, ListedCheckpoint } from "../stores/types.js";
import type { AtRestStore } from "../transforms/at-rest-store.js";
import { visualizeChain } from "./chain-text.js";
import { ChainWriter } from "./chain-writer.js";
import { validateStored } from "./check.js";
import {
  type CheckpointExportOptions,
  exportCheckpoint,
  importCheckpointFile,
} from "./checkpoint-transfer.js";
import { type LearnCostsOptions, type LearnedCosts, learnCosts } from "./cost-history.js";
import { checkpointHistory, lostCheckpoint } from "./history.js";
import { assertStatus, checkInput, statusPatch } from "./input.js";
import { assertLoadable } from "./limits.js";
import { type CheckpointManagerOptions, type ImportOptions, MANAGER_OPTIONS } from "./manager-options.js";
import { ManagerStore } from "./manager-store.js";
import { tracedLoad, tracedResumeLoad, tracedWrite } from "./manager-telemetry.js";
import { type RekeyOptions, type RekeyReport, rekey } from "./rekey.js";
import { loadLatest, markResumed, type ResumeDeps, resumeContextOf } from "./resume.js";
import {
  type CleanupOptions,
  type CleanupReport,
  cleanupOldCheckpoints,
  cleanupRunsForgetting,
  type RunCleanupReport,
} from "./retention.js";
import {
  type ExportForm,
  exportRun,
  importRun,
  type RunExportOptions,
  type RunExportReport,
  type RunImportOptions,
  type RunImportReport,
} from "./run-transfer.js";
import { listRun, type RunValidation, validateAllRuns, validateRun, type WalkOptions } from "./run-walk.js";
import {
  findUnfinishedRun,
  getRunInfo,
  type ListRunsOptions,
  listRunsByName,
  type RunInfo,
  type RunSummaryPage,
  summarizeOneRun,
  summarizeRuns,
} from "./runs.js";
import { discardDamagedOutputs, type SalvagedResume } from "./salvage.js";
import { computeStatistics, type StatisticsOptions } from "./statistics.js";
import { type UpgradeOptions, type UpgradeReport, type UpgradeTarget, upgrade } from "./upgrade.js";
import { decodeVerified, verifyRecord } from "./verify.js";
import { Watchers } from "./watchers.js";

export type { LearnCostsOptions, LearnedCosts } from "./cost-history.js";
export type { CheckpointManagerOptions, ImportOptions } from "./manager-options.js";
export type { RekeyOptions, RekeyReport } from "./rekey.js";
export type { ListRunsOptions, RunInfo, RunSummaryPage } from "./runs.js";
export type { UpgradedRun, UpgradeOptions, UpgradeReport, UpgradeSkip, UpgradeTarget } from "./upgrade.js";

/**
 * Creates, verifies, resumes and manages checkpoints in one store. All reads are verified:
 * a checkpoint whose checksum or outputs do not match is never returned as valid.
 */
export class CheckpointManager {
  private readonly stores: ManagerStore;
  private readonly clock: () => Date;
  private readonly maxRecordBytes: number;
  private readonly writer: ChainWriter;
  /** One per watch under way: `close()` ends them before it closes the store. */
  private readonly watchers = new Watchers();

  constructor(options: CheckpointManagerOptions = {}) {
    // A misspelt option (say, encryption settings) must not be silently ignored.
    assertKnownOptions("CheckpointManager", options, MANAGER_OPTIONS);
    // Resolve now so a bad strategy or option fails at construction, not at first write.
    this.stores = new ManagerStore(options);
    this.clock = options.clock ?? (() => new Date());
    this.writer = new ChainWriter(this.clock);
    this.maxRecordBytes = this.stores.maxRecordBytes;
  }

  /** The underlying store, opened and set up on first use. */
  async getStore(): Promise<AtRestStore> {
    return this.stores.get();
  }

  /** The strategy name of the store (`file`, `sqlite`...). */
  get storageStrategy(): string {
    return this.stores.strategy;
  }

  /**
   * Writes a new checkpoint after the run's newest one and returns its id. With `fence` (the
   * runner's lease), the store refuses the write if another runner has taken the run over.
   * `HistoryLostError` when the store lost every checkpoint of a run this manager wrote to.
   *
   * A write the store could not confirm (the connection was lost after it was sent) is settled
   * by reading its id back, for about 1.5 s while the store is away, and re-sending the same
   * record when it is absent. If the store stays away, `StoreUnavailableError` with
   * `maybeCommitted` is thrown, and the next write to the run settles it first: a retry of the
   * same checkpoint then gets the stored id back instead of a second copy.
   */
  async createCheckpoint(input: CreateCheckpointInput, options: { fence?: Lease } = {}): Promise<string> {
    const checked = checkInput(input);
    return tracedWrite(this.storageStrategy, this.writer, await this.getStore(), checked, options);
  }

  private async getRecord(checkpointId: string): Promise<{ store: AtRestStore; record: CheckpointRecord }> {
    assertValidName("checkpointId", checkpointId);
    const store = await this.getStore();
    const record = await store.getCheckpoint(checkpointId);
    if (!record) throw new CheckpointNotFoundError(checkpointId);
    return { store, record };
  }

  /** Loads and verifies one checkpoint; a checksum or output mismatch throws `CAIRN_CORRUPT`. */
  async loadCheckpoint(checkpointId: string): Promise<PipelineCheckpoint> {
    return tracedLoad(this.storageStrategy, undefined, async () => {
      const { store, record } = await this.getRecord(checkpointId);
      assertLoadable(record.metadata, this.maxRecordBytes);
      return decodeVerified(await verifyRecord(store, record));
    });
  }

  /** Checks a checkpoint without throwing: checksum, outputs, their decoding and the link to its parent. */
  async validateCheckpoint(checkpointId: string): Promise<ValidationResult> {
    assertValidName("checkpointId", checkpointId);
    return validateStored(await this.getStore(), checkpointId);
  }

  /**
   * Checks every checkpoint of a run with one listing, as {@link validateCheckpoint} does one;
   * unparseable entries count as invalid, checkpoints deleted meanwhile as gone. `CAIRN_NOT_FOUND`
   * for a run with nothing stored.
   */
  async validateRun(pipelineId: string, options: WalkOptions = {}): Promise<RunValidation> {
    return validateRun(await this.getStore(), pipelineId, options);
  }

  /** {@link validateRun} for every run in the store. */
  async validateAllRuns(options: Parameters<typeof validateAllRuns>[1] = {}): Promise<RunValidation[]> {
    return validateAllRuns(await this.getStore(), options);
  }

  /** A run's listing, unparseable entries included; `CAIRN_NOT_FOUND` for a run with nothing stored. */
  async listRun(pipelineId: string): Promise<ListedCheckpoint[]> {
    return listRun(await this.getStore(), pipelineId);
  }

  /** Changes a checkpoint's status (and error message); the checksum is unaffected. */
  async updateCheckpointStatus(
    checkpointId: string,
    status: CheckpointStatusValue,
    errorMessage?: string,
  ): Promise<void> {
    assertValidName("checkpointId", checkpointId);
    assertStatus(status);
    const store = await this.getStore();
    await store.updateCheckpoint(checkpointId, statusPatch(status, errorMessage));
  }

  /** The run's newest checkpoint that verifies and is resumable; corrupt ones are skipped. */
  async loadLatestCheckpoint(pipelineId: string): Promise<PipelineCheckpoint | undefined> {
    return tracedLoad(this.storageStrategy, pipelineId, () => loadLatest(this.resumeDeps, pipelineId));
  }

  /**
   * The run's resume point at stage granularity (salvage): the newest resumable checkpoint whose
   * record verifies, with each stage's newest verified output and the checkpoint it comes from,
   * and the stages whose stored output failed verification. Undefined when no record verifies.
   */
  async loadResumePoint(pipelineId: string): Promise<SalvagedResume | undefined> {
    return tracedResumeLoad(this.storageStrategy, this.resumeDeps, pipelineId);
  }

  /** Deletes the damaged outputs a salvaged resume found (see `discardDamagedOutputs`), under the run's lease. */
  async discardDamagedOutputs(pipelineId: string, hashes: readonly string[]): Promise<string[]> {
    const deleted = await discardDamagedOutputs(await this.getStore(), pipelineId, hashes);
    if (deleted.length > 0) this.writer.forget(pipelineId);
    return deleted;
  }

  /**
   * The checkpoint a run is known to have had when the store holds none of its checkpoints any
   * more: the one this manager wrote to it last, or the one its head record names. Undefined when
   * the run has checkpoints, or never had any this manager or the store knows of.
   */
  async lostHistory(pipelineId: string): Promise<string | undefined> {
    assertValidName("pipelineId", pipelineId);
    return lostCheckpoint(await this.getStore(), pipelineId, () => this.writer.lastWritten(pipelineId));
  }

  /** The newest checkpoint this manager wrote to the run, if it remembers one. */
  lastWritten(pipelineId: string): string | undefined {
    return this.writer.lastWritten(pipelineId);
  }

  /** Marks a checkpoint as resumed from and bumps its resume count; returns the new count. */
  async recordResume(checkpoint: PipelineCheckpoint): Promise<number> {
    return markResumed(await this.getStore(), checkpoint);
  }

  /** The resume context of a run (newest valid checkpoint), recording the resume in the store. */
  async resumePipeline(pipelineId: string): Promise<ResumeContext | undefined> {
    const checkpoint = await this.loadLatestCheckpoint(pipelineId);
    if (!checkpoint) return undefined;
    return resumeContextOf(checkpoint, await this.recordResume(checkpoint));
  }

  /** What the store says of a run: whether it exists, whose it is, whether it finished (reads its newest checkpoint). */
  async getRunInfo(pipelineId: string): Promise<RunInfo | undefined> {
    return getRunInfo(() => this.getStore(), pipelineId);
  }

  /** The newest run of a pipeline that has not finished, for auto-resume; undefined when none. */
  async findUnfinishedRun(pipelineName: string): Promise<string | undefined> {
    return findUnfinishedRun(() => this.getStore(), pipelineName);
  }

  /** Metadata of every checkpoint of a run, newest first (unparseable entries left out). */
  async getCheckpointHistory(pipelineId: string): Promise<CheckpointMetadata[]> {
    assertValidName("pipelineId", pipelineId);
    return checkpointHistory(await this.getStore(), pipelineId);
  }

  /** The checkpoint chain of a run as text: each checkpoint's status and the one check's verdict. */
  async visualizeCheckpointChain(pipelineId: string): Promise<string> {
    assertValidName("pipelineId", pipelineId);
    return visualizeChain(await this.getStore(), pipelineId);
  }

  /** A summary of every run in the store (reads every run: prefer `listRuns` for one pipeline). */
  async listPipelines(): Promise<PipelineSummary[]> {
    return summarizeRuns(await this.getStore());
  }

  /** One page of a pipeline's runs, newest first, answered from the store's runs-by-name index. */
  async listRuns(pipelineName: string, options: ListRunsOptions = {}): Promise<RunSummaryPage> {
    return listRunsByName(await this.getStore(), pipelineName, options);
  }

  /** The summary of one run; undefined when the store holds nothing of it. */
  async getRunSummary(pipelineId: string): Promise<PipelineSummary | undefined> {
    assertValidName("pipelineId", pipelineId);
    return summarizeOneRun(await this.getStore(), pipelineId);
  }

  /**
   * Deletes every checkpoint and output of the given runs and returns how many checkpoints
   * went. A run that has not finished is kept (its checkpoints are how it resumes) unless
   * `force` is set; a run being executed (its lease is held) is kept even then.
   * {@link cleanupPipelines} tells a refused run from a missing one.
   */
  async cleanupCompletedPipelines(
    pipelineIds: readonly string[],
    options: { force?: boolean } = {},
  ): Promise<number> {
    const report = await this.cleanupPipelines(pipelineIds, options);
    return report.deleted.reduce((sum, run) => sum + run.checkpoints, 0);
  }

  /** Like {@link cleanupCompletedPipelines}, reporting each run as deleted, refused or missing (`dryRun`: would be). */
  async cleanupPipelines(
    pipelineIds: readonly string[],
    options: { force?: boolean; dryRun?: boolean } = {},
  ): Promise<RunCleanupReport> {
    for (const id of pipelineIds) assertValidName("pipelineId", id);
    const forget = (pipelineId: string) => this.writer.forget(pipelineId);
    return cleanupRunsForgetting(await this.getStore(), pipelineIds, options, forget);
  }

  /** Deletes checkpoints older than `retentionDays` (their own timestamps); returns how many. Runs in use are skipped. */
  async autoCleanup(options: CleanupOptions): Promise<number> {
    return (await this.cleanupOldCheckpoints(options)).deletedCheckpoints.length;
  }

  /** Like {@link autoCleanup}, with the full report (and `dryRun` to only plan). */
  async cleanupOldCheckpoints(options: CleanupOptions): Promise<CleanupReport> {
    const report = await cleanupOldCheckpoints(await this.getStore(), options, this.clock());
    for (const id of report.removedRuns) this.writer.forget(id);
    return report;
  }

  /**
   * Writes one verified checkpoint, outputs inlined, to a self-contained JSON file. A checkpoint
   * of an encrypted run is written sealed with its run's key record, or, with `decrypt`, in
   * plaintext with its outputs re-addressed by SHA-256 (see `exportPipeline`). Returns which.
   */
  async exportCheckpoint(
    checkpointId: string,
    path: string,
    options: CheckpointExportOptions = {},
  ): Promise<ExportForm> {
    const { store, record } = await this.getRecord(checkpointId);
    return exportCheckpoint(store, record, path, this.clock(), options);
  }

  /** Imports an exported checkpoint after verifying it; returns its id. */
  async importCheckpoint(path: string, options: ImportOptions = {}): Promise<string> {
    const overwrite = options.overwrite ?? false;
    return importCheckpointFile(
      await this.getStore(),
      path,
      overwrite,
      options.maxImportBytes,
      this.maxRecordBytes,
    );
  }

  /**
   * Writes every checkpoint of a run, each verified, oldest first, to one JSON file. An encrypted
   * run is written sealed (as stored, with its key record: the key is needed to export and to
   * import it); with `decrypt`, in plaintext, its outputs re-addressed by SHA-256.
   */
  async exportPipeline(
    pipelineId: string,
    path: string,
    options: RunExportOptions = {},
  ): Promise<RunExportReport> {
    return exportRun(await this.getStore(), pipelineId, path, this.clock(), options);
  }

  /** Imports a run export (or a single-checkpoint export), verifying every checkpoint first. */
  async importPipeline(path: string, options: RunImportOptions = {}): Promise<RunImportReport> {
    return importRun(await this.getStore(), path, options, this.maxRecordBytes);
  }

  /**
   * Statistics computed from what the store holds: over every run, or with `pipelineName` over
   * that pipeline's runs only (found through the runs-by-name index, without reading the others).
   * With `verify`, every checkpoint gets the one check too (`check`: as costly as `validateAllRuns`).
   */
  async getStatistics(options: StatisticsOptions = {}): Promise<CheckpointStatistics> {
    if (options.pipelineName !== undefined) assertValidName("pipelineName", options.pipelineName);
    return computeStatistics(await this.getStore(), this.storageStrategy, options);
  }

  /** The cost model of a pipeline, learned from its newest runs (default 50); see `cost-history.ts`. */
  async learnCosts(pipelineName: string, options: LearnCostsOptions = {}): Promise<LearnedCosts> {
    return learnCosts(await this.getStore(), pipelineName, options);
  }

  /**
   * Re-wraps runs' data keys under another key-encryption key (default: the ring's active key)
   * without rewriting data; afterwards the old key can leave the ring. One compare-and-set per
   * run: safe beside writers, and resumable after a crash (done runs are skipped).
   */
  async rekey(options: RekeyOptions = {}): Promise<RekeyReport> {
    return rekey(await this.getStore(), options);
  }

  /**
   * Rewrites each run (one, or `all`) whose newest checkpoint is in an older record format as one
   * new checkpoint in the current format, chained to it under the run's lease; old records stay.
   * Runs in use or with a tip that fails verification are skipped and reported; see `upgrade.ts`.
   */
  async upgrade(target: UpgradeTarget, options: UpgradeOptions = {}): Promise<UpgradeReport> {
    const store = await this.getStore();
    const write: Parameters<typeof upgrade>[1] = (input, fence, expectedTip) =>
      this.writer.write(store, checkInput(input), { fence, expectedTip });
    return upgrade(store, write, target, options);
  }

  /**
   * The store's changes as they happen (checkpoint written, status changed, deleted), each with
   * an opaque `cursor`: pass the last one delivered back as `since` to continue after it, even
   * after a crash (a change may then come twice, with the same cursor; none is skipped).
   * `FeedTrimmedError` when the feed no longer holds what follows `since`; `StoreUnsupportedError`
   * for a store without a feed (object storage). Ends cleanly on `signal`, `break`, or `close()`.
   */
  watch(options: WatchOptions = {}): AsyncGenerator<ChangeEvent, void> {
    return this.watchers.start(() => this.getStore(), options);
  }

  private get resumeDeps(): ResumeDeps {
    return { getStore: () => this.getStore(), writer: this.writer, maxRecordBytes: this.maxRecordBytes };
  }

  /** Closes the store. */
  async close(): Promise<void> {
    if (!this.stores.beginClose()) return;
    this.watchers.abortAll();
    await this.writer.idle();
    await this.stores.close();
  }
}
