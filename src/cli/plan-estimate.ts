/**
 * The estimate a dry run prints under its plan (`cairn run --dry-run`): the time to finish from
 * the recovery point and the time it saves, from the cost model learned from the pipeline's
 * newest runs in the store (see `manager/cost-history.ts`).
 */
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import { estimateRemaining, type RemainingEstimate } from "../pipeline/cost-model.js";
import type { DryRunResult } from "../pipeline/types.js";

/** Runs a dry run learns from: fewer than `analyze`, since each is walked with the full check. */
export const PLAN_COST_RUNS = 20;

/** A dry run's estimate, with whether any stage was timed from checkpoint timestamps only. */
export interface PlanEstimate extends RemainingEstimate {
  /** Runs the model was learned from. */
  runs: number;
  approximate: boolean;
}

/** The plan's estimate; undefined without a store or without history of the pipeline. */
export async function planEstimate(
  manager: CheckpointManager | undefined,
  plan: DryRunResult,
): Promise<PlanEstimate | undefined> {
  if (manager === undefined) return undefined;
  const model = await manager.learnCosts(plan.name, { runs: PLAN_COST_RUNS });
  if (model.observations.length === 0) return undefined;
  const approximate = plan.stages.some((s) => model.stages[s.stageName]?.approximate === true);
  return { ...estimateRemaining(plan, model), runs: model.runs.length, approximate };
}

const ms = (value: number) => (value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(1)} s`);

/** One line for the text plan. */
export function planEstimateText(e: PlanEstimate): string {
  const about = e.approximate ? "≈ " : "";
  const atLeast = e.unknown.length > 0 ? "at least " : "";
  const unknown = e.unknown.length > 0 ? `; no history of ${e.unknown.join(", ")}` : "";
  return (
    `  estimated time to finish: ${atLeast}${about}${ms(e.remainingMs)}, ` +
    `the recovery point saves ${about}${ms(e.savedMs)} (learned from ${e.runs} run${e.runs === 1 ? "" : "s"}${unknown})`
  );
}
