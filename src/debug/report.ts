/**
 * Recovery report (the seed's `report` debugger command): everything an operator needs to
 * bring a failed or stopped run back: its state, its checkpoints' health, where a resume would
 * start, what failed, and the exact command that resumes it.
 */
import { CheckpointCorruptError, KeyMissingError } from "../core/errors.js";
import { CHECKPOINT_STATUSES, type CheckpointStatusValue, type RunSummaryStatus } from "../core/types.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import type { HistoryFinding } from "../manager/history.js";
import type { RunValidation, SealedKey } from "../manager/run-walk.js";
import { summarizeLiveRun } from "../manager/statistics.js";
import type { PlanEstimate } from "../pipeline/plan-estimate.js";
import type { PlannedStage } from "../pipeline/types.js";
import type { CheckpointStore, CorruptEntry, ListedCheckpoint } from "../stores/types.js";
import {
  type AnalyzeOptions,
  analyzeRun,
  type CorruptedCheckpoint,
  type FailurePoint,
  type OrphanedCheckpoint,
  type PipelineAnalysis,
  type ResumePoint,
} from "./analyze.js";
import type { ThreadAnalysis } from "./analyze-thread.js";
import { commandLine, shellQuote } from "./recommendations.js";
import { renderHtml, renderMarkdown, renderText } from "./report-formats.js";
import { buildStageGraph, type StageGraph } from "./visualize/stage-graph.js";

/** Options of {@link buildRecoveryReport}. */
export interface ReportOptions extends AnalyzeOptions {
  /** The pipeline file, for the resume command; `<pipeline-file>` is printed without it (it is not stored). */
  pipelineFile?: string;
  /** The planner's decisions for resuming the run (a dry run of the pipeline definition), to show. */
  resumePlan?: PlannedStage[];
  /** The resume plan's estimated time to finish and time saved (the dry run's `estimate`). */
  resumeEstimate?: PlanEstimate;
}

/** An unfinished run's status by its lease: held is `in_progress`, free is `paused`. */
async function leasedStatus(store: CheckpointStore, pipelineId: string): Promise<RunSummaryStatus> {
  return (await store.getLease(pipelineId)) ? "in_progress" : "paused";
}

/** The recovery report of one run. */
export interface RecoveryReport {
  generatedAt: Date;
  run: {
    pipelineId: string;
    pipelineName: string;
    /** As in a run summary: `paused` when unfinished and nobody holds its lease. */
    status: RunSummaryStatus;
    finished: boolean;
    /** A `pipeline_complete` checkpoint is listed but sealed: finished by its metadata, not verified. */
    finishedUnverified?: true;
    /** From the newest checkpoint that parses. */
    stagesCompleted: number;
    stagesTotal: number;
    firstAt: Date | null;
    lastAt: Date | null;
    latestCheckpointId: string | null;
    latestStage: string | null;
  };
  statistics: {
    checkpoints: number;
    healthy: number;
    corrupted: number;
    orphaned: number;
    /** Not verified: encrypted under `keyMissing`, a key this reader lacks (never counted invalid). */
    sealed: number;
    keyMissing?: SealedKey;
    /** Checkpoints that parse, by status. */
    byStatus: Record<CheckpointStatusValue, number>;
    totalResumeCount: number;
    resumedCheckpoints: number;
    resumeSuccessRate: number | null;
  };
  storage: PipelineAnalysis["storage"];
  /** The checkpoint a resume starts from (`loadLatestCheckpoint`); null when none verifies or it is unknown. */
  recoveryPoint: ResumePoint | null;
  /** Set when the recovery point is unknown: finding it needs this key, which the reader lacks. */
  recoveryKeyMissing?: SealedKey;
  corrupted: CorruptedCheckpoint[];
  orphaned: OrphanedCheckpoint[];
  /** Lost history and retention information from the run's head record. */
  history: HistoryFinding[];
  failurePoints: FailurePoint[];
  recommendations: string[];
  /** `cairn run <pipeline-file> --run-id <id> <store flags>`; null once the run finished, or for a LangGraph thread. */
  resumeCommand: string | null;
  /** For a LangGraph thread run: its tree and the checkpoint LangGraph resumes from. */
  thread?: ThreadAnalysis;
  /** What a resume would skip, re-run and run, and why; only when the pipeline definition was given. */
  resumePlan?: PlannedStage[];
  /** The resume plan's estimated time to finish and time saved, learned from the store's runs. */
  resumeEstimate?: PlanEstimate;
  /**
   * The run's stages by status with their dependencies, from its newest checkpoint that
   * verifies; absent when none verifies or the key to read them is missing.
   */
  stageGraph?: StageGraph;
}

/** The report formats {@link renderReport} produces. */
export type ReportFormat = "text" | "md" | "html";

/** Every {@link ReportFormat}. */
export const REPORT_FORMATS: readonly ReportFormat[] = ["text", "md", "html"];

/** Builds the recovery report of a run; an unknown run is a `CheckpointNotFoundError`. */
export async function buildRecoveryReport(
  manager: CheckpointManager,
  pipelineId: string,
  options: ReportOptions = {},
): Promise<RecoveryReport> {
  return (await buildRecoveryReportWithRun(manager, pipelineId, options)).report;
}

/**
 * {@link buildRecoveryReport} with the run walk it was made from (each checkpoint's verdict), for
 * callers that show every checkpoint too (the console's run page) without walking the run again.
 */
export async function buildRecoveryReportWithRun(
  manager: CheckpointManager,
  pipelineId: string,
  options: ReportOptions = {},
): Promise<{ report: RecoveryReport; run: RunValidation }> {
  const generatedAt = options.now ?? new Date();
  const { analysis, run } = await analyzeRun(manager, pipelineId, { ...options, now: generatedAt });
  const present = run.checkpoints.filter((v) => v.status !== "gone");
  const ok = present.flatMap((v) => (v.metadata ? [v.metadata] : []));
  const listing = present.map(
    (v): ListedCheckpoint =>
      v.metadata ? { ok: true, metadata: v.metadata } : { ok: false, corrupt: v.corrupt as CorruptEntry },
  );
  const newest = present.findLast((v) => v.body !== undefined)?.body;
  const store = await manager.getStore();
  const summary = await summarizeLiveRun(
    store,
    pipelineId,
    listing,
    newest && { completed: newest.completed_stages.length, pending: newest.pending_stages.length },
  );
  const byStatus = Object.fromEntries(CHECKPOINT_STATUSES.map((s) => [s, 0])) as Record<
    CheckpointStatusValue,
    number
  >;
  for (const m of ok) byStatus[m.status]++;
  // A LangGraph thread has no stages, and LangGraph (not `cairn run`) resumes it.
  const stageGraph = analysis.thread ? undefined : await stagesOf(manager, pipelineId, generatedAt);
  const { total, healthy, corrupted, orphaned, sealed, keyMissing } = analysis.checkpoints;
  const report: RecoveryReport = {
    generatedAt,
    run: {
      pipelineId,
      pipelineName: analysis.pipelineName,
      // The listing alone counts a corrupt `pipeline_complete` as finished; the walk does not.
      // A sealed one (no key) is not verified either way: the listing's word stands.
      status:
        summary.finished && !analysis.finished && !analysis.finishedUnverified
          ? await leasedStatus(store, pipelineId)
          : summary.status,
      finished: analysis.finished,
      ...(analysis.finishedUnverified ? { finishedUnverified: true as const } : {}),
      stagesCompleted: summary.completedStages,
      stagesTotal: summary.totalStages,
      firstAt: summary.firstTimestamp ?? null,
      lastAt: summary.lastTimestamp ?? null,
      latestCheckpointId: summary.latestCheckpointId ?? null,
      latestStage: summary.latestStage ?? null,
    },
    statistics: {
      checkpoints: total,
      healthy,
      corrupted,
      orphaned,
      sealed,
      ...(keyMissing ? { keyMissing } : {}),
      byStatus,
      ...analysis.resumes,
      resumeSuccessRate: analysis.resumeSuccessRate,
    },
    storage: analysis.storage,
    recoveryPoint: analysis.resumePoint,
    ...(analysis.resumeKeyMissing ? { recoveryKeyMissing: analysis.resumeKeyMissing } : {}),
    corrupted: analysis.corrupted,
    orphaned: analysis.orphaned,
    history: analysis.history,
    failurePoints: analysis.failurePoints,
    recommendations: analysis.recommendations,
    resumeCommand: analysis.finished || analysis.thread ? null : resumeCommand(pipelineId, options),
    ...(analysis.thread ? { thread: analysis.thread } : {}),
    ...(options.resumePlan ? { resumePlan: options.resumePlan } : {}),
    ...(options.resumeEstimate ? { resumeEstimate: options.resumeEstimate } : {}),
    ...(stageGraph ? { stageGraph } : {}),
  };
  return { report, run };
}

/** The stage graph, or undefined when no checkpoint verifies or is readable without a missing key. */
async function stagesOf(
  manager: CheckpointManager,
  pipelineId: string,
  now: Date,
): Promise<StageGraph | undefined> {
  try {
    return await buildStageGraph(manager, pipelineId, { now });
  } catch (error) {
    // Both are already in the report (invalid checkpoints, the missing key); a store error is not.
    if (error instanceof CheckpointCorruptError || error instanceof KeyMissingError) return undefined;
    throw error;
  }
}

/** The command that resumes the run, pasteable as is once the pipeline file is filled in. */
function resumeCommand(pipelineId: string, options: ReportOptions): string {
  // The placeholder is for the user to replace, so it is not shell-quoted.
  const file = options.pipelineFile !== undefined ? shellQuote(options.pipelineFile) : "<pipeline-file>";
  return `cairn run ${file} ${commandLine("--run-id", pipelineId, ...(options.storeArgs ?? []))}`;
}

/** Renders a report as plain text, Markdown with tables, or a self-contained HTML page. */
export function renderReport(report: RecoveryReport, format: ReportFormat): string {
  switch (format) {
    case "text":
      return renderText(report);
    case "md":
      return renderMarkdown(report);
    case "html":
      return renderHtml(report);
  }
}
