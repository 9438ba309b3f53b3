/**
 * Runs with recorded stage timings, written through `createCheckpoint` the way the runner records
 * them: `state_data.stage_timings` carried forward, a stage's `checkpoint_ms` in the NEXT
 * checkpoint, a failed execution as a `failed` checkpoint with `failed: true`.
 */
import type { CheckpointManager } from "../../src/index.js";

/** One execution of a stage, with its recorded durations. */
export interface TimedExecution {
  stage: string;
  durationMs: number;
  /** Its checkpoint's write time, recorded in the next checkpoint. */
  checkpointMs?: number;
  failed?: boolean;
  attempts?: number;
}

/**
 * Writes one checkpoint per execution (in order) of a linear run over `stages`, then
 * `pipeline_complete` once every stage completed; `startMs` is the first stage's start.
 * With `timings: false`, the same checkpoints without `stage_timings` (an older cairn's run);
 * `state` is added to every checkpoint's state (a `pipeline_config`, say).
 */
export async function writeTimedRun(
  manager: CheckpointManager,
  pipelineId: string,
  pipelineName: string,
  stages: readonly string[],
  executions: readonly TimedExecution[],
  options: { startMs?: number; timings?: boolean; state?: Record<string, unknown> } = {},
): Promise<string[]> {
  const timings: Record<string, Record<string, unknown>> = {};
  const completed: string[] = [];
  const ids: string[] = [];
  let at = options.startMs ?? Date.UTC(2026, 0, 1);
  let previous: TimedExecution | undefined;
  const write = async (stageName: string, stageIndex: number, status: "completed" | "failed") => {
    const stateData: Record<string, unknown> = { inputs: {}, source: "orders.csv", ...options.state };
    if (options.timings !== false) stateData.stage_timings = structuredClone(timings);
    ids.push(
      await manager.createCheckpoint({
        pipelineId,
        pipelineName,
        stageName,
        stageIndex,
        stateData,
        completedStages: [...completed],
        pendingStages: stages.filter((s) => !completed.includes(s)),
        agentOutputs: Object.fromEntries(completed.map((s) => [s, { stage: s }])),
        status,
        ...(status === "failed" ? { errorMessage: `${stageName} failed` } : {}),
      }),
    );
  };
  for (const e of executions) {
    // The previous checkpoint's write time is known now: recorded in this one.
    if (previous?.checkpointMs !== undefined) {
      const entry = timings[previous.stage];
      if (entry) entry.checkpoint_ms = previous.checkpointMs;
    }
    timings[e.stage] = {
      duration_ms: e.durationMs,
      attempts: e.attempts ?? 1,
      started_at: new Date(at).toISOString(),
      ...(e.failed ? { failed: true } : {}),
    };
    at += e.durationMs + (e.checkpointMs ?? 0);
    if (!e.failed && !completed.includes(e.stage)) completed.push(e.stage);
    await write(e.stage, stages.indexOf(e.stage), e.failed ? "failed" : "completed");
    previous = e;
  }
  if (stages.every((s) => completed.includes(s))) {
    if (previous?.checkpointMs !== undefined) {
      const entry = timings[previous.stage];
      if (entry) entry.checkpoint_ms = previous.checkpointMs;
    }
    await write("pipeline_complete", stages.length, "completed");
  }
  return ids;
}

/** A clock that advances `stepMs` per call from `start`, for checkpoint timestamps. */
export function tickingClock(start: number, stepMs = 1000): () => Date {
  let now = start;
  return () => {
    now += stepMs;
    return new Date(now);
  };
}
