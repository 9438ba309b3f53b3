/**
 * The planner: the one place that decides, for every stage of a pipeline definition, whether a
 * run skips it (a verified checkpoint holds it, unchanged), migrates it (it completed with an
 * older output version, and the step's `migrateOutput` converts the stored output), re-runs it
 * (it completed, but it or an earlier stage changed), or runs it (it never completed).
 * `execute()` does exactly what the plan says, and a dry run prints the same plan, so the plan a
 * user reads is the plan that runs.
 *
 * Like a build system over the stage graph: a completed stage is skipped or migrated only while
 * every stage it depends on is skipped or migrated too. Once a stage runs or re-runs, every
 * completed stage downstream of it re-runs, naming the earliest such ancestor; stages beside it
 * stand. A linear pipeline is a chain, so there every later stage re-runs, as it always did.
 * Migrations are pure by contract, so the planner runs them (in memory) to plan the stages that
 * read their outputs.
 */
import { decode } from "../core/codec.js";
import { CairnError, MigrationError } from "../core/errors.js";
import { PIPELINE_COMPLETE_STAGE, type PipelineCheckpoint } from "../core/types.js";
import { EncodedOutput } from "../manager/build.js";
import { encodedOutputsOf } from "../manager/verify.js";
import { ancestorsOf } from "./dag.js";
import { fingerprintChange, fingerprintOf, type StageFingerprint } from "./fingerprint.js";
import { resolveInputs } from "./references.js";
import type { PlannedStage } from "./types.js";
import type { NormalizedStep } from "./validate.js";

/** What a run does with a stage. */
export type StageAction = "skip" | "migrate" | "rerun" | "run";

/** A stored output converted by its step's `migrateOutput`, ready to be stored as a new output. */
export interface StageMigration {
  /** The stored output's version. */
  fromVersion: number;
  /** The step's `outputVersion`. */
  toVersion: number;
  /** The migrated output, as later stages see it. */
  output: unknown;
  /** Its canonical text, checked by the codec. */
  encoded: EncodedOutput;
  /** The content hash of the stored output it replaces. */
  previousHash: string;
}

/** The planner's decision for one stage. */
export interface StageDecision {
  stageName: string;
  stageIndex: number;
  action: StageAction;
  /**
   * Why: always set for `rerun` and `migrate`; never for `run`; for `skip`, only in a finished
   * run that changed since.
   */
  reason?: string;
  /** For `skip`: the fingerprint that matched the stored one; for `migrate`: the step's current one. */
  fingerprint?: StageFingerprint;
  /** For `migrate`: the stored and current output versions. */
  fromVersion?: number;
  toVersion?: number;
  /** For `migrate` in a run that goes on: the migrated output. */
  migration?: StageMigration;
}

/** The part of a verified resume checkpoint the planner reads. */
export type ResumeCheckpoint = Pick<
  PipelineCheckpoint,
  "metadata" | "completedStages" | "agentOutputs" | "stateData" | "outputVersions" | "pipelineVersion"
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

/**
 * Plans a run. It reads only its input and writes nothing; the one thing it calls is a step's
 * `migrateOutput` (pure by contract), whose throw is a {@link MigrationError} before anything
 * is written. A finished run runs nothing again, so its migrations are not called.
 */
export async function planRun({ steps, resume, inputs }: PlanInput): Promise<RunPlan> {
  const done = new Set(resume?.completedStages ?? []);
  const stored = (resume?.stateData.fingerprints ?? {}) as Record<string, unknown>;
  const finished = resume?.metadata.stageName === PIPELINE_COMPLETE_STAGE;
  const outputs = new Map<string, unknown>();
  const byName = new Map<string, StageDecision>();
  // Stages that run or re-run for their own reason, not because a dependency does.
  const causes = new Set<string>();
  // Definition order need not be an order of the graph: decide dependencies first.
  for (const step of topological(steps)) {
    const at = { stageName: step.name, stageIndex: step.index };
    const completed = resume !== undefined && done.has(step.name);
    const blocked = step.dependsOn.some((d) => {
      const action = byName.get(d)?.action;
      return action !== "skip" && action !== "migrate";
    });
    let decision: StageDecision;
    if (!completed) {
      decision = { ...at, action: "run" };
      if (!blocked) causes.add(step.name);
    } else if (blocked) {
      const cause = causeOf(step, steps, byName, causes);
      const verb = cause.action === "run" ? "runs" : "runs again";
      decision = { ...at, action: "rerun", reason: `an earlier stage (${cause.stageName}) ${verb}` };
    } else {
      decision = { ...at, ...(await decide(step, resume, stored, outputs, inputs, !finished)) };
      if (decision.action === "rerun") causes.add(step.name);
      // A migration may well return null: only its absence means the stored output stands.
      else
        outputs.set(
          step.name,
          decision.migration ? decision.migration.output : resume.agentOutputs[step.name],
        );
    }
    byName.set(step.name, decision);
  }
  const stages = steps.map((s) => byName.get(s.name) as StageDecision);
  return {
    resumeFrom: resume?.metadata.checkpointId,
    finished,
    stages: finished ? stages.map(asFinished) : stages,
  };
}

/** The steps with every step after its dependencies, otherwise in definition order. */
function topological(steps: readonly NormalizedStep[]): NormalizedStep[] {
  const placed = new Set<string>();
  const order: NormalizedStep[] = [];
  while (order.length < steps.length) {
    const next = steps.find((s) => !placed.has(s.name) && s.dependsOn.every((d) => placed.has(d)));
    // Validation rejects cycles: a step left without a placeable one is a bug.
    if (!next) throw new Error("cairn bug: the stage graph has a cycle");
    placed.add(next.name);
    order.push(next);
  }
  return order;
}

/**
 * Why a stage whose dependency does not stand must re-run: the earliest ancestor (in definition
 * order) that runs or re-runs for its own reason. In a linear pipeline it is the first stage
 * that does, as it always was.
 */
function causeOf(
  step: NormalizedStep,
  steps: readonly NormalizedStep[],
  byName: ReadonlyMap<string, StageDecision>,
  causes: ReadonlySet<string>,
): StageDecision {
  const ancestors = ancestorsOf(steps, step.name);
  const cause = steps.find((s) => ancestors.has(s.name) && causes.has(s.name));
  if (!cause) throw new Error(`cairn bug: stage ${step.name} re-runs without a cause`);
  return byName.get(cause.name) as StageDecision;
}

type Decision = Omit<StageDecision, "stageName" | "stageIndex">;

/** What to do with a completed stage while every earlier one is skipped or migrated. */
async function decide(
  step: NormalizedStep,
  resume: ResumeCheckpoint,
  stored: Record<string, unknown>,
  outputs: ReadonlyMap<string, unknown>,
  inputs: Record<string, unknown>,
  migrate: boolean,
): Promise<Decision> {
  const rerun = (reason: string): Decision => ({ action: "rerun", reason });
  if (!Object.hasOwn(resume.agentOutputs, step.name)) return rerun("the checkpoint does not hold its output");
  // Records written before output versions read as version 1 for every output.
  const from = resume.outputVersions[step.name] ?? 1;
  const to = step.outputVersion;
  if (from > to) return rerun(`its stored output version ${from} is newer than the step's (${to})`);
  if (from < to && !step.migrateOutput)
    return rerun(`its output version changed (${from} → ${to}) and the step has no migrateOutput`);
  let fingerprint: StageFingerprint;
  try {
    fingerprint = fingerprintOf(step, { ...inputs, ...resolveInputs(step.inputs, outputs) });
  } catch (error) {
    // A reference that no longer resolves, or inputs that cannot be encoded: the stage runs
    // again and fails there with this same error. Anything else is a bug and propagates.
    if (!(error instanceof CairnError)) throw error;
    return rerun(`its inputs cannot be resolved any more: ${messageOf(error)}`);
  }
  if (from === to) {
    const change = fingerprintChange(stored[step.name], fingerprint);
    return change === undefined ? { action: "skip", fingerprint } : rerun(change);
  }
  // A version bump usually comes with a new agent or definition: only the inputs must still be
  // the ones the stored output was computed from.
  const prior = stored[step.name];
  if (prior === null || typeof prior !== "object") return rerun("no fingerprint was recorded for it");
  if ((prior as Partial<StageFingerprint>).inputs !== fingerprint.inputs)
    return rerun("its resolved inputs changed");
  const decision: Decision = {
    action: "migrate",
    reason: `its output version changed (${from} → ${to}); migrateOutput converts it`,
    fingerprint,
    fromVersion: from,
    toVersion: to,
  };
  return migrate ? { ...decision, migration: await migrateStored(step, resume, from) } : decision;
}

/**
 * Runs a step's `migrateOutput` on a fresh copy of its stored output (a migration that mutates
 * its argument cannot touch the checkpoint), and encodes the result: an output the codec cannot
 * store is the codec's typed error naming its path, as for an agent's output.
 */
async function migrateStored(
  step: NormalizedStep,
  resume: ResumeCheckpoint,
  from: number,
): Promise<StageMigration> {
  const migrate = step.migrateOutput as NonNullable<NormalizedStep["migrateOutput"]>;
  const where = `agentOutputs.${step.name}`;
  const stored =
    encodedOutputsOf(resume.agentOutputs)?.get(step.name) ??
    EncodedOutput.of(resume.agentOutputs[step.name], where);
  let output: unknown;
  try {
    output = await migrate(decode(stored.text), from);
  } catch (error) {
    throw new MigrationError(step.name, from, step.outputVersion, { cause: error });
  }
  return {
    fromVersion: from,
    toVersion: step.outputVersion,
    output,
    encoded: EncodedOutput.of(output, where),
    previousHash: stored.hash,
  };
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

/** A plan as a dry run shows it: each decision with its step's agent and inputs. */
export function plannedStages(steps: readonly NormalizedStep[], plan: RunPlan): PlannedStage[] {
  return plan.stages.map(({ stageName, stageIndex, action, reason, fromVersion, toVersion }) => {
    const step = steps[stageIndex] as NormalizedStep;
    return {
      stageName,
      stageIndex,
      agent: step.agent.identity,
      action,
      ...(reason !== undefined ? { reason } : {}),
      inputs: step.inputs ?? {},
      ...(action === "migrate" ? { fromVersion, toVersion } : {}),
    };
  });
}
