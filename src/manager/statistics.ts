/** Run summaries and store-wide statistics, computed from what the store holds. */
import {
  CHECKPOINT_STATUSES,
  type CheckpointStatistics,
  type CheckpointStatusValue,
  PIPELINE_COMPLETE_STAGE,
  type PipelineSummary,
} from "../core/types.js";
import type { CheckpointStore, ListedCheckpoint, StoredMetadata } from "../stores/types.js";
import { addUsage, emptyUsage, runAtRestUsage } from "./at-rest-usage.js";
import { validateRun } from "./run-walk.js";
import { storedRunBytes } from "./stored-size.js";

/**
 * Summarizes one run from its listing. An unfinished run whose newest checkpoint is completed,
 * resumed or in_progress (a pause without a checkpoint per stage saves its progress as in_progress)
 * is `paused` here: only its lease says whether a runner is executing it ({@link summarizeLiveRun}).
 */
export function summarizeRun(
  pipelineId: string,
  listing: readonly ListedCheckpoint[],
  stages?: { completed: number; pending: number },
): PipelineSummary {
  const ok: StoredMetadata[] = [];
  for (const entry of listing) if (entry.ok) ok.push(entry.metadata);
  const latest = ok.at(-1);
  const finished = ok.some((m) => m.stage_name === PIPELINE_COMPLETE_STAGE);
  return {
    pipelineId,
    pipelineName: latest?.pipeline_name ?? pipelineId,
    status: finished
      ? "completed"
      : latest && latest.status !== "failed" && latest.status !== "expired"
        ? "paused"
        : (latest?.status ?? "expired"),
    finished,
    checkpointCount: ok.length,
    corruptCount: listing.length - ok.length,
    latestCheckpointId: latest?.checkpoint_id,
    latestStage: latest?.stage_name,
    completedStages: stages?.completed ?? 0,
    totalStages: stages ? stages.completed + stages.pending : 0,
    firstTimestamp: ok[0] ? new Date(ok[0].timestamp) : undefined,
    lastTimestamp: latest ? new Date(latest.timestamp) : undefined,
    resumeCount: ok.reduce((sum, m) => sum + m.resume_count, 0),
  };
}

/**
 * {@link summarizeRun}, then for a `paused` run one read of its lease: a run a runner holds is
 * `in_progress`. Finished, failed and expired runs are not probed.
 */
export async function summarizeLiveRun(
  store: CheckpointStore,
  pipelineId: string,
  listing: readonly ListedCheckpoint[],
  stages?: { completed: number; pending: number },
): Promise<PipelineSummary> {
  const summary = summarizeRun(pipelineId, listing, stages);
  if (summary.status === "paused" && (await store.getLease(pipelineId))) summary.status = "in_progress";
  return summary;
}

/** Every run of one pipeline, from the runs-by-name index, a page at a time. */
async function* runsOf(store: CheckpointStore, pipelineName: string): AsyncGenerator<string> {
  let cursor: string | undefined;
  do {
    const page = await store.listRuns({ pipelineName, limit: 1000, ...(cursor ? { cursor } : {}) });
    for (const run of page.runs) yield run.pipelineId;
    cursor = page.nextCursor;
  } while (cursor);
}

/** Options of {@link computeStatistics}. */
export interface StatisticsOptions {
  /** Only this pipeline's runs (found through the runs-by-name index). */
  pipelineName?: string;
  /** Walk every run with the one check and report `check` (reads and hashes every output). */
  verify?: boolean;
  /**
   * Called with each run's listing as it is read, so a caller that needs more of every run (the
   * console's size-over-time series) gets it from the same pass instead of listing the store again.
   */
  onRun?: (pipelineId: string, listing: readonly ListedCheckpoint[]) => void;
}

/** Statistics over every run in the store, or over one pipeline's runs. */
export async function computeStatistics(
  store: CheckpointStore,
  strategy: string,
  options: StatisticsOptions = {},
): Promise<CheckpointStatistics> {
  const { pipelineName } = options;
  const byStatus = Object.fromEntries(CHECKPOINT_STATUSES.map((s) => [s, 0])) as Record<
    CheckpointStatusValue,
    number
  >;
  const stats: CheckpointStatistics = {
    totalCheckpoints: 0,
    totalPipelines: 0,
    activePipelines: 0,
    completedPipelines: 0,
    storageStrategy: strategy,
    checkpointsByStatus: byStatus,
    corruptCheckpoints: 0,
    totalDataSize: 0,
    storedDataSize: 0,
    averageDataSize: 0,
    atRest: emptyUsage(),
    totalResumeCount: 0,
    resumedPipelines: 0,
    resumeSuccessRate: null,
    oldestCheckpoint: undefined,
    newestCheckpoint: undefined,
    ...(options.verify ? { check: { valid: 0, invalid: 0, quarantined: 0 } } : {}),
  };
  let resumedAndCompleted = 0;
  let oldest = Number.POSITIVE_INFINITY;
  let newest = Number.NEGATIVE_INFINITY;
  const runs = pipelineName === undefined ? await store.listPipelineIds() : runsOf(store, pipelineName);
  for await (const pipelineId of runs) {
    const listing = await store.listCheckpoints(pipelineId);
    if (listing.length === 0) continue;
    options.onRun?.(pipelineId, listing);
    stats.totalPipelines++;
    if (stats.check) {
      const { summary } = await validateRun(store, pipelineId, { listing });
      stats.check.valid += summary.valid;
      stats.check.invalid += summary.invalid;
      stats.check.quarantined += summary.quarantined;
    }
    let resumes = 0;
    let finished = false;
    const readable: StoredMetadata[] = [];
    for (const entry of listing) {
      if (!entry.ok) {
        stats.corruptCheckpoints++;
        continue;
      }
      const m = entry.metadata;
      readable.push(m);
      stats.totalCheckpoints++;
      byStatus[m.status]++;
      stats.totalDataSize += m.data_size;
      resumes += m.resume_count;
      if (m.stage_name === PIPELINE_COMPLETE_STAGE) finished = true;
      const time = Date.parse(m.timestamp);
      oldest = Math.min(oldest, time);
      newest = Math.max(newest, time);
    }
    stats.storedDataSize += await storedRunBytes(store, pipelineId, readable);
    const ids = readable.map((m) => m.checkpoint_id);
    addUsage(stats.atRest, await runAtRestUsage(store, pipelineId, ids));
    stats.totalResumeCount += resumes;
    if (finished) stats.completedPipelines++;
    else stats.activePipelines++;
    if (resumes > 0) {
      stats.resumedPipelines++;
      if (finished) resumedAndCompleted++;
    }
  }
  stats.averageDataSize =
    stats.totalCheckpoints > 0 ? Math.round(stats.totalDataSize / stats.totalCheckpoints) : 0;
  stats.resumeSuccessRate = stats.resumedPipelines > 0 ? resumedAndCompleted / stats.resumedPipelines : null;
  if (stats.totalCheckpoints > 0) {
    stats.oldestCheckpoint = new Date(oldest);
    stats.newestCheckpoint = new Date(newest);
  }
  return stats;
}
