/** One stage of an execution: its attempts (with retries) and its encoded output. */
import { EncodedOutput } from "../manager/build.js";
import type { ExecutionContext } from "./execution.js";
import { fingerprintOf, type StageFingerprint } from "./fingerprint.js";
import { runStage } from "./stage-runner.js";
import type { NormalizedStep } from "./validate.js";

const errorOf = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

/** How one stage's attempts ended. */
export type Attempted = { step: NormalizedStep; durationMs: number; attempts: number; startedAt: string } & (
  | { ok: true; output: unknown; encoded: EncodedOutput; fingerprint: StageFingerprint }
  | { ok: false; error: Error }
);

/** Runs one stage (with its retries) and encodes its output; never rejects. */
export async function attemptStage(
  ctx: ExecutionContext,
  step: NormalizedStep,
  stageInputs: (step: NormalizedStep) => Record<string, unknown>,
  run: { pipelineId: string; resumeCount: number },
  runSignal: AbortSignal,
): Promise<Attempted> {
  const { pipelineId } = run;
  const startedAt = new Date().toISOString();
  const began = performance.now();
  ctx.progress.set(step.name, { state: "running", attempts: 0, durationMs: undefined });
  const ended = (attempts: number) => ({ step, attempts, startedAt, durationMs: performance.now() - began });
  let fingerprint: StageFingerprint;
  let outcome: Awaited<ReturnType<typeof runStage>>;
  try {
    const inputs = stageInputs(step);
    fingerprint = fingerprintOf(step, inputs);
    outcome = await runStage(
      step,
      inputs,
      {
        pipelineId,
        pipelineName: ctx.name,
        stageName: step.name,
        stageIndex: step.index,
        resumeCount: run.resumeCount,
        idempotencyKey: `${pipelineId}:${step.name}`,
        config: step.config,
      },
      runSignal,
      (attempt, delayMs, error) =>
        ctx.emit({
          type: "stage_retry",
          pipelineId,
          at: new Date(),
          stageName: step.name,
          attempt,
          delayMs,
          error,
        }),
      (attempt) => {
        ctx.progress.set(step.name, { state: "running", attempts: attempt, durationMs: undefined });
        ctx.emit({
          type: "stage_started",
          pipelineId,
          at: new Date(),
          stageName: step.name,
          stageIndex: step.index,
          attempt,
        });
      },
    );
  } catch (error) {
    return { ...ended(0), ok: false, error: errorOf(error) };
  }
  if (!outcome.ok) return { ...ended(outcome.attempts), ok: false, error: errorOf(outcome.error) };
  try {
    const encoded = EncodedOutput.of(outcome.output, `agentOutputs.${step.name}`);
    return { ...ended(outcome.attempts), ok: true, output: outcome.output, encoded, fingerprint };
  } catch (error) {
    return { ...ended(outcome.attempts), ok: false, error: errorOf(error) };
  }
}
