/**
 * The statistics page: the store's totals and resume success rate (`getStatistics`, the same
 * numbers `cairn stats` prints), and a series of the newest checkpoints (size, and the time since
 * the run's previous checkpoint as the stage's time) read from the same pass over the store.
 */
import type { StoredMetadata } from "../../core/record.js";
import { PIPELINE_COMPLETE_STAGE } from "../../core/types.js";
import type { ListedCheckpoint } from "../../stores/types.js";
import type { ApiContext } from "./context.js";

/** Most checkpoints in the series: the newest ones. */
export const SERIES_LIMIT = 2000;

/** One checkpoint of the series. */
export interface SeriesPoint {
  t: string;
  pipelineId: string;
  stage: string;
  size: number;
  /** Time since the run's previous checkpoint; null for a run's first one, or after a resume. */
  stageMs: number | null;
}

/** What the statistics page shows. */
export interface StatisticsPage {
  totals: {
    runs: number;
    checkpoints: number;
    completed: number;
    active: number;
    failed: number;
    corrupt: number;
    storedBytes: number;
  };
  resumes: { resumedRuns: number; resumedCompleted: number; successRate: number | null };
  series: SeriesPoint[];
  byStatus: Record<string, number>;
}

/** The statistics page's data: one pass over every run of the store. */
export async function statistics(ctx: ApiContext): Promise<StatisticsPage> {
  const series: SeriesPoint[] = [];
  let failed = 0;
  const onRun = (pipelineId: string, listing: readonly ListedCheckpoint[]) => {
    const ok: StoredMetadata[] = [];
    for (const entry of listing) if (entry.ok) ok.push(entry.metadata);
    const latest = ok.at(-1);
    if (latest?.status === "failed" && !ok.some((m) => m.stage_name === PIPELINE_COMPLETE_STAGE)) failed++;
    for (const [i, m] of ok.entries()) {
      const before = i > 0 ? ok[i - 1] : undefined;
      // Across a resume the delta spans the pause, not the stage (as the cost model reads it).
      const ms =
        before && before.resume_count === 0 ? Date.parse(m.timestamp) - Date.parse(before.timestamp) : null;
      series.push({
        t: m.timestamp,
        pipelineId,
        stage: m.stage_name,
        size: m.data_size,
        stageMs: ms !== null && Number.isFinite(ms) && ms >= 0 ? ms : null,
      });
    }
    // Keep memory bounded on a large store: trim to the newest once the buffer doubles.
    if (series.length > 2 * SERIES_LIMIT) trim(series);
  };
  const stats = await ctx.manager.getStatistics({ onRun });
  trim(series);
  const resumedCompleted =
    stats.resumeSuccessRate === null ? 0 : Math.round(stats.resumeSuccessRate * stats.resumedPipelines);
  return {
    totals: {
      runs: stats.totalPipelines,
      checkpoints: stats.totalCheckpoints,
      completed: stats.completedPipelines,
      active: stats.activePipelines,
      failed,
      corrupt: stats.corruptCheckpoints,
      storedBytes: stats.storedDataSize,
    },
    resumes: {
      resumedRuns: stats.resumedPipelines,
      resumedCompleted,
      successRate: stats.resumeSuccessRate,
    },
    series: series.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0)),
    byStatus: { ...stats.checkpointsByStatus },
  };
}

/** Keeps the newest {@link SERIES_LIMIT} points. */
function trim(series: SeriesPoint[]): void {
  if (series.length <= SERIES_LIMIT) return;
  series.sort((a, b) => (a.t > b.t ? -1 : a.t < b.t ? 1 : 0));
  series.length = SERIES_LIMIT;
}
