/**
 * Which completed stages get a checkpoint (Pipeline option `checkpointPolicy`). `every-stage`
 * (default): all of them. `auto`: the cost model learned once at run start from the pipeline's
 * runs in the store (`manager.learnCosts`) decides with the Young–Daly rule of
 * `checkpointWorthIt`: skip the checkpoint after a stage when `W · p < C`, where `W` is the
 * learned duration of the stages completed since the last checkpoint (this one included), `p`
 * the highest learned failure rate of the stages that may fail before the next checkpoint (those
 * still running, and the next not started in definition order; for a linear pipeline: the next
 * stage), and `C` the stage's learned checkpoint write time (else the store's). Always checkpoint
 * after the last stage, after or before a stage with `sideEffects: true`, and whenever an
 * estimate is missing or rests on fewer executions than the model's `minSamples`.
 */
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import { type CheckpointDecision, type CostModel, checkpointWorthIt } from "./cost-model.js";
import type { NormalizedStep } from "./validate.js";

/** Pipeline option `checkpointPolicy`. */
export type CheckpointPolicy = "every-stage" | "auto";

/** The policy of one execution. */
export interface CheckpointDecider {
  /** Whether to checkpoint after `stage`; `upcoming`: the stages that may fail before the next one. */
  after(stage: NormalizedStep, upcoming: readonly NormalizedStep[]): boolean;
  /** A checkpoint was written for another reason: nothing is unsaved any more. */
  reset(): void;
}

const EVERY_STAGE: CheckpointDecider = { after: () => true, reset: () => undefined };

/** The decision for the checkpoint after `stage`, with `unsavedMs` of work done since the last one. */
export function autoDecision(
  model: CostModel,
  stage: NormalizedStep,
  upcoming: readonly NormalizedStep[],
  unsavedMs: number | undefined,
): CheckpointDecision {
  const cost = model.stages[stage.name];
  const next = upcoming.map((s) => model.stages[s.name]);
  const rates = next.map((c) => c?.failureRate);
  const failureRate = rates.some((r) => r === undefined) ? undefined : Math.max(0, ...(rates as number[]));
  const durationMs =
    unsavedMs === undefined || cost?.durationMs === undefined ? undefined : unsavedMs + cost.durationMs;
  return checkpointWorthIt({
    durationMs,
    failureRate,
    checkpointMs: cost?.checkpointMs ?? model.checkpointMs,
    sideEffects: upcoming.some((s) => s.sideEffects),
    stageSideEffects: stage.sideEffects,
    last: upcoming.length === 0,
    uncertain: [cost, ...next].some((c) => (c?.samples ?? 0) < model.minSamples),
  });
}

/** The decider for an execution: `auto` learns the pipeline's costs from the store first. */
export async function checkpointDecider(ctx: {
  name: string;
  manager: CheckpointManager | undefined;
  checkpointPolicy: CheckpointPolicy;
}): Promise<CheckpointDecider> {
  if (ctx.checkpointPolicy !== "auto" || !ctx.manager) return EVERY_STAGE;
  const model = await ctx.manager.learnCosts(ctx.name);
  // Learned work since the last checkpoint written; undefined once a stage's duration is unknown.
  let unsavedMs: number | undefined = 0;
  return {
    after(stage, upcoming) {
      const decision = autoDecision(model, stage, upcoming, unsavedMs);
      if (decision.checkpoint) unsavedMs = 0;
      else unsavedMs = (unsavedMs ?? 0) + (model.stages[stage.name]?.durationMs ?? 0);
      return decision.checkpoint;
    },
    reset() {
      unsavedMs = 0;
    },
  };
}
