/** Runs one stage's agent: per-attempt timeout, retries with exponential backoff, abort. */
import { CairnError, ErrorCode } from "../core/errors.js";
import { InvalidReferenceError } from "./references.js";
import type { StageContext } from "./types.js";
import type { NormalizedStep } from "./validate.js";

/** An attempt took longer than the step's `timeoutMs`. */
export class StageTimeoutError extends CairnError {
  constructor(stageName: string, timeoutMs: number) {
    super(ErrorCode.StageTimeout, `Stage ${stageName} timed out after ${timeoutMs} ms`);
  }
}

/** A stage failed after all its attempts; the run stopped with a `failed` checkpoint. */
export class StageFailedError extends CairnError {
  /** The failed stage. */
  readonly stageName: string;
  /** The run. */
  readonly pipelineId: string;
  /** The failure checkpoint, when checkpointing is on. */
  readonly checkpointId: string | undefined;
  /** Attempts made. */
  readonly attempts: number;

  constructor(
    stageName: string,
    pipelineId: string,
    checkpointId: string | undefined,
    attempts: number,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      ErrorCode.StageFailed,
      `Stage ${stageName} of run ${pipelineId} failed after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${reason}`,
      { cause },
    );
    this.stageName = stageName;
    this.pipelineId = pipelineId;
    this.checkpointId = checkpointId;
    this.attempts = attempts;
  }
}

/** The run was stopped (signal, lease lost, or killed) and did not finish. */
export class PipelineAbortedError extends CairnError {
  /** The run. */
  readonly pipelineId: string;

  constructor(pipelineId: string, reason: string, options?: { cause?: unknown }) {
    super(ErrorCode.Aborted, `Run ${pipelineId} stopped: ${reason}`, options);
    this.pipelineId = pipelineId;
  }
}

const MAX_RETRY_DELAY_MS = 30_000;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Errors that would fail the same way on every attempt. */
const isPermanent = (error: unknown) =>
  error instanceof InvalidReferenceError ||
  (error instanceof CairnError && error.code === ErrorCode.Unserializable);

/** Outcome of a stage: its output, or the last error; with the attempts made. */
export type StageOutcome =
  | { ok: true; output: unknown; attempts: number }
  | { ok: false; error: unknown; attempts: number };

/**
 * Runs a stage until it succeeds or runs out of attempts. `runSignal` aborting (lease lost, hard
 * stop) ends it at once without retry. A timed-out agent cannot be killed: its promise is left to
 * settle in the background, and `context.signal` tells it to stop.
 */
export async function runStage(
  step: NormalizedStep,
  inputs: Record<string, unknown>,
  base: Omit<StageContext, "attempt" | "signal">,
  runSignal: AbortSignal,
  onRetry: (attempt: number, delayMs: number, error: Error) => void,
  onAttempt: (attempt: number) => void,
): Promise<StageOutcome> {
  const attempts = step.retries + 1;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (runSignal.aborted) return { ok: false, error: runSignal.reason, attempts: attempt - 1 };
    onAttempt(attempt);
    const controller = new AbortController();
    const forward = () => controller.abort(runSignal.reason);
    runSignal.addEventListener("abort", forward, { once: true });
    const timer =
      step.timeoutMs !== undefined
        ? setTimeout(
            () => controller.abort(new StageTimeoutError(step.name, step.timeoutMs as number)),
            step.timeoutMs,
          )
        : undefined;
    try {
      const work = Promise.resolve().then(() =>
        step.agent.call(inputs, { ...base, attempt, signal: controller.signal }),
      );
      const aborted = new Promise<never>((_, reject) => {
        if (controller.signal.aborted) reject(controller.signal.reason);
        controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true });
      });
      work.catch(() => undefined);
      aborted.catch(() => undefined);
      const output = await Promise.race([work, aborted]);
      return { ok: true, output, attempts: attempt };
    } catch (error) {
      lastError = error;
      if (runSignal.aborted || isPermanent(error) || attempt === attempts)
        return { ok: false, error, attempts: attempt };
      const delayMs = Math.min(step.retryDelayMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);
      onRetry(attempt, delayMs, error instanceof Error ? error : new Error(String(error)));
      try {
        await sleep(delayMs, runSignal);
      } catch (abortReason) {
        return { ok: false, error: abortReason, attempts: attempt };
      }
    } finally {
      if (timer) clearTimeout(timer);
      runSignal.removeEventListener("abort", forward);
    }
  }
  return { ok: false, error: lastError, attempts };
}
