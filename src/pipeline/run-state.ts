/** What an execution keeps of its run: the checkpoint's `state_data` and each stage's progress. */
import type { StageFingerprint } from "./fingerprint.js";
import type { StepResult } from "./types.js";

/** Progress of one stage, as `visualizeProgress` shows it. */
export interface StageProgress {
  state: "pending" | "running" | "completed" | "skipped" | "migrated" | "failed";
  attempts: number;
  durationMs: number | undefined;
  error?: string;
}

/** State saved in every checkpoint of a run (`state_data`). */
export interface RunState {
  inputs: Record<string, unknown>;
  pipeline_config: {
    name: string;
    steps: { name: string; agent: string; version: string | null; depends_on: string[] }[];
  };
  fingerprints: Record<string, StageFingerprint>;
  stage_timings: Record<string, StageTiming>;
}

/**
 * How a stage's last execution went, in `state_data.stage_timings`: the cost model's history.
 * `checkpoint_ms` (how long the stage's checkpoint took to write) appears from the checkpoint
 * after it on: a record cannot hold its own write time.
 */
export interface StageTiming {
  duration_ms: number;
  attempts: number;
  /** ISO time the stage started. */
  started_at: string;
  checkpoint_ms?: number;
  /** Set in the failed checkpoint for a stage that failed. */
  failed?: true;
}

export const roundMs = (ms: number) => Math.round(ms * 1000) / 1000;

/** Records a stage that a run skips: its result holds the output restored from the checkpoint. */
export function markSkipped(
  stageName: string,
  output: unknown,
  stepsResults: Record<string, StepResult>,
  progress: Map<string, StageProgress>,
): void {
  stepsResults[stageName] = {
    status: "skipped",
    output,
    attempts: 0,
    durationMs: 0,
    checkpointId: undefined,
  };
  progress.set(stageName, { state: "skipped", attempts: 0, durationMs: undefined });
}
