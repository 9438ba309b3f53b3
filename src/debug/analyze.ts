/**
 * Pipeline analysis (the seed's `analyze` debugger command): the health of one run's
 * checkpoints, what it stores, how its resumes went, where it failed, and what to do next.
 * Informational: it reports problems, it never repairs or deletes anything.
 */
import { CheckpointCorruptError, KeyMissingError } from "../core/errors.js";
import type { StoredMetadata } from "../core/record.js";
import { PIPELINE_COMPLETE_STAGE } from "../core/types.js";
import { isThreadRun } from "../langgraph/ids.js";
import { type AtRestUsage, runAtRestUsage } from "../manager/at-rest-usage.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import type { HistoryFinding } from "../manager/history.js";
import type { CheckpointVerdict, RunValidation, SealedKey } from "../manager/run-walk.js";
import type { CheckpointStore } from "../stores/types.js";
import { analyzeCosts, type CostAnalysis, type CostAnalysisOptions } from "./analyze-costs.js";
import { analyzeThread, type ThreadAnalysis } from "./analyze-thread.js";
import { recommend } from "./recommendations.js";

export { renderAnalysisText } from "./analyze-text.js";

/** An invalid checkpoint (fails the one check), or an unreadable stored entry (does not parse). */
export interface CorruptedCheckpoint {
  /** Undefined for an unparseable entry whose id cannot be told from its location. */
  checkpointId?: string;
  /** Where an unparseable entry is (file path, row key); absent for checkpoints that parse. */
  location?: string;
  problems: string[];
  /** Quarantined by `cairn repair`: a handled problem, resume skips it. */
  quarantined: boolean;
}

/** A checkpoint whose parent is gone while older checkpoints of the run remain: a gap in the chain. */
export interface OrphanedCheckpoint {
  checkpointId: string;
  stageName: string;
  sequence: number;
  /** The parent id it names, which the store no longer holds. */
  missingParentId: string;
}

/** Failures of one stage, from `failed` checkpoints and checkpoints carrying an error message. */
export interface FailurePoint {
  stageName: string;
  count: number;
  /** The latest error message of the stage; null when its failed checkpoints carry none. */
  lastError: string | null;
  lastAt: Date;
}

/** The checkpoint a resume would start from (what `loadLatestCheckpoint` returns). */
export interface ResumePoint {
  checkpointId: string;
  stageName: string;
  stageIndex: number;
  sequence: number;
  timestamp: Date;
  completedStages: string[];
  pendingStages: string[];
  /** False when newer checkpoints exist that a resume cannot use (corrupt or expired). */
  isNewest: boolean;
}

/** What {@link analyzePipeline} finds. */
export interface PipelineAnalysis {
  pipelineId: string;
  pipelineName: string;
  /**
   * Disjoint counts: a corrupted checkpoint whose parent is also missing counts as corrupted, and
   * an orphaned one stays orphaned when it is also sealed. `sealed`: not verified, encrypted under
   * `keyMissing`, a key this reader lacks (neither healthy nor corrupted).
   */
  checkpoints: {
    total: number;
    healthy: number;
    corrupted: number;
    orphaned: number;
    sealed: number;
    keyMissing?: SealedKey;
  };
  corrupted: CorruptedCheckpoint[];
  orphaned: OrphanedCheckpoint[];
  storage: {
    /** Sum of `data_size` as the store reports it. */
    checkpointBytes: number;
    /** Bytes of the outputs the store holds for the run. */
    outputBytes: number;
    outputs: number;
    /** Stored outputs no readable checkpoint references. */
    unreferencedOutputs: number;
    /** Record bodies and outputs as stored at rest against uncompressed, compressed and encrypted counts. */
    atRest: AtRestUsage;
  };
  resumes: { totalResumeCount: number; resumedCheckpoints: number };
  /** For this run: null if never resumed, 1 if resumed and finished, 0 if resumed and not finished. */
  resumeSuccessRate: number | null;
  finished: boolean;
  /** A `pipeline_complete` checkpoint is listed but sealed: finished by its metadata, not verified. */
  finishedUnverified?: true;
  /** Null when no checkpoint verifies (a resume starts from the first stage), or when it is unknown. */
  resumePoint: ResumePoint | null;
  /** Set when the resume point is unknown: finding it needs this key, which the reader lacks. */
  resumeKeyMissing?: SealedKey;
  failurePoints: FailurePoint[];
  /** The run's history compared with its head record (see `validateRun`): lost history, or information. */
  history: HistoryFinding[];
  recommendations: string[];
  /** With the `costs` option: the pipeline's learned costs per stage of this run (never for a LangGraph thread). */
  costs?: CostAnalysis;
  /**
   * For a LangGraph thread run (CairnSaver): its tree and latest checkpoint. Such a run never
   * finishes and has no stages: `resumePoint` is null and the advice is LangGraph's.
   */
  thread?: ThreadAnalysis;
}

/** Options of {@link analyzePipeline}. */
export interface AnalyzeOptions {
  /** Reference time for the age of checkpoints (default: now). */
  now?: Date;
  /** Checkpoints older than this many days are reported as due for cleanup (default 30). */
  retentionDays?: number;
  /** Store flags appended to the commands in recommendations, e.g. `["--store", "sqlite:./cairn.db"]`. */
  storeArgs?: readonly string[];
  /** Learn the pipeline's costs from its newest runs and report them per stage (reads those runs). */
  costs?: boolean | CostAnalysisOptions;
}

/** Facts the recommendations are made from, beyond the analysis itself. */
export interface AnalysisFacts {
  /** Checkpoints older than the retention period. */
  old: StoredMetadata[];
  retentionDays: number;
  /** Bytes of the unreferenced outputs. */
  unreferencedBytes: number;
  /** False when a checkpoint could not be read, so outputs it references may count as unreferenced. */
  refsComplete: boolean;
  /** Why the resume point could not be decoded, when it could not. */
  resumeError: string | undefined;
  storeArgs: readonly string[];
}

const DAY_MS = 86_400_000;

/** Analyzes one run; an unknown run is a `CheckpointNotFoundError`. */
export async function analyzePipeline(
  manager: CheckpointManager,
  pipelineId: string,
  options: AnalyzeOptions = {},
): Promise<PipelineAnalysis> {
  return (await analyzeRun(manager, pipelineId, options)).analysis;
}

/**
 * {@link analyzePipeline} with the run walk it was made from, for callers (the recovery report)
 * that need the listing and verdicts too, without walking the run again.
 */
export async function analyzeRun(
  manager: CheckpointManager,
  pipelineId: string,
  options: AnalyzeOptions = {},
): Promise<{ analysis: PipelineAnalysis; run: RunValidation }> {
  // Without keys, encrypted checkpoints are reported sealed (unverified), never thrown or called invalid.
  const run = await manager.validateRun(pipelineId, { sealed: "report" });
  // A checkpoint deleted during the walk (a concurrent cleanup) is no longer part of the run.
  const present = run.checkpoints.filter((v) => v.status !== "gone");
  const corrupted: CorruptedCheckpoint[] = present
    .filter((v) => v.status === "invalid")
    .map((v) => ({
      ...(v.checkpointId !== null ? { checkpointId: v.checkpointId } : {}),
      ...(v.corrupt ? { location: v.corrupt.location } : {}),
      problems: v.problems.map((p) => p.message),
      quarantined: v.quarantined,
    }));
  const ok = present.flatMap((v) => (v.metadata ? [v.metadata] : []));
  const corruptIds = new Set(corrupted.map((c) => c.checkpointId));
  const orphaned = findOrphans(present, ok).filter((o) => !corruptIds.has(o.checkpointId));
  const orphanIds = new Set(orphaned.map((o) => o.checkpointId));
  const sealed = present.filter(
    (v) => v.status === "sealed" && (v.checkpointId === null || !orphanIds.has(v.checkpointId)),
  );
  const { storage, unreferencedBytes, refsComplete } = await measureStorage(
    await manager.getStore(),
    pipelineId,
    present,
  );
  // Only a valid `pipeline_complete` checkpoint finishes a run: an invalid one proves nothing.
  const finished = present.some(
    (v) => v.status === "valid" && v.metadata?.stage_name === PIPELINE_COMPLETE_STAGE,
  );
  const finishedUnverified =
    !finished &&
    present.some((v) => v.status === "sealed" && v.metadata?.stage_name === PIPELINE_COMPLETE_STAGE);
  const totalResumeCount = ok.reduce((sum, m) => sum + m.resume_count, 0);
  // A thread resumes from LangGraph's latest checkpoint, not from the newest record written.
  const thread = isThreadRun(pipelineId) ? await analyzeThread(manager, pipelineId) : undefined;
  const { resumePoint, resumeError, resumeKeyMissing } = thread
    ? { resumePoint: null, resumeError: undefined, resumeKeyMissing: undefined }
    : await findResumePoint(manager, pipelineId, ok);
  const keyMissing = present.find((v) => v.keyMissing)?.keyMissing ?? resumeKeyMissing;
  const retentionDays = options.retentionDays ?? 30;
  const cutoff = (options.now ?? new Date()).getTime() - retentionDays * DAY_MS;
  const total = present.length;
  const analysis: PipelineAnalysis = {
    pipelineId,
    pipelineName: ok.at(-1)?.pipeline_name ?? pipelineId,
    checkpoints: {
      total,
      healthy: total - corrupted.length - orphaned.length - sealed.length,
      corrupted: corrupted.length,
      orphaned: orphaned.length,
      sealed: sealed.length,
      ...(keyMissing ? { keyMissing } : {}),
    },
    corrupted,
    orphaned,
    storage,
    resumes: { totalResumeCount, resumedCheckpoints: ok.filter((m) => m.resume_count > 0).length },
    resumeSuccessRate: totalResumeCount === 0 ? null : finished ? 1 : 0,
    finished,
    ...(finishedUnverified ? { finishedUnverified } : {}),
    resumePoint,
    ...(resumeKeyMissing ? { resumeKeyMissing } : {}),
    failurePoints: failurePoints(ok),
    history: run.history,
    recommendations: [],
    ...(thread ? { thread } : {}),
  };
  analysis.recommendations = recommend(analysis, {
    old: ok.filter((m) => Date.parse(m.timestamp) < cutoff),
    retentionDays,
    unreferencedBytes,
    refsComplete,
    resumeError,
    storeArgs: options.storeArgs ?? [],
  });
  // Stage costs are a pipeline's: a thread's "stages" are LangGraph sources (input, loop, ...).
  if (options.costs && !thread) {
    const costOptions = options.costs === true ? {} : options.costs;
    analysis.costs = await analyzeCosts(manager, pipelineId, analysis.pipelineName, costOptions);
  }
  return { analysis, run };
}

/**
 * Checkpoints whose parent is not in the store while an older checkpoint of the run is: a
 * checkpoint was removed from the middle. Retention removes the oldest ones, which leaves the
 * oldest survivor without a parent but no older checkpoint, so it is not counted.
 */
function findOrphans(
  present: readonly CheckpointVerdict[],
  ok: readonly StoredMetadata[],
): OrphanedCheckpoint[] {
  // An unparseable entry is still in the store: its child is corrupt (broken chain), not orphaned.
  const ids = new Set(present.map((v) => v.checkpointId));
  const oldest = Math.min(...ok.map((m) => m.sequence));
  const orphans: OrphanedCheckpoint[] = [];
  for (const m of ok) {
    const parent = m.parent_checkpoint_id;
    if (parent === null || ids.has(parent) || m.sequence <= oldest) continue;
    orphans.push({
      checkpointId: m.checkpoint_id,
      stageName: m.stage_name,
      sequence: m.sequence,
      missingParentId: parent,
    });
  }
  return orphans;
}

/** Output bytes of the run, and which outputs no checkpoint the walk could read references. */
async function measureStorage(
  store: CheckpointStore,
  pipelineId: string,
  present: readonly CheckpointVerdict[],
): Promise<{ storage: PipelineAnalysis["storage"]; unreferencedBytes: number; refsComplete: boolean }> {
  const referenced = new Set<string>();
  // An entry whose body does not parse may reference outputs too; its references cannot be known.
  let refsComplete = true;
  for (const v of present) {
    if (v.body) for (const hash of Object.values(v.body.output_refs)) referenced.add(hash);
    else refsComplete = false;
  }
  const hashes = await store.listOutputHashes(pipelineId);
  const texts = hashes.length > 0 ? await store.getOutputs(pipelineId, hashes) : new Map<string, string>();
  let outputBytes = 0;
  let unreferencedBytes = 0;
  let unreferenced = 0;
  for (const hash of hashes) {
    const bytes = Buffer.byteLength(texts.get(hash) ?? "", "utf8");
    outputBytes += bytes;
    if (!referenced.has(hash)) {
      unreferenced++;
      unreferencedBytes += bytes;
    }
  }
  const checkpointBytes = present.reduce((sum, v) => sum + (v.metadata?.data_size ?? 0), 0);
  const ids = present.flatMap((v) => (v.metadata ? [v.metadata.checkpoint_id] : []));
  const atRest = await runAtRestUsage(store, pipelineId, ids);
  return {
    storage: {
      checkpointBytes,
      outputBytes,
      outputs: hashes.length,
      unreferencedOutputs: unreferenced,
      atRest,
    },
    unreferencedBytes,
    refsComplete,
  };
}

async function findResumePoint(
  manager: CheckpointManager,
  pipelineId: string,
  ok: readonly StoredMetadata[],
): Promise<{
  resumePoint: ResumePoint | null;
  resumeError: string | undefined;
  resumeKeyMissing?: SealedKey;
}> {
  try {
    // Where a resume starts: the salvaged base (see `manager/salvage.ts`), as `execute()` reads it.
    const checkpoint = (await manager.loadResumePoint(pipelineId))?.checkpoint;
    if (!checkpoint) return { resumePoint: null, resumeError: undefined };
    const m = checkpoint.metadata;
    return {
      resumePoint: {
        checkpointId: m.checkpointId,
        stageName: m.stageName,
        stageIndex: m.stageIndex,
        sequence: m.sequence,
        timestamp: m.timestamp,
        completedStages: checkpoint.completedStages,
        pendingStages: checkpoint.pendingStages,
        isNewest: ok.every((o) => o.sequence <= m.sequence),
      },
      resumeError: undefined,
    };
  } catch (error) {
    // The newest verified checkpoint does not decode: a resume would fail the same way.
    if (error instanceof CheckpointCorruptError) return { resumePoint: null, resumeError: error.message };
    // Encrypted under a key this reader lacks: where a resume starts is unknown, not an error.
    if (error instanceof KeyMissingError) {
      return {
        resumePoint: null,
        resumeError: undefined,
        resumeKeyMissing: { keyId: error.keyId, kind: error.kind },
      };
    }
    throw error;
  }
}

/** Failures grouped by stage, most frequent first. */
function failurePoints(ok: readonly StoredMetadata[]): FailurePoint[] {
  const byStage = new Map<string, FailurePoint>();
  // `ok` is oldest first, so the last one seen per stage is the latest failure.
  for (const m of ok) {
    if (m.status !== "failed" && m.error_message === null) continue;
    const point = byStage.get(m.stage_name) ?? {
      stageName: m.stage_name,
      count: 0,
      lastError: null,
      lastAt: new Date(m.timestamp),
    };
    point.count++;
    point.lastAt = new Date(m.timestamp);
    if (m.error_message !== null) point.lastError = m.error_message;
    byStage.set(m.stage_name, point);
  }
  return [...byStage.values()].sort((a, b) => b.count - a.count || b.lastAt.getTime() - a.lastAt.getTime());
}
