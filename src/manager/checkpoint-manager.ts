import { CheckpointNotFoundError, ClosedError, TooLargeError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import { assertKnownOptions } from "../core/options.js";
import { type CheckpointRecord, toMetadata } from "../core/record.js";
import {
  type CheckpointMetadata,
  type CheckpointStatistics,
  CheckpointStatus,
  type CheckpointStatusValue,
  type CreateCheckpointInput,
  type PipelineCheckpoint,
  type PipelineSummary,
  type ResumeContext,
  type ValidationResult,
} from "../core/types.js";
import type { ChangeEvent, WatchOptions } from "../feed/types.js";
import { watchOpened } from "../feed/watch.js";
import {
  openStore,
  type ResolvedStore,
  resolveStore,
  type StoreConfig,
  type StoreSpec,
} from "../stores/registry.js";
import type { CheckpointStore, Lease, ListedCheckpoint } from "../stores/types.js";
import { AtRestStore } from "../transforms/at-rest-store.js";
import {
  type CompressionSetting,
  loadCodec,
  type ResolvedCompression,
  resolveCompression,
} from "../transforms/compression.js";
import { createKeyRing, type EncryptionOptions, type KeyRing } from "../transforms/keys.js";
import { renderChain } from "./chain-text.js";
import { ChainWriter } from "./chain-writer.js";
import { checkStored, isQuarantined, storeParents } from "./check.js";
import {
  type CheckpointExportOptions,
  exportCheckpoint,
  importCheckpointFile,
} from "./checkpoint-transfer.js";
import { type LearnCostsOptions, type LearnedCosts, learnCosts } from "./cost-history.js";
import { assertStatus, checkInput } from "./input.js";
import { assertLoadable, byteLimit, DEFAULT_MAX_RECORD_BYTES } from "./limits.js";
import { type RekeyOptions, type RekeyReport, rekey } from "./rekey.js";
import {
  type CleanupOptions,
  type CleanupReport,
  cleanupOldCheckpoints,
  cleanupRuns,
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
  findResumePoint,
  findUnfinishedRun,
  getRunInfo,
  type ListRunsOptions,
  listRunsByName,
  type RunInfo,
  type RunSummaryPage,
  summarizeOneRun,
  summarizeRuns,
} from "./runs.js";
import { discardDamagedOutputs, findSalvagedResume, type SalvagedResume } from "./salvage.js";
import { computeStatistics, type StatisticsOptions } from "./statistics.js";
import { type UpgradeOptions, type UpgradeReport, type UpgradeTarget, upgrade } from "./upgrade.js";
import { decodeVerified, verifyRecord } from "./verify.js";

export type { LearnCostsOptions, LearnedCosts } from "./cost-history.js";
export type { RekeyOptions, RekeyReport } from "./rekey.js";
export type { ListRunsOptions, RunInfo, RunSummaryPage } from "./runs.js";
export type { UpgradedRun, UpgradeOptions, UpgradeReport, UpgradeSkip, UpgradeTarget } from "./upgrade.js";

/** How to build a {@link CheckpointManager}. */
export interface CheckpointManagerOptions {
  /** Storage strategy (`file`, `sqlite`, `postgres`/`database`, `redis`, `memory`) or a store URL. */
  strategy?: string;
  /** Options of that strategy's store (camelCase; the seed's snake_case is accepted). */
  config?: StoreConfig;
  /** A store URL (`sqlite:./cairn.db`) or a store instance; takes precedence over `strategy`. */
  store?: StoreSpec;
  /** Clock used for checkpoint timestamps and retention; tests pass a fixed one. */
  clock?: () => Date;
  /** Largest checkpoint (record and outputs, bytes) a load reads; larger is `CAIRN_TOO_LARGE`. Default 512 MiB. */
  maxRecordBytes?: number;
  /** Open the store for reading: nothing is created or migrated; no store there is `CAIRN_NOT_FOUND`. */
  readOnly?: boolean;
  /**
   * Compress checkpoints and outputs at rest: `true` (the recommended algorithm), an algorithm
   * name, or `{ algorithm, level, minBytes }`. Off by default; compressed records are read either way.
   */
  compression?: CompressionSetting;
  /** Encrypt checkpoints and outputs at rest (AES-256-GCM, a data key per run): the key ring. */
  encryption?: EncryptionOptions;
}

const MANAGER_OPTIONS = [
  "strategy",
  "config",
  "store",
  "clock",
  "maxRecordBytes",
  "readOnly",
  "compression",
  "encryption",
] as const satisfies readonly (keyof CheckpointManagerOptions)[];

/** Options of `importCheckpoint`. */
export interface ImportOptions {
  /** Replace a checkpoint that already exists with the same id. */
  overwrite?: boolean;
  /** Largest export file read, in bytes; larger is `CAIRN_TOO_LARGE`, checked before reading. Default 1 GiB. */
  maxImportBytes?: number;
}

/**
 * Creates, verifies, resumes and manages checkpoints in one store. All reads are verified:
 * a checkpoint whose checksum or outputs do not match is never returned as valid.
 */
export class CheckpointManager {
  private readonly spec: StoreSpec | ResolvedStore;
  private storePromise: Promise<AtRestStore> | undefined;
  private readonly compression: ResolvedCompression | undefined;
  private readonly ring: KeyRing | undefined;
  private readonly clock: () => Date;
  private readonly maxRecordBytes: number;
  private readonly readOnly: boolean;
  private readonly writer: ChainWriter;
  private closed = false;
  /** One per watch under way: `close()` ends them before it closes the store. */
  private readonly watchers = new Set<AbortController>();

  constructor(options: CheckpointManagerOptions = {}) {
    // A misspelt option (say, encryption settings) must not be silently ignored.
    assertKnownOptions("CheckpointManager", options, MANAGER_OPTIONS);
    // Resolve now so a bad strategy or option fails at construction, not at first write.
    this.spec =
      options.store !== undefined
        ? typeof options.store === "string"
          ? resolveStore(options.store)
          : options.store
        : resolveStore(options.strategy, options.config);
    this.clock = options.clock ?? (() => new Date());
    this.writer = new ChainWriter(this.clock);
    this.maxRecordBytes = byteLimit("maxRecordBytes", options.maxRecordBytes, DEFAULT_MAX_RECORD_BYTES);
    this.readOnly = options.readOnly === true;
    this.compression = resolveCompression(options.compression);
    this.ring = options.encryption === undefined ? undefined : createKeyRing(options.encryption);
  }

  /** The underlying store, opened and set up on first use. */
  async getStore(): Promise<AtRestStore> {
    if (this.closed) throw new ClosedError("This CheckpointManager");
    if (!this.storePromise) {
      this.storePromise = this.openLayered().catch((error: unknown) => {
        this.storePromise = undefined;
        throw error;
      });
    }
    const store = await this.storePromise;
    await store.setup();
    return store;
  }

  private async openLayered(): Promise<AtRestStore> {
    const c = this.compression;
    const codec = c && (await loadCodec(c.algorithm, c.level, c.minBytes));
    const store = await openStore(this.spec, { readOnly: this.readOnly });
    return new AtRestStore(store, { codec, ring: this.ring, maxBytes: this.maxRecordBytes });
  }

  /** The strategy name of the store (`file`, `sqlite`...). */
  get storageStrategy(): string {
    const spec = this.spec;
    if (typeof spec === "string") return spec;
    if ("definition" in spec) return spec.definition.strategy;
    return (spec as CheckpointStore).strategy ?? "custom";
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
    return this.writer.write(await this.getStore(), checked, options);
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
    const { store, record } = await this.getRecord(checkpointId);
    assertLoadable(record.metadata, this.maxRecordBytes);
    return decodeVerified(await verifyRecord(store, record));
  }

  /** Checks a checkpoint without throwing: checksum, outputs, their decoding and the link to its parent. */
  async validateCheckpoint(checkpointId: string): Promise<ValidationResult> {
    assertValidName("checkpointId", checkpointId);
    const store = await this.getStore();
    const checked = await checkStored(store, checkpointId, storeParents(store));
    if (checked.gone) throw new CheckpointNotFoundError(checkpointId);
    const valid = checked.problems.length === 0;
    const quarantined = !valid && checked.record !== undefined && isQuarantined(checked.record.metadata);
    return { checkpointId, valid, problems: checked.problems, quarantined };
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
    await store.updateCheckpoint(checkpointId, {
      status,
      ...(errorMessage !== undefined ? { error_message: errorMessage } : {}),
    });
  }

  /** The run's newest checkpoint that verifies and is resumable; corrupt ones are skipped. */
  async loadLatestCheckpoint(pipelineId: string): Promise<PipelineCheckpoint | undefined> {
    const found = await findResumePoint(() => this.getStore(), pipelineId);
    // Resuming behind the newest checkpoint (it failed verification): what this manager knows
    // of the run's stored outputs may be wrong, so the next write reads the run again.
    const last = this.writer.lastWritten(pipelineId);
    if (last !== undefined && last !== found?.record.metadata.checkpoint_id) this.writer.forget(pipelineId);
    if (found) assertLoadable(found.record.metadata, this.maxRecordBytes);
    return found && decodeVerified(found);
  }

  /**
   * The run's resume point at stage granularity (salvage): the newest resumable checkpoint whose
   * record verifies, with each stage's newest verified output and the checkpoint it comes from,
   * and the stages whose stored output failed verification. Undefined when no record verifies.
   */
  async loadResumePoint(pipelineId: string): Promise<SalvagedResume | undefined> {
    const found = await findSalvagedResume(await this.getStore(), pipelineId);
    const base = found?.checkpoint.metadata.checkpointId;
    // Resuming behind the newest checkpoint, or past a damaged output: what this manager knows
    // of the run's stored outputs may be wrong, so the next write reads the run again.
    const last = this.writer.lastWritten(pipelineId);
    const salvaged = found !== undefined && Object.keys(found.unverified).length > 0;
    if (last !== undefined && (last !== base || salvaged)) this.writer.forget(pipelineId);
    if (found) {
      const { checkpointId, dataSize } = found.checkpoint.metadata;
      if (dataSize > this.maxRecordBytes)
        throw new TooLargeError(`Checkpoint ${checkpointId}`, dataSize, this.maxRecordBytes);
    }
    return found;
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
    const store = await this.getStore();
    const known = this.writer.lastWritten(pipelineId) ?? (await store.getRunHead(pipelineId))?.checkpointId;
    if (known === undefined) return undefined;
    return (await store.listCheckpoints(pipelineId)).length === 0 ? known : undefined;
  }

  /** The newest checkpoint this manager wrote to the run, if it remembers one. */
  lastWritten(pipelineId: string): string | undefined {
    return this.writer.lastWritten(pipelineId);
  }

  /** Marks a checkpoint as resumed from and bumps its resume count; returns the new count. */
  async recordResume(checkpoint: PipelineCheckpoint): Promise<number> {
    const resumeCount = checkpoint.metadata.resumeCount + 1;
    const store = await this.getStore();
    await store.updateCheckpoint(checkpoint.metadata.checkpointId, {
      status: CheckpointStatus.Resumed,
      resume_count: resumeCount,
    });
    return resumeCount;
  }

  /** The resume context of a run (newest valid checkpoint), recording the resume in the store. */
  async resumePipeline(pipelineId: string): Promise<ResumeContext | undefined> {
    const checkpoint = await this.loadLatestCheckpoint(pipelineId);
    if (!checkpoint) return undefined;
    const { metadata } = checkpoint;
    const resumeCount = await this.recordResume(checkpoint);
    return {
      checkpointId: metadata.checkpointId,
      pipelineId: metadata.pipelineId,
      pipelineName: metadata.pipelineName,
      resumeFromStage: checkpoint.pendingStages[0],
      resumeFromIndex: checkpoint.completedStages.length,
      completedStages: checkpoint.completedStages,
      pendingStages: checkpoint.pendingStages,
      stateData: checkpoint.stateData,
      agentOutputs: checkpoint.agentOutputs,
      provenanceHashes: checkpoint.provenanceHashes,
      pipelineVersion: checkpoint.pipelineVersion,
      outputVersions: checkpoint.outputVersions,
      outputMigrations: checkpoint.outputMigrations,
      resumeCount,
    };
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
    const store = await this.getStore();
    const listing = await store.listCheckpoints(pipelineId);
    const history: CheckpointMetadata[] = [];
    for (const entry of listing) if (entry.ok) history.push(toMetadata(entry.metadata));
    return history.reverse();
  }

  /** The checkpoint chain of a run as text: each checkpoint's status and the one check's verdict. */
  async visualizeCheckpointChain(pipelineId: string): Promise<string> {
    assertValidName("pipelineId", pipelineId);
    const store = await this.getStore();
    const listing = await store.listCheckpoints(pipelineId);
    if (listing.length === 0) return renderChain(pipelineId, []);
    return renderChain(
      pipelineId,
      (await validateRun(store, pipelineId, { listing, sealed: "report" })).checkpoints,
    );
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
    const store = await this.getStore();
    const report = await cleanupRuns(store, pipelineIds, options.force ?? false, options.dryRun ?? false);
    if (report.dryRun) return report;
    // A run deleted here is no lost history: writing to it again starts it anew.
    for (const run of report.deleted) this.writer.forget(run.pipelineId);
    // Nothing of it is stored (a store that lost it): asked to delete it, the manager forgets it too.
    for (const pipelineId of report.missing) this.writer.forget(pipelineId);
    return report;
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
    return importCheckpointFile(
      await this.getStore(),
      path,
      options.overwrite ?? false,
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
    return upgrade(
      store,
      (input, fence, expectedTip) => this.writer.write(store, checkInput(input), { fence, expectedTip }),
      target,
      options,
    );
  }

  /**
   * The store's changes as they happen (checkpoint written, status changed, deleted), each with
   * an opaque `cursor`: pass the last one delivered back as `since` to continue after it, even
   * after a crash (a change may then come twice, with the same cursor; none is skipped).
   * `FeedTrimmedError` when the feed no longer holds what follows `since`; `StoreUnsupportedError`
   * for a store without a feed (object storage). Ends cleanly on `signal`, `break`, or `close()`.
   */
  watch(options: WatchOptions = {}): AsyncGenerator<ChangeEvent, void> {
    const stopped = new AbortController();
    this.watchers.add(stopped);
    stopped.signal.addEventListener("abort", () => this.watchers.delete(stopped), { once: true });
    try {
      return watchOpened(() => this.getStore(), options, stopped);
    } catch (error) {
      stopped.abort();
      throw error;
    }
  }

  /** Closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const watcher of this.watchers) watcher.abort();
    await this.writer.idle();
    if (this.storePromise) {
      const store = await this.storePromise.catch(() => undefined);
      this.storePromise = undefined;
      await store?.close();
    }
  }
}
