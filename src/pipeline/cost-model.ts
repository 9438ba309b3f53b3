/**
 * The cost model: what a pipeline's stages cost, learned from the runs the store holds, and the
 * two decisions made from it. Pure: it reads a list of observations (gathered by
 * `manager/cost-history.ts`) and writes nothing.
 *
 * Estimates are exponentially weighted moving averages over a stage's executions, oldest first,
 * started from the oldest observation: `estimate = α·x + (1 − α)·estimate`, with α =
 * {@link DEFAULT_ALPHA} (0.3): the newest execution weighs 30 %, the one before 21 %, and an
 * execution ten runs back under 1 %, so the model follows a pipeline that got slower within a
 * few runs while one outlier moves it by at most 30 % of the difference.
 *
 * - duration (ms): over the executions that succeeded (time to failure says little about a
 *   re-run); over the failed ones only when a stage never succeeded.
 * - failure rate: the same average over 1 (the execution failed after its retries) and 0.
 *   Failures cairn recorded only: a crash that left no failed checkpoint is not seen.
 * - checkpoint write cost (ms): per stage, and for the store over every write, oldest first.
 *
 * Young–Daly ({@link checkpointWorthIt}): after a stage, a checkpoint costs `C` (its write
 * time); skipping it risks re-running the work done since the last checkpoint, `W`, if the run
 * fails before the next checkpoint, which happens with probability `p` (the next stage's failure
 * rate). Skip exactly when `W · p < C`; always checkpoint at the end of the run, next to a stage
 * with side effects, and when any of the three is not known yet.
 */
import { InvalidArgumentError } from "../core/errors.js";

/** The weight of the newest observation in every estimate (see the module comment). */
export const DEFAULT_ALPHA = 0.3;

/** Executions of a stage needed before `auto` trusts its estimates enough to skip a checkpoint. */
export const DEFAULT_MIN_SAMPLES = 3;

/** One execution of one stage, as the store recorded it. */
export interface StageObservation {
  stageName: string;
  /** The run it belongs to. */
  pipelineId: string;
  /** When it started (ms since the epoch); orders observations oldest first. */
  at: number;
  durationMs: number;
  /** It failed after its retries (the run's `failed` checkpoint names it). */
  failed: boolean;
  /** Attempts it took (1 without retries). */
  attempts: number;
  /** How long its checkpoint write took, when the next checkpoint recorded it. */
  checkpointMs?: number;
  /** From timestamp deltas between checkpoints (runs without recorded timings): approximate. */
  approximate: boolean;
}

/** What the model knows of one stage. */
export interface StageCost {
  stageName: string;
  /** Estimated duration (ms); undefined before any execution was seen. */
  durationMs: number | undefined;
  /** Estimated probability that an execution fails after its retries, 0–1. */
  failureRate: number;
  /** Estimated write time of the checkpoint after this stage (ms), when recorded. */
  checkpointMs: number | undefined;
  /** Executions seen. */
  samples: number;
  /** Of them, failed. */
  failures: number;
  /** Some of the executions were timed from checkpoint timestamps only. */
  approximate: boolean;
}

/** What the model knows of a pipeline's stages and of the store's checkpoint writes. */
export interface CostModel {
  pipelineName: string;
  /** The weight of the newest observation. */
  alpha: number;
  /** Executions a stage needs before `auto` may skip the checkpoint after it. */
  minSamples: number;
  /** By stage name. */
  stages: Record<string, StageCost>;
  /** Estimated checkpoint write time of the store (ms), over every recorded write. */
  checkpointMs: number | undefined;
  /** Checkpoint writes seen. */
  checkpointSamples: number;
}

/** Options of {@link buildCostModel}. */
export interface CostModelOptions {
  /** Weight of the newest observation, in (0, 1]; default {@link DEFAULT_ALPHA}. */
  alpha?: number;
  /** Default {@link DEFAULT_MIN_SAMPLES}. */
  minSamples?: number;
}

/** The exponentially weighted average of `values`, oldest first; undefined for none. */
export function ewma(values: readonly number[], alpha: number): number | undefined {
  let estimate: number | undefined;
  for (const x of values) estimate = estimate === undefined ? x : alpha * x + (1 - alpha) * estimate;
  return estimate;
}

function checkAlpha(alpha: number): number {
  if (!(alpha > 0 && alpha <= 1)) throw new InvalidArgumentError(`alpha must be in (0, 1], got ${alpha}`);
  return alpha;
}

/** Builds the model from observations in any order (they are sorted oldest first). */
export function buildCostModel(
  pipelineName: string,
  observations: readonly StageObservation[],
  options: CostModelOptions = {},
): CostModel {
  const alpha = checkAlpha(options.alpha ?? DEFAULT_ALPHA);
  const minSamples = options.minSamples ?? DEFAULT_MIN_SAMPLES;
  if (!Number.isInteger(minSamples) || minSamples < 1) {
    throw new InvalidArgumentError(`minSamples must be an integer ≥ 1, got ${minSamples}`);
  }
  const sorted = [...observations].sort((a, b) => a.at - b.at);
  const byStage = new Map<string, StageObservation[]>();
  for (const o of sorted) byStage.set(o.stageName, [...(byStage.get(o.stageName) ?? []), o]);
  const stages: Record<string, StageCost> = {};
  for (const [stageName, list] of byStage) {
    const ok = list.filter((o) => !o.failed);
    const timed = ok.length > 0 ? ok : list;
    const writes = list.flatMap((o) => (o.checkpointMs !== undefined ? [o.checkpointMs] : []));
    stages[stageName] = {
      stageName,
      durationMs: ewma(
        timed.map((o) => o.durationMs),
        alpha,
      ),
      failureRate: ewma(
        list.map((o) => (o.failed ? 1 : 0)),
        alpha,
      ) as number,
      checkpointMs: ewma(writes, alpha),
      samples: list.length,
      failures: list.length - ok.length,
      approximate: list.some((o) => o.approximate),
    };
  }
  const writes = sorted.flatMap((o) => (o.checkpointMs !== undefined ? [o.checkpointMs] : []));
  return {
    pipelineName,
    alpha,
    minSamples,
    stages,
    checkpointMs: ewma(writes, alpha),
    checkpointSamples: writes.length,
  };
}

/** What {@link checkpointWorthIt} weighs for the checkpoint after one stage. */
export interface CheckpointQuestion {
  /**
   * `W`: work (ms) a failure before the next checkpoint would redo: this stage's duration plus
   * that of earlier stages whose checkpoints were skipped. Undefined when not known.
   */
  durationMs: number | undefined;
  /** `p`: probability a failure happens before the next checkpoint (the next stage's failure rate). */
  failureRate: number | undefined;
  /** `C`: the checkpoint's write time (ms); undefined when not known. */
  checkpointMs: number | undefined;
  /** The next stage declares `sideEffects: true`. */
  sideEffects: boolean;
  /** This stage declares `sideEffects: true`: redoing it would repeat them. */
  stageSideEffects?: boolean;
  /** This is the run's last stage. */
  last: boolean;
  /** The estimates rest on fewer executions than the model's `minSamples`. */
  uncertain?: boolean;
}

/** Why {@link checkpointWorthIt} decided as it did. */
export type CheckpointReason = "end" | "side_effects" | "unknown" | "worth_it" | "not_worth_it";

/** The decision on one checkpoint. */
export interface CheckpointDecision {
  /** Write the checkpoint. */
  checkpoint: boolean;
  reason: CheckpointReason;
  /** `W · p` (ms), when both are known. */
  expectedLossMs: number | undefined;
  /** `C` (ms), when known. */
  checkpointMs: number | undefined;
}

/**
 * The Young–Daly decision for the checkpoint after a stage: skip it exactly when the expected
 * re-run cost `W · p` is below its write cost `C`; always write it at the end, next to a stage
 * with side effects, and when `W`, `p` or `C` is unknown or uncertain.
 */
export function checkpointWorthIt(q: CheckpointQuestion): CheckpointDecision {
  const known =
    q.durationMs !== undefined && q.failureRate !== undefined ? q.durationMs * q.failureRate : undefined;
  const base = { expectedLossMs: known, checkpointMs: q.checkpointMs };
  if (q.last) return { ...base, checkpoint: true, reason: "end" };
  if (q.sideEffects || q.stageSideEffects) return { ...base, checkpoint: true, reason: "side_effects" };
  if (known === undefined || q.checkpointMs === undefined || q.uncertain) {
    return { ...base, checkpoint: true, reason: "unknown" };
  }
  return known < q.checkpointMs
    ? { ...base, checkpoint: false, reason: "not_worth_it" }
    : { ...base, checkpoint: true, reason: "worth_it" };
}

/** One stage of a run in the order its checkpoints are written. */
export interface PolicyStage {
  stageName: string;
  sideEffects?: boolean;
}

/** The `auto` policy's decision after one stage. */
export interface PolicyStep extends CheckpointDecision {
  stageName: string;
}

/**
 * Applies {@link checkpointWorthIt} along a run, in checkpoint order: `W` accumulates the
 * durations of the stages since the last checkpoint written, `p` is the next stage's failure
 * rate, `C` the stage's own recorded write time or else the store's.
 */
export function planCheckpoints(stages: readonly PolicyStage[], model: CostModel): PolicyStep[] {
  const steps: PolicyStep[] = [];
  let unsaved: number | undefined = 0;
  for (const [i, stage] of stages.entries()) {
    const cost = model.stages[stage.stageName];
    const next = stages[i + 1];
    const nextCost = next && model.stages[next.stageName];
    unsaved = unsaved === undefined || cost?.durationMs === undefined ? undefined : unsaved + cost.durationMs;
    const decision = checkpointWorthIt({
      durationMs: unsaved,
      failureRate: nextCost?.failureRate,
      checkpointMs: cost?.checkpointMs ?? model.checkpointMs,
      sideEffects: next?.sideEffects === true,
      stageSideEffects: stage.sideEffects === true,
      last: next === undefined,
      uncertain: (cost?.samples ?? 0) < model.minSamples || (nextCost?.samples ?? 0) < model.minSamples,
    });
    steps.push({ stageName: stage.stageName, ...decision });
    if (decision.checkpoint) unsaved = 0;
  }
  return steps;
}

/** The part of a plan {@link estimateRemaining} reads (a `RunPlan` or a dry run's stages). */
export interface PlanLike {
  stages: readonly {
    stageName: string;
    action: "skip" | "migrate" | "rerun" | "run";
    dependsOn?: readonly string[];
  }[];
}

/** Time to finish a run from its recovery point, and time the recovery point saves. */
export interface RemainingEstimate {
  /** Estimated work of the stages that run or re-run, plus one checkpoint write each (ms). */
  remainingMs: number;
  /** Estimated durations of the stages skipped or migrated: what resuming does not redo (ms). */
  savedMs: number;
  /**
   * The longest chain of dependent stages that run (ms), when every stage names its
   * dependencies: the wall time with unlimited concurrency. Equals `remainingMs` minus the
   * checkpoint writes for a linear pipeline.
   */
  criticalPathMs?: number;
  /** Stages with no learned duration: counted as 0, so the figures are lower bounds. */
  unknown: string[];
}

/** Estimates {@link RemainingEstimate} for a plan from the model (pure; `migrate` counts as saved). */
export function estimateRemaining(plan: PlanLike, model: CostModel): RemainingEstimate {
  let remainingMs = 0;
  let savedMs = 0;
  const unknown: string[] = [];
  const cost = (name: string) => model.stages[name]?.durationMs;
  for (const stage of plan.stages) {
    const ms = cost(stage.stageName);
    if (ms === undefined) unknown.push(stage.stageName);
    const runs = stage.action === "run" || stage.action === "rerun";
    if (runs)
      remainingMs += (ms ?? 0) + (model.stages[stage.stageName]?.checkpointMs ?? model.checkpointMs ?? 0);
    else savedMs += ms ?? 0;
  }
  const result: RemainingEstimate = { remainingMs, savedMs, unknown };
  if (plan.stages.every((s) => s.dependsOn !== undefined)) {
    const finish = new Map<string, number>();
    for (const stage of plan.stages) {
      // Stages are in definition order, so dependencies come first; a skipped stage costs nothing.
      const start = Math.max(0, ...(stage.dependsOn ?? []).map((d) => finish.get(d) ?? 0));
      const runs = stage.action === "run" || stage.action === "rerun";
      finish.set(stage.stageName, start + (runs ? (cost(stage.stageName) ?? 0) : 0));
    }
    result.criticalPathMs = Math.max(0, ...finish.values());
  }
  return result;
}
