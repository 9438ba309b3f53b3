/**
 * How a dry run prints its estimate under the plan (`cairn run --dry-run`): the time to finish
 * from the recovery point and the time it saves (`pipeline/plan-estimate.ts` computes it).
 */
import { PLAN_COST_RUNS, type PlanEstimate } from "../pipeline/plan-estimate.js";

// The estimate itself is the library's: a dry run carries it (`DryRunResult.estimate`).
export { PLAN_COST_RUNS, type PlanEstimate };

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
