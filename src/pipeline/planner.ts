/**
 * The planner: the one place that decides, for every stage of a pipeline definition, whether a
 * run skips it (a verified checkpoint holds it, unchanged), re-runs it (it completed, but it or
 * an earlier stage changed), or runs it (it never completed). `execute()` does exactly what the
 * plan says, and a dry run prints the same plan, so the plan a user reads is the plan that runs.
 *
 * Pipelines are linear: a stage is skipped only while every stage before it is skipped too.
 * Once one stage runs or re-runs, every later stage that had completed re-runs, naming it.
 */
import { CairnError } from "../core/errors.js";
import { PIPELINE_COMPLETE_STAGE, type PipelineCheckpoint } from "../core/types.js";
import { fingerprintChange, fingerprintOf, type StageFingerprint } from "./fingerprint.js";
import { resolveInputs } from "./references.js";
import type { NormalizedStep } from "./validate.js";

/** What a run does with a stage. The planner will grow `migrate` (reuse an output under a new definition). */
export type StageAction = "skip" | "rerun" | "run";

/** The planner's decision for one stage. */
export interface StageDecision {
  stageName: string;
  stageIndex: number;
  action: StageAction;
  /** Why: always set for `rerun`; never for `run`; for `skip`, only in a finished run that changed since. */
  reason?: string;
  /** For `skip`: the fingerprint that matched the stored one, which the skipped stage keeps. */
  fingerprint?: StageFingerprint;
}

/** The part of a verified resume checkpoint the planner reads. */
export type ResumeCheckpoint = Pick<
  PipelineCheckpoint,
  "metadata" | "completedStages" | "agentOutputs" | "stateData"
>;

/** What the planner plans from. */
export interface PlanInput {
  /** The pipeline definition, in order. */
  steps: readonly NormalizedStep[];
  /** The run's resume point; undefined for a new run. */
  resume: ResumeCheckpoint | undefined;
  /** The run's inputs (each stage sees them overlaid with its step's `inputs`). */
  inputs: Record<string, unknown>;
}

/** The plan of a run: one decision per stage of the definition, in order. */
export interface RunPlan {
  /** The checkpoint the run resumes from; undefined for a new run. */
  resumeFrom: string | undefined;
  /** The run already completed: nothing runs, every stage is `skip`. */
  finished: boolean;
  stages: StageDecision[];
}

/** The run inputs of an execution: those given, else the ones the run started with. */
export function runInputsOf(
  given: Record<string, unknown> | undefined,
  resume: ResumeCheckpoint | undefined,
): Record<string, unknown> {
  return given ?? (resume?.stateData.inputs as Record<string, unknown> | undefined) ?? {};
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Plans a run (pure: reads only its input). */
export function planRun({ steps, resume, inputs }: PlanInput): RunPlan {
  const done = new Set(resume?.completedStages ?? []);
  const stored = (resume?.stateData.fingerprints ?? {}) as Record<string, unknown>;
  const outputs = new Map<string, unknown>();
  let cause: StageDecision | undefined;
  const stages = steps.map((step): StageDecision => {
    const at = { stageName: step.name, stageIndex: step.index };
    const completed = resume !== undefined && done.has(step.name);
    if (cause) {
      if (!completed) return { ...at, action: "run" };
      const verb = cause.action === "run" ? "runs" : "runs again";
      return { ...at, action: "rerun", reason: `an earlier stage (${cause.stageName}) ${verb}` };
    }
    if (!completed) {
      cause = { ...at, action: "run" };
      return cause;
    }
    const reason = changeOf(step, resume, stored, outputs, inputs);
    if (typeof reason === "string") {
      cause = { ...at, action: "rerun", reason };
      return cause;
    }
    outputs.set(step.name, resume.agentOutputs[step.name]);
    return { ...at, action: "skip", fingerprint: reason.fingerprint };
  });
  const finished = resume?.metadata.stageName === PIPELINE_COMPLETE_STAGE;
  return {
    resumeFrom: resume?.metadata.checkpointId,
    finished,
    stages: finished ? stages.map(asFinished) : stages,
  };
}

/** Why a completed stage must run again, or the fingerprint that still matches. */
function changeOf(
  step: NormalizedStep,
  resume: ResumeCheckpoint,
  stored: Record<string, unknown>,
  outputs: ReadonlyMap<string, unknown>,
  inputs: Record<string, unknown>,
): string | { fingerprint: StageFingerprint } {
  if (!Object.hasOwn(resume.agentOutputs, step.name)) return "the checkpoint does not hold its output";
  let fingerprint: StageFingerprint;
  try {
    fingerprint = fingerprintOf(step, { ...inputs, ...resolveInputs(step.inputs, outputs) });
  } catch (error) {
    // A reference that no longer resolves, or inputs that cannot be encoded: the stage runs
    // again and fails there with this same error. Anything else is a bug and propagates.
    if (!(error instanceof CairnError)) throw error;
    return `its inputs cannot be resolved any more: ${messageOf(error)}`;
  }
  return fingerprintChange(stored[step.name], fingerprint) ?? { fingerprint };
}

/** A finished run runs nothing again; what a new run would do differently is kept as the reason. */
function asFinished(decision: StageDecision): StageDecision {
  if (decision.action === "skip") return decision;
  const { stageName, stageIndex } = decision;
  const reason =
    decision.action === "run"
      ? "the run already completed without this stage"
      : `the run already completed (changed since: ${decision.reason})`;
  return { stageName, stageIndex, action: "skip", reason };
}
