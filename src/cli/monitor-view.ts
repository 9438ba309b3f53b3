/** What `cairn monitor` shows: a snapshot of the runs in a store, as plain text or JSON. */
import { parseBody } from "../core/formats.js";
import {
  CheckpointCorruptError,
  type CheckpointManager,
  type CheckpointMetadata,
  CheckpointNotFoundError,
  type PipelineSummary,
} from "../index.js";
import { formatTable, formatTime } from "./output.js";

/** One refresh of the monitor. */
export interface MonitorSnapshot {
  takenAt: Date;
  store: string;
  runs: PipelineSummary[];
  /**
   * The runs under way, in the order of `runs`: status `in_progress` (unfinished, and a runner
   * holds the lease), with the newest checkpoint and the stage after it. A `paused` run (nobody
   * executing it) shows in the table only, like a failed or expired one.
   */
  active: { pipelineId: string; latest: CheckpointMetadata | null; currentStage: string | null }[];
}

/**
 * Reads the runs (one run, or the newest runs of one pipeline through the runs-by-name index)
 * and the latest checkpoint of each unfinished one. With `pipelineId` and `requireRun`, a run
 * that is not there is `CAIRN_NOT_FOUND`.
 */
export async function takeSnapshot(
  manager: CheckpointManager,
  options: { pipelineId?: string; pipelineName?: string; limit?: number; requireRun?: boolean },
): Promise<MonitorSnapshot> {
  const takenAt = new Date();
  const store = (await manager.getStore()).location;
  let runs: PipelineSummary[];
  if (options.pipelineId !== undefined) {
    const run = await manager.getRunSummary(options.pipelineId);
    runs = run ? [run] : [];
    if (runs.length === 0 && options.requireRun) {
      throw new CheckpointNotFoundError(
        options.pipelineId,
        `No pipeline run with id ${JSON.stringify(options.pipelineId)} in the store`,
      );
    }
  } else if (options.pipelineName !== undefined) {
    runs = (await manager.listRuns(options.pipelineName, { limit: options.limit ?? 50 })).runs;
  } else runs = await manager.listPipelines();
  const active: MonitorSnapshot["active"] = [];
  for (const run of runs) {
    // Paused, failed, expired or quarantined: nobody is executing it, so the table only.
    if (run.finished || (run.checkpointCount > 0 && run.status !== "in_progress")) continue;
    const [latest] = await manager.getCheckpointHistory(run.pipelineId);
    active.push({
      pipelineId: run.pipelineId,
      latest: latest ?? null,
      currentStage: latest ? await stageAfter(manager, latest.checkpointId) : null,
    });
  }
  return { takenAt, store, runs, active };
}

/** The first pending stage of a checkpoint (the one running now, or next); null when unreadable. */
async function stageAfter(manager: CheckpointManager, checkpointId: string): Promise<string | null> {
  try {
    const record = await (await manager.getStore()).getCheckpoint(checkpointId);
    return record ? (parseBody(record.metadata, record.body).pending_stages[0] ?? null) : null;
  } catch (error) {
    if (error instanceof CheckpointCorruptError) return null;
    throw error;
  }
}

function runsTable(runs: readonly PipelineSummary[]): string {
  const rows = runs.map((r) => [
    r.pipelineId,
    r.pipelineName,
    r.status,
    `${r.completedStages}/${r.totalStages}`,
    r.corruptCount > 0 ? `${r.checkpointCount} (+${r.corruptCount} unreadable)` : String(r.checkpointCount),
    formatTime(r.lastTimestamp),
    r.latestStage ?? "-",
  ]);
  return formatTable(
    ["PIPELINE ID", "NAME", "STATUS", "STAGES", "CHECKPOINTS", "LAST UPDATE", "LATEST STAGE"],
    rows,
    ["left", "left", "left", "right", "right"],
  );
}

function activeLines(snapshot: MonitorSnapshot): string[] {
  if (snapshot.active.length === 0) return ["No active runs."];
  const lines = [`Active runs (${snapshot.active.length}):`];
  for (const { pipelineId, latest, currentStage } of snapshot.active) {
    if (!latest) {
      lines.push(
        `  ${pipelineId}: no readable checkpoint (run \`cairn validate --pipeline-id ${pipelineId}\`)`,
      );
      continue;
    }
    const resumes = latest.resumeCount > 0 ? `, resumed ${latest.resumeCount}×` : "";
    const current = currentStage ? `current stage ${currentStage}, after ` : "";
    lines.push(
      `  ${pipelineId}: ${current}${latest.stageName} (index ${latest.stageIndex}, #${latest.sequence}) ${latest.status} at ${formatTime(latest.timestamp)}${resumes}`,
      `    checkpoint ${latest.checkpointId}`,
    );
    if (latest.errorMessage) lines.push(`    error: ${latest.errorMessage}`);
  }
  return lines;
}

/** The snapshot as plain lines: a header, the runs table, then the active runs. */
export function renderSnapshot(snapshot: MonitorSnapshot, note?: string): string[] {
  const lines = [`${formatTime(snapshot.takenAt)}  ${snapshot.store}${note ? `  ${note}` : ""}`, ""];
  if (snapshot.runs.length === 0) lines.push("No pipeline runs.");
  else lines.push(...runsTable(snapshot.runs).split("\n"), "", ...activeLines(snapshot));
  return lines;
}

/**
 * ANSI text that redraws `lines` over the previous frame: home, each line cleared to its end,
 * then the rest of the screen cleared. Lines are cut to the terminal so nothing wraps or scrolls
 * (either would shift the next frame).
 */
export function ansiFrame(lines: readonly string[], columns: number, rows: number): string {
  const height = Math.max(1, rows - 1);
  const shown =
    lines.length > height
      ? [...lines.slice(0, height - 1), `… ${lines.length - height + 1} more lines`]
      : lines;
  const cut = (line: string) =>
    line.length > columns ? `${line.slice(0, Math.max(0, columns - 1))}…` : line;
  return `\x1b[H${shown.map((l) => `${cut(l)}\x1b[K`).join("\n")}\n\x1b[J`;
}
