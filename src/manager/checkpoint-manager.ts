import { CheckpointNotFoundError, ClosedError, TipMovedError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import { type CheckpointRecord, parseBody, type StoredMetadata, toMetadata } from "../core/record.js";
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
import type { GuardedStore } from "../stores/guarded-store.js";
import {
  openStore,
  type ResolvedStore,
  resolveStore,
  type StoreConfig,
  type StoreSpec,
} from "../stores/registry.js";
import type { CheckpointStore, Lease, ListedCheckpoint } from "../stores/types.js";
import { KeyedLock } from "../util/fs-util.js";
import { renderChain } from "./chain-text.js";
import { checkRecord, checkStored, storeParents } from "./check.js";
import { assertStatus, checkInput, sealChild } from "./input.js";
import { type CleanupOptions, type CleanupReport, cleanupOldCheckpoints, deleteRuns } from "./retention.js";
import {
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
  newestReadable,
  type RunInfo,
  summarizeRuns,
} from "./runs.js";
import { computeStatistics } from "./statistics.js";
import { exportCheckpointFile, importCheckpointFile } from "./transfer.js";
import { decodeVerified, verifyRecord } from "./verify.js";

export type { RunInfo } from "./runs.js";

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
}

/** Options of `importCheckpoint`. */
export interface ImportOptions {
  /** Replace a checkpoint that already exists with the same id. */
  overwrite?: boolean;
}

/** Writes refused because the run's newest checkpoint moved, before one goes unchecked. */
const TIP_ATTEMPTS = 3;
/** Runs whose last checkpoint a manager remembers; a run beyond them reads its parent once. */
const MAX_TIPS = 1000;

/**
 * Creates, verifies, resumes and manages checkpoints in one store. All reads are verified:
 * a checkpoint whose checksum or outputs do not match is never returned as valid.
 */
export class CheckpointManager {
  private readonly spec: StoreSpec | ResolvedStore;
  private storePromise: Promise<GuardedStore> | undefined;
  private readonly clock: () => Date;
  private readonly writes = new KeyedLock();
  /**
   * Per run, the last checkpoint written here: the parent of the next write, which then need not
   * read it back. Used under the same lease (nobody else can write), or, without a lease, on a
   * store that checks the run's newest checkpoint atomically with the write (`checksTip`).
   */
  private readonly tips = new Map<
    string,
    { owner?: string; token?: number; parent: StoredMetadata; refs: ReadonlySet<string> }
  >();
  private closed = false;

  constructor(options: CheckpointManagerOptions = {}) {
    // Resolve now so a bad strategy or option fails at construction, not at first write.
    this.spec =
      options.store !== undefined
        ? typeof options.store === "string"
          ? resolveStore(options.store)
          : options.store
        : resolveStore(options.strategy, options.config);
    this.clock = options.clock ?? (() => new Date());
  }

  /** The underlying store, opened and set up on first use. */
  async getStore(): Promise<GuardedStore> {
    if (this.closed) throw new ClosedError("This CheckpointManager");
    if (!this.storePromise) {
      this.storePromise = openStore(this.spec).catch((error: unknown) => {
        this.storePromise = undefined;
        throw error;
      });
    }
    const store = await this.storePromise;
    await store.setup();
    return store;
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
   */
  async createCheckpoint(input: CreateCheckpointInput, options: { fence?: Lease } = {}): Promise<string> {
    const checked = checkInput(input);
    const { pipelineId } = checked;
    const store = await this.getStore();
    // Checkpoints of one run are written one at a time, so each sees its parent.
    return this.writes.run(pipelineId, async () => {
      const fence = options.fence;
      for (let attempt = 1; ; attempt++) {
        const tip = this.tips.get(pipelineId);
        // Without a lease another writer may come in between: the store must check the tip, and
        // after a few refusals (a run whose newest checkpoint is unreadable) the write goes unchecked.
        const tipChecked = !fence && store.checksTip && attempt <= TIP_ATTEMPTS;
        let parent: StoredMetadata | undefined;
        let parentRefs: ReadonlySet<string>;
        if (
          tip &&
          (fence ? tip.owner === fence.owner && tip.token === fence.token : tipChecked && !tip.owner)
        ) {
          // The checkpoint written here last: no need to read it back.
          ({ parent, refs: parentRefs } = tip);
        } else {
          const newest = await newestReadable(store, pipelineId);
          parent = newest;
          parentRefs = new Set(
            newest ? Object.values(parseBody(newest.checkpoint_id, newest.body).output_refs) : [],
          );
        }
        const { record, outputs } = sealChild(checked, parent, this.clock());
        try {
          // Outputs an earlier checkpoint of the run already stored are referenced, not rewritten.
          await store.putCheckpoint(
            record,
            outputs.filter((o) => !parentRefs.has(o.hash)),
            fence,
            tipChecked ? { expectedTip: parent?.checkpoint_id ?? null } : undefined,
          );
        } catch (error) {
          this.tips.delete(pipelineId);
          // Someone else wrote to the run: read it again and chain after their checkpoint.
          if (error instanceof TipMovedError && tipChecked) continue;
          throw error;
        }
        const refs = new Set([...checked.content.outputs.values()].map((o) => o.hash));
        // Re-inserted so the map keeps runs in order of their last write; the oldest go first.
        this.tips.delete(pipelineId);
        this.tips.set(pipelineId, {
          owner: fence?.owner,
          token: fence?.token,
          parent: record.metadata,
          refs,
        });
        if (this.tips.size > MAX_TIPS) this.tips.delete(this.tips.keys().next().value as string);
        return record.metadata.checkpoint_id;
      }
    });
  }

  private async getRecord(checkpointId: string): Promise<{ store: GuardedStore; record: CheckpointRecord }> {
    assertValidName("checkpointId", checkpointId);
    const store = await this.getStore();
    const record = await store.getCheckpoint(checkpointId);
    if (!record) throw new CheckpointNotFoundError(checkpointId);
    return { store, record };
  }

  /** Loads and verifies one checkpoint; a checksum or output mismatch throws `CAIRN_CORRUPT`. */
  async loadCheckpoint(checkpointId: string): Promise<PipelineCheckpoint> {
    const { store, record } = await this.getRecord(checkpointId);
    return decodeVerified(await verifyRecord(store, record));
  }

  /** Checks a checkpoint without throwing: checksum, outputs, their decoding and the link to its parent. */
  async validateCheckpoint(checkpointId: string): Promise<ValidationResult> {
    assertValidName("checkpointId", checkpointId);
    const store = await this.getStore();
    const checked = await checkStored(store, checkpointId, storeParents(store));
    if (checked.gone) throw new CheckpointNotFoundError(checkpointId);
    return { checkpointId, valid: checked.problems.length === 0, problems: checked.problems };
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
    return found && decodeVerified(found);
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
      resumeCount,
    };
  }

  /**
   * What the store says of a run: whether it exists, whose it is, and whether it finished.
   * Reads the newest checkpoint only (falling back to the listing when that one is unreadable).
   */
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

  /** The checkpoint chain of a run as text, with a status symbol per checkpoint. */
  async visualizeCheckpointChain(pipelineId: string): Promise<string> {
    assertValidName("pipelineId", pipelineId);
    const store = await this.getStore();
    return renderChain(pipelineId, await store.listCheckpoints(pipelineId));
  }

  /** A summary of every run in the store. */
  async listPipelines(): Promise<PipelineSummary[]> {
    return summarizeRuns(await this.getStore());
  }

  /**
   * Deletes every checkpoint and output of the given runs and returns how many checkpoints
   * went. A run that has not finished is kept (its checkpoints are how it resumes) unless
   * `force` is set.
   */
  async cleanupCompletedPipelines(
    pipelineIds: readonly string[],
    options: { force?: boolean } = {},
  ): Promise<number> {
    for (const id of pipelineIds) assertValidName("pipelineId", id);
    return deleteRuns(await this.getStore(), pipelineIds, options.force ?? false);
  }

  /** Deletes checkpoints older than `retentionDays` by their own timestamps; returns how many. */
  async autoCleanup(options: CleanupOptions): Promise<number> {
    return (await this.cleanupOldCheckpoints(options)).deletedCheckpoints.length;
  }

  /** Like {@link autoCleanup}, with the full report (and `dryRun` to only plan). */
  async cleanupOldCheckpoints(options: CleanupOptions): Promise<CleanupReport> {
    return cleanupOldCheckpoints(await this.getStore(), options, this.clock());
  }

  /** Writes one verified checkpoint, outputs inlined, to a self-contained JSON file. */
  async exportCheckpoint(checkpointId: string, path: string): Promise<void> {
    const { store, record } = await this.getRecord(checkpointId);
    const checked = await checkRecord(store, record, storeParents(store));
    await exportCheckpointFile({ ...checked, record }, path, this.clock());
  }

  /** Imports an exported checkpoint after verifying it; returns its id. */
  async importCheckpoint(path: string, options: ImportOptions = {}): Promise<string> {
    return importCheckpointFile(await this.getStore(), path, options.overwrite ?? false);
  }

  /** Writes every checkpoint of a run, each verified, oldest first, to one JSON file. */
  async exportPipeline(
    pipelineId: string,
    path: string,
    options: RunExportOptions = {},
  ): Promise<RunExportReport> {
    return exportRun(await this.getStore(), pipelineId, path, this.clock(), options);
  }

  /** Imports a run export (or a single-checkpoint export), verifying every checkpoint first. */
  async importPipeline(path: string, options: RunImportOptions = {}): Promise<RunImportReport> {
    return importRun(await this.getStore(), path, options);
  }

  /** Statistics computed from what the store holds. */
  async getStatistics(): Promise<CheckpointStatistics> {
    const store = await this.getStore();
    return computeStatistics(store, this.storageStrategy);
  }

  /** Closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writes.idle();
    if (this.storePromise) {
      const store = await this.storePromise.catch(() => undefined);
      this.storePromise = undefined;
      await store?.close();
    }
  }
}
