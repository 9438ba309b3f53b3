/**
 * One execution of a run: restore what the plan skips, run the rest as their dependencies finish
 * (at most `maxConcurrency` at once), and checkpoint completions, one write at a time, under the
 * run's lease: each waited for (`durability: "sync"`), queued while the next stages run
 * ("async"), or none until the run fails, pauses or completes ("exit"); the checkpoint policy
 * may skip some (checkpoint-policy.ts). What to skip is the planner's decision, never this file's.
 */
import { LeaseLostError } from "../core/errors.js";
import {
  type CreateCheckpointInput,
  type OutputMigration,
  PIPELINE_COMPLETE_STAGE,
  type PipelineCheckpoint,
} from "../core/types.js";
import { EncodedOutput } from "../manager/build.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import { encodedOutputsOf } from "../manager/verify.js";
import type { Lease } from "../stores/types.js";
import { type CheckpointPolicy, checkpointDecider } from "./checkpoint-policy.js";
import { CheckpointWriter, type Durability } from "./checkpoint-writer.js";
import { fingerprintOf, migratedProvenanceOf, provenanceOf, type StageFingerprint } from "./fingerprint.js";
import type { RunPlan, StageDecision } from "./planner.js";
import { resolveInputs } from "./references.js";
import { markSkipped, type RunState, roundMs, type StageProgress, type StageTiming } from "./run-state.js";
import { type Attempted, attemptStage } from "./stage-attempt.js";
import { PipelineAbortedError, StageFailedError } from "./stage-runner.js";
import type { MigratedStage, PipelineEvent, PipelineResults, RerunReason, StepResult } from "./types.js";
import type { NormalizedStep } from "./validate.js";

export { markSkipped, type StageProgress, type StageTiming } from "./run-state.js";

/** Everything an execution needs from its pipeline. */
export interface ExecutionContext {
  name: string;
  /** The pipeline's `version` option, recorded in every checkpoint. */
  version: string | undefined;
  steps: readonly NormalizedStep[];
  manager: CheckpointManager | undefined;
  /** When a completed stage counts as done: its checkpoint written (sync), queued (async), or none (exit). */
  durability: Durability;
  /** Checkpoint after every stage, or where the learned costs say it is worth it. */
  checkpointPolicy: CheckpointPolicy;
  /** How many stages run at once, at most. */
  maxConcurrency: number;
  emit(event: PipelineEvent): void;
  /** True once `pause()` was called. */
  pauseRequested(): boolean;
  progress: Map<string, StageProgress>;
  /** Aborts the current stage at once: the lease was lost. */
  hardSignal: AbortSignal;
  /** Stops the run once the running stages finish. */
  stopSignal: AbortSignal | undefined;
  lease: () => Lease | undefined;
}

/** Where an execution starts from. */
export interface StartPoint {
  pipelineId: string;
  inputs: Record<string, unknown>;
  /** The verified checkpoint to resume from, with the resume count recorded for this resume. */
  resume?: { checkpoint: PipelineCheckpoint; resumeCount: number };
  /** The planner's decisions for this run: the skipped stages are restored, the rest run. */
  plan: RunPlan;
}

/** Runs (or resumes) a run to completion, a pause, or a failure. */
export async function executeRun(ctx: ExecutionContext, start: StartPoint): Promise<PipelineResults> {
  const startedAt = new Date();
  const { pipelineId } = start;
  const steps = ctx.steps;
  const outputs = new Map<string, unknown>();
  const encoded = new Map<string, EncodedOutput>();
  const provenance: Record<string, string> = {};
  const fingerprints: Record<string, StageFingerprint> = {};
  const completed: string[] = [];
  const stepsResults: Record<string, StepResult> = {};
  const skippedStages: string[] = [];
  const rerunStages: RerunReason[] = [];
  const migratedStages: MigratedStage[] = [];
  // Versions of the outputs the run holds, and which of them a migration produced.
  const outputVersions: Record<string, number> = {};
  const outputMigrations: Record<string, OutputMigration> = {};
  const timings: Record<string, StageTiming> = {};
  let checkpointsCreated = 0;
  let unsaved = false; // progress no checkpoint holds yet (a migration, a stage not checkpointed)
  const resumeCount = start.resume?.resumeCount ?? 0;
  const state = (): RunState => ({
    inputs: start.inputs,
    pipeline_config: {
      name: ctx.name,
      steps: steps.map((s) => ({
        name: s.name,
        agent: s.agent.name,
        version: s.agent.version ?? null,
        depends_on: [...s.dependsOn],
      })),
    },
    fingerprints: { ...fingerprints },
    stage_timings: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, { ...v }])),
  });
  const stageInputs = (step: NormalizedStep) => ({ ...start.inputs, ...resolveInputs(step.inputs, outputs) });

  const writer = ctx.manager ? new CheckpointWriter(ctx.manager, ctx.lease) : undefined;
  /** The checkpoint as of now: a queued write holds this snapshot, not what happens after. */
  const checkpointInput = (
    stageName: string,
    stageIndex: number,
    status: "completed" | "failed" | "in_progress",
    errorMessage?: string,
  ): CreateCheckpointInput => ({
    pipelineId,
    pipelineName: ctx.name,
    stageName,
    stageIndex,
    stateData: state() as unknown as Record<string, unknown>,
    completedStages: [...completed],
    pendingStages: steps.filter((s) => !completed.includes(s.name)).map((s) => s.name),
    agentOutputs: Object.fromEntries(encoded),
    provenanceHashes: { ...provenance },
    ...(ctx.version !== undefined ? { pipelineVersion: ctx.version } : {}),
    outputVersions: { ...outputVersions },
    outputMigrations: { ...outputMigrations },
    status,
    ...(errorMessage !== undefined ? { errorMessage } : {}),
  });
  /** After a write: counted, reported, and its write time noted for the next checkpoint. */
  const written = (stageName: string, timed: boolean) => (checkpointId: string, writeMs: number) => {
    checkpointsCreated++;
    const timing = timings[stageName];
    if (timed && timing) timing.checkpoint_ms = roundMs(writeMs);
    const result = stepsResults[stageName];
    if (timed && result) result.checkpointId = checkpointId;
    ctx.emit({ type: "checkpoint_created", pipelineId, at: new Date(), checkpointId, stageName });
  };

  /** Writes a checkpoint after every queued one and waits for it to be durable. */
  async function checkpoint(
    stageName: string,
    stageIndex: number,
    status: "completed" | "failed" | "in_progress",
    errorMessage?: string,
  ): Promise<string | undefined> {
    if (!writer) return undefined;
    const input = checkpointInput(stageName, stageIndex, status, errorMessage);
    unsaved = false;
    return writer.write(input, written(stageName, false));
  }

  /** A completed stage's checkpoint: waited for, or (async) queued while the run goes on. */
  async function stageCheckpoint(step: NormalizedStep, wait: boolean): Promise<string | undefined> {
    if (!writer) return undefined;
    const input = checkpointInput(step.name, step.index, "completed");
    unsaved = false;
    if (wait) return writer.write(input, written(step.name, true));
    writer.enqueue(input, written(step.name, true));
    return undefined;
  }

  // Restore the stages the plan skips and take the outputs it migrated, and report every re-run with the planner's reason before
  // anything runs.
  const resumed = start.resume?.checkpoint;
  const storedOutputs = resumed ? encodedOutputsOf(resumed.agentOutputs) : undefined;
  for (const decision of start.plan.stages) {
    if (decision.action === "migrate") {
      takeMigrated(decision);
      continue;
    }
    if (decision.action !== "skip") continue;
    const step = steps[decision.stageIndex] as NormalizedStep;
    const fingerprint = decision.fingerprint ?? fingerprintOf(step, stageInputs(step));
    const output = resumed?.agentOutputs[step.name];
    outputs.set(step.name, output);
    // The stored text was verified at load: carried as is, never encoded and hashed again.
    encoded.set(
      step.name,
      storedOutputs?.get(step.name) ?? EncodedOutput.of(output, `agentOutputs.${step.name}`),
    );
    fingerprints[step.name] = fingerprint;
    provenance[step.name] =
      resumed?.provenanceHashes[step.name] ??
      provenanceOf(step.name, fingerprint, encoded.get(step.name)?.hash ?? "");
    outputVersions[step.name] = resumed?.outputVersions[step.name] ?? 1;
    // A migrated output that still stands keeps saying so in every later checkpoint.
    const migratedBefore = resumed?.outputMigrations[step.name];
    if (migratedBefore) outputMigrations[step.name] = migratedBefore;
    carryTiming(step.name);
    completed.push(step.name);
    skippedStages.push(step.name);
    markSkipped(step.name, output, stepsResults, ctx.progress);
    ctx.emit({
      type: "stage_skipped",
      pipelineId,
      at: new Date(),
      stageName: step.name,
      stageIndex: step.index,
    });
  }
  /** Keeps a restored stage's timing from the checkpoint resumed from, like its fingerprint. */
  function carryTiming(stageName: string): void {
    const prior = (resumed?.stateData.stage_timings as Record<string, unknown> | undefined)?.[stageName];
    if (prior !== null && typeof prior === "object") timings[stageName] = { ...(prior as StageTiming) };
  }
  /** A stage whose stored output the planner migrated: the agent is not called. */
  function takeMigrated(decision: StageDecision): void {
    const step = steps[decision.stageIndex] as NormalizedStep;
    const { migration, fingerprint } = decision;
    // The planner migrates every stage it plans as `migrate` in a run that goes on.
    if (!migration || !fingerprint)
      throw new Error(`cairn bug: stage ${step.name} planned as migrate without its migration`);
    const { fromVersion, toVersion, output, encoded: text } = migration;
    const by = ctx.version;
    outputs.set(step.name, output);
    encoded.set(step.name, text);
    fingerprints[step.name] = fingerprint;
    provenance[step.name] = migratedProvenanceOf(step.name, fingerprint, text.hash, {
      previousHash: migration.previousHash,
      fromVersion,
      toVersion,
      by,
    });
    outputVersions[step.name] = toVersion;
    outputMigrations[step.name] = { from: fromVersion, to: toVersion, by };
    carryTiming(step.name);
    completed.push(step.name);
    migratedStages.push({ stageName: step.name, fromVersion, toVersion });
    stepsResults[step.name] = {
      status: "migrated",
      output,
      attempts: 0,
      durationMs: 0,
      checkpointId: undefined,
    };
    ctx.progress.set(step.name, { state: "migrated", attempts: 0, durationMs: undefined });
    ctx.emit({
      type: "stage_migrated",
      pipelineId,
      at: new Date(),
      stageName: step.name,
      stageIndex: step.index,
      fromVersion,
      toVersion,
    });
  }

  for (const { stageName, action, reason } of start.plan.stages) {
    if (action !== "rerun") continue;
    const why = reason ?? "it changed";
    rerunStages.push({ stageName, reason: why });
    ctx.emit({ type: "stage_rerun", pipelineId, at: new Date(), stageName, reason: why });
  }

  const results = (status: "completed" | "paused", pending: string[]): PipelineResults => ({
    pipelineId,
    name: ctx.name,
    status,
    startedAt,
    completedAt: new Date(),
    stepsResults,
    finalOutputs: Object.fromEntries(outputs),
    checkpointsCreated,
    ...(resumed ? { resumedFrom: resumed.metadata.checkpointId } : {}),
    skippedStages,
    rerunStages,
    migratedStages,
    pendingStages: pending,
  });

  // Migrated outputs are new: a run stopped before its next stage still checkpoints them.
  unsaved = migratedStages.length > 0;
  const finished = new Set(completed);
  const remaining = steps.filter((s) => !finished.has(s.name));
  const running = new Map<string, Promise<Attempted>>();
  let failure: Attempted | undefined;
  // Stops the stages still running when this execution ends early (a store error, a lost lease).
  const ending = new AbortController();
  const runSignal = AbortSignal.any([ctx.hardSignal, ending.signal]);
  const launch = (step: NormalizedStep) =>
    attemptStage(ctx, step, stageInputs, { pipelineId, resumeCount }, runSignal);
  const stepNamed = (name: string) => steps.find((s) => s.name === name) as NormalizedStep;
  const decider = await checkpointDecider(ctx);
  const everyStage = ctx.durability !== "exit";
  try {
    for (;;) {
      // Nothing new starts once a stage failed or a stop was asked for; the running ones finish.
      const stopping = () => failure !== undefined || ctx.pauseRequested() || ctx.stopSignal?.aborted;
      while (!stopping() && running.size < ctx.maxConcurrency) {
        const next = remaining.find((s) => s.dependsOn.every((d) => finished.has(d)));
        if (!next) break;
        // A stage with side effects starts only once everything before it is durable: a crash
        // during it then never makes the stages it follows run again.
        if (next.sideEffects && everyStage && writer) {
          const last = completed[completed.length - 1];
          if (unsaved && last !== undefined) await stageCheckpoint(stepNamed(last), true);
          else await writer.drain();
          decider.reset();
          if (stopping()) break;
        }
        remaining.splice(remaining.indexOf(next), 1);
        running.set(next.name, launch(next));
      }
      if (running.size === 0) break;
      const done = await Promise.race(running.values());
      running.delete(done.step.name);
      // The stage boundary: a queued checkpoint that failed fails the run here.
      writer?.check();
      const { step, durationMs, attempts } = done;
      timings[step.name] = { duration_ms: roundMs(durationMs), attempts, started_at: done.startedAt };
      if (!done.ok) {
        const error = done.error;
        timings[step.name] = { ...timings[step.name], failed: true } as StageTiming;
        ctx.progress.set(step.name, { state: "failed", attempts, durationMs, error: error.message });
        ctx.emit({
          type: "stage_failed",
          pipelineId,
          at: new Date(),
          stageName: step.name,
          stageIndex: step.index,
          error,
        });
        // A lost lease means another runner owns the run now: write nothing more.
        if (error instanceof LeaseLostError || ctx.hardSignal.aborted) throw ctx.hardSignal.reason ?? error;
        failure ??= done;
        continue;
      }
      outputs.set(step.name, done.output);
      encoded.set(step.name, done.encoded);
      fingerprints[step.name] = done.fingerprint;
      provenance[step.name] = provenanceOf(step.name, done.fingerprint, done.encoded.hash);
      outputVersions[step.name] = step.outputVersion;
      delete outputMigrations[step.name];
      completed.push(step.name);
      unsaved = true;
      stepsResults[step.name] = {
        status: "completed",
        output: done.output,
        attempts,
        durationMs,
        checkpointId: undefined,
      };
      // Writes are one at a time, in completion order, so the run's chain stays linear. In sync
      // mode a stage counts as completed only once its checkpoint is stored; in async mode the
      // next stages start while it is written, except after a stage with side effects.
      const upcoming = [...[...running.keys()].map(stepNamed), ...remaining.slice(0, 1)];
      if (everyStage && decider.after(step, upcoming)) {
        await stageCheckpoint(step, ctx.durability === "sync" || step.sideEffects);
      }
      finished.add(step.name);
      ctx.progress.set(step.name, { state: "completed", attempts, durationMs });
      ctx.emit({
        type: "stage_completed",
        pipelineId,
        at: new Date(),
        stageName: step.name,
        stageIndex: step.index,
        durationMs,
        attempts,
      });
    }
    // Every queued checkpoint is durable (or its error thrown) before the run's last word.
    await writer?.drain();
  } catch (error) {
    ending.abort(error);
    // No write of this execution may land after it ended (its lease is released next).
    const writeError = await writer?.settle();
    if (writeError !== undefined && writeError !== error)
      process.emitWarning(
        `cairn: a queued checkpoint of ${pipelineId} also failed: ${(writeError as Error).message}`,
      );
    throw error;
  }
  if (failure && !failure.ok) {
    const { step, error, attempts } = failure;
    const failureId = await checkpoint(step.name, step.index, "failed", error.message);
    ctx.emit({ type: "run_failed", pipelineId, at: new Date(), stageName: step.name, error });
    throw new StageFailedError(step.name, pipelineId, failureId, attempts, error);
  }
  if (remaining.length > 0) {
    const pending = steps.filter((s) => !finished.has(s.name)).map((s) => s.name);
    // Progress no checkpoint holds yet (exit mode, a skipped checkpoint): saved before stopping.
    if (unsaved) {
      const last = stepNamed(completed[completed.length - 1] as string);
      await checkpoint(last.name, last.index, "in_progress");
    }
    ctx.emit({ type: "run_paused", pipelineId, at: new Date(), pendingStages: pending });
    if (ctx.stopSignal?.aborted && !ctx.pauseRequested()) {
      throw new PipelineAbortedError(pipelineId, `stopped before stage ${pending[0]}; resume to continue`, {
        cause: ctx.stopSignal.reason,
      });
    }
    return results("paused", pending);
  }
  await checkpoint(PIPELINE_COMPLETE_STAGE, steps.length, "completed");
  ctx.emit({
    type: "run_completed",
    pipelineId,
    at: new Date(),
    durationMs: Date.now() - startedAt.getTime(),
  });
  return results("completed", []);
}
