/**
 * The cost section of `cairn analyze`: per stage of the analyzed run's pipeline, the learned
 * duration, failure rate and checkpoint write cost (from the pipeline's newest runs, see
 * `manager/cost-history.ts`), and whether `checkpointPolicy: "auto"` would skip the checkpoint
 * after the stage (`planCheckpoints`, Young–Daly). Stages are taken in definition order, the
 * order a linear run writes its checkpoints; a DAG writes them in completion order, which the
 * flag approximates by that order.
 */
import { CheckpointCorruptError, KeyMissingError } from "../core/errors.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import type { LearnedCosts } from "../manager/cost-history.js";
import { type CheckpointReason, type PolicyStage, planCheckpoints } from "../pipeline/cost-model.js";

/** The cost row of one stage. */
export interface StageCostRow {
  stageName: string;
  /** Learned duration (ms); undefined when no execution was seen. */
  durationMs: number | undefined;
  /** Learned failure rate (0–1); undefined when no execution was seen. */
  failureRate: number | undefined;
  /** The checkpoint write cost used for the stage (ms): its own when recorded, else the store's. */
  checkpointMs: number | undefined;
  /** Executions seen, and how many failed. */
  samples: number;
  failures: number;
  /** Timed from checkpoint timestamps only (runs without recorded timings). */
  approximate: boolean;
  /** The stage declares side effects (as recorded in the run's pipeline configuration). */
  sideEffects: boolean;
  /** `auto` would skip the checkpoint after this stage. */
  autoSkips: boolean;
  /** Why `auto` would write or skip it. */
  autoReason: CheckpointReason;
  /** `W · p` (ms) weighed against `checkpointMs`, when known. */
  expectedLossMs: number | undefined;
}

/** What `analyzePipeline` reports of costs when asked (`costs` option). */
export interface CostAnalysis {
  pipelineName: string;
  /** Weight of the newest observation. */
  alpha: number;
  /** Executions a stage needs before `auto` may skip after it. */
  minSamples: number;
  /** Runs read, and of them how many recorded stage timings (the others: timestamp deltas). */
  runsRead: number;
  timedRuns: number;
  /** The store's learned checkpoint write cost (ms), over `checkpointSamples` writes. */
  checkpointMs: number | undefined;
  checkpointSamples: number;
  /** Checkpoints skipped (failed the check) and only partly used (encrypted, no key). */
  skippedCheckpoints: number;
  sealedCheckpoints: number;
  /** In the run's definition order. */
  stages: StageCostRow[];
}

/** Options of {@link analyzeCosts}. */
export interface CostAnalysisOptions {
  /** How many of the pipeline's newest runs to learn from (default 50). */
  runs?: number;
}

/** Learns the costs of the run's pipeline and lays them out per stage of the run. */
export async function analyzeCosts(
  manager: CheckpointManager,
  pipelineId: string,
  pipelineName: string,
  options: CostAnalysisOptions = {},
): Promise<CostAnalysis> {
  const learned = await manager.learnCosts(
    pipelineName,
    options.runs !== undefined ? { runs: options.runs } : {},
  );
  const order = (await stagesOfRun(manager, pipelineId)) ?? stagesByFirstSeen(learned);
  const steps = planCheckpoints(order, learned);
  const stages = order.map((stage, i): StageCostRow => {
    const cost = learned.stages[stage.stageName];
    const step = steps[i];
    const seen = cost !== undefined && cost.samples > 0;
    return {
      stageName: stage.stageName,
      durationMs: cost?.durationMs,
      failureRate: seen ? cost.failureRate : undefined,
      checkpointMs: cost?.checkpointMs ?? learned.checkpointMs,
      samples: cost?.samples ?? 0,
      failures: cost?.failures ?? 0,
      approximate: cost?.approximate ?? false,
      sideEffects: stage.sideEffects === true,
      autoSkips: step?.checkpoint === false,
      autoReason: step?.reason ?? "unknown",
      expectedLossMs: step?.expectedLossMs,
    };
  });
  return {
    pipelineName,
    alpha: learned.alpha,
    minSamples: learned.minSamples,
    runsRead: learned.runs.length,
    timedRuns: learned.runs.filter((r) => r.source === "timings").length,
    checkpointMs: learned.checkpointMs,
    checkpointSamples: learned.checkpointSamples,
    skippedCheckpoints: learned.skippedCheckpoints,
    sealedCheckpoints: learned.sealedCheckpoints,
    stages,
  };
}

/**
 * The run's stages in definition order, from its resume point: the recorded pipeline
 * configuration when there is one, else its completed then pending stages. Undefined when no
 * checkpoint verifies or this reader cannot open it.
 */
async function stagesOfRun(
  manager: CheckpointManager,
  pipelineId: string,
): Promise<PolicyStage[] | undefined> {
  let checkpoint: Awaited<ReturnType<CheckpointManager["loadLatestCheckpoint"]>>;
  try {
    checkpoint = await manager.loadLatestCheckpoint(pipelineId);
  } catch (error) {
    // Reported by the rest of the analysis; the stage order then comes from the history.
    if (error instanceof KeyMissingError || error instanceof CheckpointCorruptError) return undefined;
    throw error;
  }
  if (!checkpoint) return undefined;
  const config = checkpoint.stateData.pipeline_config as { steps?: unknown } | undefined;
  const steps = Array.isArray(config?.steps) ? (config.steps as unknown[]) : [];
  const named = steps.flatMap((s): PolicyStage[] => {
    if (typeof s !== "object" || s === null) return [];
    const { name, side_effects } = s as { name?: unknown; side_effects?: unknown };
    return typeof name === "string" ? [{ stageName: name, sideEffects: side_effects === true }] : [];
  });
  if (named.length > 0) return named;
  const listed = [...checkpoint.completedStages, ...checkpoint.pendingStages];
  return listed.length > 0 ? listed.map((stageName) => ({ stageName })) : undefined;
}

/** The learned stages in the order they were first seen, for a run whose definition is unknown. */
function stagesByFirstSeen(learned: LearnedCosts): PolicyStage[] {
  const names: string[] = [];
  for (const o of learned.observations) if (!names.includes(o.stageName)) names.push(o.stageName);
  return names.map((stageName) => ({ stageName }));
}

const ms = (value: number | undefined) =>
  value === undefined ? "–" : value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(1)} s`;

const AUTO_TEXT: Record<CheckpointReason, string> = {
  not_worth_it: "would skip the checkpoint after it",
  worth_it: "checkpoint",
  end: "checkpoint (end)",
  side_effects: "checkpoint (side effects)",
  unknown: "checkpoint (too few runs)",
};

/** `W·p` against `C`, when the formula decided. */
function weighed(s: StageCostRow): string {
  if (s.autoReason !== "worth_it" && s.autoReason !== "not_worth_it") return "";
  const sign = s.autoReason === "worth_it" ? "≥" : "<";
  return ` (expected loss ${ms(s.expectedLossMs)} ${sign} ${ms(s.checkpointMs)})`;
}

/** The cost section of the text analysis. */
export function renderCostLines(c: CostAnalysis): string[] {
  const lines = [
    `Costs (learned from ${c.runsRead} run${c.runsRead === 1 ? "" : "s"} of ${c.pipelineName}, ` +
      `${c.timedRuns} with stage timings; α ${c.alpha}):`,
    `  Checkpoint write: ${ms(c.checkpointMs)} (${c.checkpointSamples} recorded)`,
  ];
  if (c.skippedCheckpoints > 0 || c.sealedCheckpoints > 0) {
    lines.push(
      `  Not used: ${c.skippedCheckpoints} checkpoint(s) that fail the check; ` +
        `${c.sealedCheckpoints} encrypted without the key (timestamps only)`,
    );
  }
  const rows = c.stages.map((s) => [
    s.stageName,
    `${ms(s.durationMs)}${s.approximate ? " ≈" : ""}`,
    s.failureRate === undefined
      ? "–"
      : `${(s.failureRate * 100).toFixed(1)}% (${s.failures} of ${s.samples})`,
    ms(s.checkpointMs),
    `${s.autoSkips ? "⚑ " : ""}${AUTO_TEXT[s.autoReason]}${weighed(s)}`,
  ]);
  const table = [["Stage", "Duration", "Failure rate", "Checkpoint", "Auto policy"], ...rows];
  const widths = table[0]?.map((_, i) => Math.max(...table.map((r) => (r[i] ?? "").length))) ?? [];
  for (const row of table)
    lines.push(
      `  ${row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd()}`,
    );
  if (c.stages.some((s) => s.approximate)) lines.push("  ≈ timed from checkpoint timestamps (approximate)");
  return lines;
}
