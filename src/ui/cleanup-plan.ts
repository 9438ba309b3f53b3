/**
 * The console's retention cleanup, in two steps: a preview works out exactly which checkpoints
 * the options select (nothing is deleted), and executing it deletes those and nothing else.
 *
 * - `olderThanDays`: checkpoints older than the cutoff, by the library's retention rule
 *   (`cleanupOldCheckpoints`: each run's newest checkpoint stays unless the whole run is old).
 *   The cutoff is fixed when the preview is made, so executing it ten minutes later does not
 *   select what aged meanwhile.
 * - `keepLast`: of each pipeline name, the newest `keepLast` runs stay; older runs go whole
 *   (`cleanupPipelines`).
 * - `completedOnly` (default true): runs that have not finished are left alone (their
 *   checkpoints are how they resume). A run being executed is never touched either way.
 */
import { CheckpointConflictError, InvalidArgumentError } from "../core/errors.js";
import type { PipelineSummary } from "../core/types.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import { type CleanupReport, cleanupOldCheckpoints, cleanupRuns, listingId } from "../manager/retention.js";

/** What a cleanup asks for (checked by the caller). */
export interface CleanupRequest {
  olderThanDays?: number;
  keepLast?: number;
  completedOnly: boolean;
}

/** One run a cleanup touches. */
export interface SelectedRun {
  pipelineId: string;
  /** How many of its checkpoints go. */
  checkpoints: number;
  checkpointIds: string[];
  /** The whole run goes (nothing of it stays). */
  wholeRun: boolean;
  /** `keepLast` (older than the newest runs of its name) or `age`. */
  reason: "keepLast" | "age";
}

/** What the options select at one moment. */
export interface CleanupSelection {
  /** ISO cutoff of `olderThanDays`; null without it. */
  cutoff: string | null;
  runs: SelectedRun[];
  /** Runs left alone and why (unfinished, in use, busy). */
  skipped: { pipelineId: string; reason: string }[];
}

/** A stable text of what a selection deletes: two selections delete the same iff their signatures match. */
export function selectionSignature(selection: CleanupSelection): string {
  const parts = selection.runs.map(
    (r) => `${r.pipelineId}${r.wholeRun ? "*" : ""}:${[...r.checkpointIds].sort().join(",")}`,
  );
  return parts.sort().join("\n");
}

const newestFirst = (a: PipelineSummary, b: PipelineSummary) =>
  (b.firstTimestamp?.getTime() ?? 0) - (a.firstTimestamp?.getTime() ?? 0) ||
  b.pipelineId.localeCompare(a.pipelineId);

/** Runs beyond the newest `keepLast` of their pipeline name (finished only, with `completedOnly`). */
async function olderRuns(manager: CheckpointManager, keepLast: number, completedOnly: boolean) {
  const byName = new Map<string, PipelineSummary[]>();
  for (const run of await manager.listPipelines()) {
    const list = byName.get(run.pipelineName) ?? [];
    list.push(run);
    byName.set(run.pipelineName, list);
  }
  const beyond: PipelineSummary[] = [];
  for (const runs of byName.values()) beyond.push(...runs.sort(newestFirst).slice(keepLast));
  return beyond.filter((r) => r.finished || !completedOnly).map((r) => r.pipelineId);
}

/** What the request selects now; `now` fixes the age cutoff. Deletes nothing. */
export async function selectCleanup(
  manager: CheckpointManager,
  request: CleanupRequest,
  now: Date,
): Promise<CleanupSelection> {
  if (request.olderThanDays === undefined && request.keepLast === undefined)
    throw new InvalidArgumentError("say what to clean up: olderThanDays, keepLast, or both");
  const selection: CleanupSelection = { cutoff: null, runs: [], skipped: [] };
  const whole = new Set<string>();
  if (request.keepLast !== undefined) {
    const ids = await olderRuns(manager, request.keepLast, request.completedOnly);
    const plan = await manager.cleanupPipelines(ids, { force: !request.completedOnly, dryRun: true });
    for (const run of plan.deleted) {
      const checkpointIds = (await manager.listRun(run.pipelineId)).map(listingId);
      selection.runs.push({
        pipelineId: run.pipelineId,
        checkpoints: checkpointIds.length,
        checkpointIds,
        wholeRun: true,
        reason: "keepLast",
      });
      whole.add(run.pipelineId);
    }
    selection.skipped.push(...plan.refused);
  }
  if (request.olderThanDays !== undefined) {
    const report = await cleanupOldCheckpoints(
      await manager.getStore(),
      { retentionDays: request.olderThanDays, skipUnfinished: request.completedOnly, dryRun: true },
      now,
    );
    selection.cutoff = report.cutoff.toISOString();
    const byRun = new Map<string, string[]>();
    for (const d of report.deletedCheckpoints) {
      if (whole.has(d.pipelineId)) continue;
      byRun.set(d.pipelineId, [...(byRun.get(d.pipelineId) ?? []), d.checkpointId]);
    }
    for (const [pipelineId, checkpointIds] of byRun) {
      const wholeRun = report.removedRuns.includes(pipelineId);
      selection.runs.push({
        pipelineId,
        checkpoints: checkpointIds.length,
        checkpointIds,
        wholeRun,
        reason: "age",
      });
    }
    selection.skipped.push(...report.skipped.filter((s) => !whole.has(s.pipelineId)));
  }
  return selection;
}

/** What an executed cleanup removed. */
export interface CleanupOutcome {
  /** Runs deleted whole. */
  removedRuns: string[];
  /** Every checkpoint deleted (of whole runs too). */
  deletedCheckpoints: string[];
  deletedOutputs: number;
  /** Runs that were in the preview and were left alone at execution (in use, or busy). */
  skipped: { pipelineId: string; reason: string }[];
}

/**
 * Executes a previewed selection: refuses (`CAIRN_CONFLICT`) when the options no longer select
 * the same checkpoints, then deletes per run, never a checkpoint outside the preview.
 */
export async function executeCleanup(
  manager: CheckpointManager,
  request: CleanupRequest,
  previewedAt: Date,
  previewed: CleanupSelection,
  previewId: string,
): Promise<CleanupOutcome> {
  const current = await selectCleanup(manager, request, previewedAt);
  if (selectionSignature(current) !== selectionSignature(previewed)) {
    throw new CheckpointConflictError(
      previewId,
      "The store changed since the cleanup preview: the options no longer select the same checkpoints. Nothing was deleted; preview again.",
    );
  }
  const outcome: CleanupOutcome = { removedRuns: [], deletedCheckpoints: [], deletedOutputs: 0, skipped: [] };
  const wholeRuns = previewed.runs.filter((r) => r.reason === "keepLast");
  if (wholeRuns.length > 0) {
    const ids = wholeRuns.map((r) => r.pipelineId);
    // Under each run's lease, its listing must still be the previewed one: a checkpoint written
    // since the re-check above keeps the run (refused), it is never deleted unseen.
    const expected = new Map(wholeRuns.map((r) => [r.pipelineId, new Set(r.checkpointIds)]));
    const report = await cleanupRuns(await manager.getStore(), ids, !request.completedOnly, false, expected);
    for (const run of report.deleted) {
      outcome.removedRuns.push(run.pipelineId);
      outcome.deletedCheckpoints.push(
        ...(wholeRuns.find((r) => r.pipelineId === run.pipelineId)?.checkpointIds ?? []),
      );
    }
    outcome.skipped.push(...report.refused);
  }
  const store = await manager.getStore();
  for (const run of previewed.runs.filter((r) => r.reason === "age")) {
    const options = {
      retentionDays: request.olderThanDays ?? 0,
      skipUnfinished: request.completedOnly,
      pipelineId: run.pipelineId,
    };
    const report: CleanupReport = await cleanupOldCheckpoints(
      store,
      options,
      previewedAt,
      new Set(run.checkpointIds),
    );
    outcome.deletedCheckpoints.push(...report.deletedCheckpoints.map((d) => d.checkpointId));
    outcome.removedRuns.push(...report.removedRuns);
    outcome.deletedOutputs += report.deletedOutputs;
    outcome.skipped.push(...report.skipped);
  }
  return outcome;
}
