/**
 * The stage graph of one run: one node per stage of the pipeline, with its status in the run's
 * newest readable checkpoint, and one edge per dependency. Dependencies come from the
 * checkpoint's `state_data.pipeline_config.steps[].depends_on`; a checkpoint written without
 * them (a linear pipeline of an older cairn, or a hand-written one) gives a linear chain.
 */
import { CheckpointCorruptError, CheckpointNotFoundError, TooLargeError } from "../../core/errors.js";
import type { PipelineCheckpoint } from "../../core/types.js";
import { isQuarantined } from "../../manager/check.js";
import type { CheckpointManager } from "../../manager/checkpoint-manager.js";

/** What a stage's node says about it. */
export type StageState = "completed" | "failed" | "pending";

/** One stage. */
export interface StageNode {
  name: string;
  /** Position in the pipeline definition, from 0. */
  index: number;
  agent: string | undefined;
  state: StageState;
  /** A pending stage whose dependencies all completed: the next to run on a resume. */
  ready: boolean;
  /** From `state_data.stage_timings`, when recorded. */
  durationMs: number | undefined;
  /** The stage's failure message (the failed checkpoint's), when it failed. */
  errorMessage: string | undefined;
}

/** `from` must finish before `to` starts. */
export interface StageEdge {
  from: string;
  to: string;
}

/** The stage graph of a run. */
export interface StageGraph {
  pipelineId: string;
  pipelineName: string;
  /** `<pipeline name> — run <pipeline id>`. */
  title: string;
  generatedAt: Date;
  /** The checkpoint the statuses are read from. */
  checkpointId: string;
  sequence: number;
  /** False when the checkpoint records no `depends_on`: the edges are the linear chain. */
  dependenciesKnown: boolean;
  /** Definition order. */
  nodes: StageNode[];
  edges: StageEdge[];
}

/** A step of `state_data.pipeline_config.steps`, as far as the graph needs it. */
interface RecordedStep {
  name: string;
  agent: string | undefined;
  dependsOn: string[] | undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** The steps a checkpoint's state records, or undefined when it records none that are usable. */
function recordedSteps(stateData: Record<string, unknown>): RecordedStep[] | undefined {
  const config = stateData.pipeline_config;
  if (!isObject(config) || !Array.isArray(config.steps)) return undefined;
  const steps: RecordedStep[] = [];
  for (const raw of config.steps) {
    if (!isObject(raw) || typeof raw.name !== "string") return undefined;
    const deps = raw.depends_on;
    steps.push({
      name: raw.name,
      agent: typeof raw.agent === "string" ? raw.agent : undefined,
      dependsOn:
        Array.isArray(deps) && deps.every((d): d is string => typeof d === "string") ? deps : undefined,
    });
  }
  return steps.length > 0 ? steps : undefined;
}

/** Duration of each stage recorded in `state_data.stage_timings`. */
function durations(stateData: Record<string, unknown>): Map<string, number> {
  const out = new Map<string, number>();
  const timings = stateData.stage_timings;
  if (!isObject(timings)) return out;
  for (const [name, t] of Object.entries(timings)) {
    if (isObject(t) && typeof t.duration_ms === "number") out.set(name, t.duration_ms);
  }
  return out;
}

/**
 * The stage graph a checkpoint describes (pure: no store). Stage order is the recorded
 * definition order, else completed then pending stages; a stage with no recorded `depends_on`
 * depends on the one before it, as in a pipeline definition.
 */
export function stageGraphOf(checkpoint: PipelineCheckpoint, options: { now?: Date } = {}): StageGraph {
  const m = checkpoint.metadata;
  const recorded = recordedSteps(checkpoint.stateData);
  const steps: RecordedStep[] = recorded ?? [
    ...[...checkpoint.completedStages, ...checkpoint.pendingStages].map((name) => ({
      name,
      agent: undefined,
      dependsOn: undefined,
    })),
  ];
  const names = new Set(steps.map((s) => s.name));
  const completed = new Set(checkpoint.completedStages);
  // A run's last checkpoint names no stage of the pipeline (`pipeline_complete`).
  const failed = m.status === "failed" && names.has(m.stageName) ? m.stageName : undefined;
  const timing = durations(checkpoint.stateData);
  const edges: StageEdge[] = [];
  const dependencies = new Map<string, string[]>();
  for (const [i, step] of steps.entries()) {
    const previous = i > 0 ? steps[i - 1]?.name : undefined;
    const deps = (step.dependsOn ?? (previous !== undefined ? [previous] : [])).filter((d) => names.has(d));
    dependencies.set(step.name, deps);
    for (const from of deps) edges.push({ from, to: step.name });
  }
  const nodes = steps.map((step, index): StageNode => {
    // The failed checkpoint's own stage failed, even if a hand-written record lists it as completed.
    const state: StageState =
      step.name === failed ? "failed" : completed.has(step.name) ? "completed" : "pending";
    return {
      name: step.name,
      index,
      agent: step.agent,
      state,
      ready: state === "pending" && (dependencies.get(step.name) ?? []).every((d) => completed.has(d)),
      durationMs: timing.get(step.name),
      errorMessage: state === "failed" ? m.errorMessage : undefined,
    };
  });
  const name = m.pipelineName;
  return {
    pipelineId: m.pipelineId,
    pipelineName: name,
    title: name && name !== m.pipelineId ? `${name} — run ${m.pipelineId}` : `run ${m.pipelineId}`,
    generatedAt: options.now ?? new Date(),
    checkpointId: m.checkpointId,
    sequence: m.sequence,
    dependenciesKnown: recorded?.every((s) => s.dependsOn !== undefined) ?? false,
    nodes,
    edges,
  };
}

/**
 * The stage graph of a run from its newest checkpoint that loads and verifies and is not
 * quarantined (an unreadable newer one cannot say anything trustworthy). `CAIRN_NOT_FOUND` for an unknown run;
 * `CAIRN_CORRUPT` when no checkpoint of it verifies.
 */
export async function buildStageGraph(
  manager: CheckpointManager,
  pipelineId: string,
  options: { now?: Date } = {},
): Promise<StageGraph> {
  const listed = await manager.listRun(pipelineId);
  // A quarantined checkpoint was judged bad by `cairn repair`: resume skips it, and so does this.
  const newestFirst = listed
    .flatMap((entry) => (entry.ok && !isQuarantined(entry.metadata) ? [entry.metadata] : []))
    .sort((a, b) => b.sequence - a.sequence);
  const problems: string[] = [];
  for (const m of newestFirst) {
    try {
      return stageGraphOf(await manager.loadCheckpoint(m.checkpoint_id), options);
    } catch (error) {
      // Only what makes this one checkpoint unreadable moves on to an older one; a store error
      // (unavailable, operation failed) or a missing key (every checkpoint needs it) is the
      // caller's to see.
      const unreadable =
        error instanceof CheckpointCorruptError ||
        error instanceof TooLargeError ||
        error instanceof CheckpointNotFoundError;
      if (!unreadable) throw error;
      problems.push(`${m.checkpoint_id}: ${(error as Error).message}`);
    }
  }
  throw new CheckpointCorruptError(
    undefined,
    `no checkpoint of run ${pipelineId} verifies, so its stages cannot be drawn${problems.length > 0 ? ` (${problems[0]}${problems.length > 1 ? `; and ${problems.length - 1} more` : ""})` : ""}`,
  );
}
