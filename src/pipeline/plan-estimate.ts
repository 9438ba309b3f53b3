/**
 * The estimate of a plan: the time to finish from the recovery point and the time it saves,
 * from the cost model learned from the pipeline's newest runs in the store (see
 * `manager/cost-history.ts` and `cost-model.ts`). A dry run carries it (`DryRunResult.estimate`).
 */
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import { estimateRemaining, type PlanLike, type RemainingEstimate } from "./cost-model.js";

/** Runs a dry run learns from: fewer than `analyze`, since each is walked with the full check. */
export const PLAN_COST_RUNS = 20;

/** A plan's estimate, with whether any stage was timed from checkpoint timestamps only. */
export interface PlanEstimate extends RemainingEstimate {
  /** Runs the model was learned from. */
  runs: number;
  approximate: boolean;
}

/** The plan's estimate; undefined without a store or without history of the pipeline. */
export async function planEstimate(
  manager: CheckpointManager | undefined,
  name: string,
  plan: PlanLike,
): Promise<PlanEstimate | undefined> {
  if (manager === undefined) return undefined;
  const model = await manager.learnCosts(name, { runs: PLAN_COST_RUNS });
  if (model.observations.length === 0) return undefined;
  const approximate = plan.stages.some((s) => model.stages[s.stageName]?.approximate === true);
  return { ...estimateRemaining(plan, model), runs: model.runs.length, approximate };
}
