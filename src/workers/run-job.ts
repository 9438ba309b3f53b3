/**
 * The engine-neutral side of a worker: one job is one pipeline run, executed (or resumed) under
 * the run's cairn lease. Every end of a job is an outcome the engine adapter acts on; the handler
 * never throws. A redelivered job is a resume: the checkpoints say what is left to do.
 */
import {
  InvalidArgumentError,
  isCairnError,
  LeaseLostError,
  RunLockedError,
  StoreUnavailableError,
} from "../core/errors.js";
import { isValidName } from "../core/ids.js";
import { Pipeline } from "../pipeline/pipeline.js";
import { PipelineAbortedError } from "../pipeline/stage-runner.js";
import type { PipelineOptions } from "../pipeline/types.js";
import { sleepUnlessAborted } from "../util/sleep.js";
import type { ResolvedPipeline, ResolvedPipelines } from "./resolve-pipelines.js";
import type { JobControl, JobHandler, JobOutcome, RunJobData, WorkerEvent } from "./types.js";

/** How the handler runs jobs. */
export interface JobHandlerOptions {
  /** The cairn lease TTL of every run. */
  leaseTtlMs: number;
  /** Receives the worker's events (must not throw). */
  emit: (event: WorkerEvent) => void;
  /** The wait before a job whose store is unreachable goes back to the queue (default 1,000 ms). */
  storeRetryMs?: number;
}

/** After a held lease's expiry: room for the store's clock and the holder's last renewal. */
const LEASE_WAIT_MARGIN_MS = 100;
const DEFAULT_STORE_RETRY_MS = 1_000;

/** The error, or one of its causes, satisfying `test`. */
function findCause(error: unknown, test: (e: unknown) => boolean): unknown {
  for (let e = error, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (test(e)) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

const asError = (value: unknown): Error => (value instanceof Error ? value : new Error(String(value)));

/** Why a job's payload cannot be run, or undefined when it can. */
function payloadProblem(data: unknown): string | undefined {
  if (data === null || typeof data !== "object") return "the job's data is not an object";
  const { pipeline, runId, inputs } = data as Partial<RunJobData>;
  if (typeof pipeline !== "string") return "the job's data has no pipeline name";
  if (!isValidName(runId)) return `the job's run id ${JSON.stringify(runId)} is not a valid run id`;
  if (inputs !== undefined && (inputs === null || typeof inputs !== "object" || Array.isArray(inputs)))
    return "the job's inputs are not an object";
  return undefined;
}

/**
 * The options of a fresh Pipeline for one job: the shared manager (which already applies the
 * source's compression and encryption) and the worker's lease TTL.
 */
function jobPipelineOptions(entry: ResolvedPipeline, leaseTtlMs: number): PipelineOptions {
  const { checkpointCompression: _c, checkpointEncryption: _e, ...options } = entry.options;
  return { ...options, checkpointStore: entry.manager, checkpointEnabled: true, leaseTtlMs };
}

/** Builds the handler the engine adapter calls for every job. */
export function makeJobHandler(pipelines: ResolvedPipelines, options: JobHandlerOptions): JobHandler {
  const { emit } = options;
  return async (data, control) => {
    const problem = payloadProblem(data);
    if (problem !== undefined) {
      const error = new InvalidArgumentError(`job ${control.jobId}: ${problem}`);
      emit({ type: "error", error });
      return { kind: "failed", error };
    }
    const { pipeline: name, runId } = data;
    const entry = pipelines.get(name);
    if (!entry) {
      const known = [...pipelines.keys()].join(", ");
      const error = new InvalidArgumentError(
        `job ${control.jobId} (run ${runId}) names pipeline ${JSON.stringify(name)}, which this worker does not run (it runs: ${known})`,
      );
      emit({ type: "error", error, runId });
      return { kind: "failed", error };
    }
    const startedAt = Date.now();
    emit({ type: "job_started", runId, pipeline: name, jobId: control.jobId, delivery: control.delivery });
    const outcome = await runJob(entry, data, control, options);
    if (outcome.kind === "completed")
      emit({ type: "job_completed", runId, pipeline: name, durationMs: Date.now() - startedAt });
    else if (outcome.kind === "returned") emit({ type: "job_returned", runId, pipeline: name });
    else if (outcome.kind === "fenced")
      emit({ type: "job_fenced", runId, pipeline: name, error: outcome.error });
    else emit({ type: "job_failed", runId, pipeline: name, error: outcome.error });
    return outcome;
  };
}

/** Executes the run until an outcome: completed, stopped, taken over, or failed. */
async function runJob(
  entry: ResolvedPipeline,
  data: RunJobData,
  control: JobControl,
  options: JobHandlerOptions,
): Promise<JobOutcome> {
  const { runId, inputs } = data;
  for (;;) {
    if (control.stop.aborted) return { kind: "returned" };
    // One Pipeline per execution: an instance refuses a second execute() while one runs.
    const pipeline = new Pipeline(jobPipelineOptions(entry, options.leaseTtlMs));
    try {
      const result = await pipeline.execute({
        runId,
        ...(inputs !== undefined ? { inputs } : {}),
        signal: control.stop,
      });
      return result.status === "completed" ? { kind: "completed" } : { kind: "returned" };
    } catch (error) {
      const lost = findCause(error, (e) => e instanceof LeaseLostError);
      if (lost) return { kind: "fenced", error: lost as Error };
      if (error instanceof RunLockedError) {
        // Another runner holds the run: a live one renews and finishes it (then the next execute
        // finds it completed); a dead one's lease lapses and this worker takes the run over.
        options.emit({
          type: "waiting_for_lease",
          runId,
          pipeline: entry.name,
          holder: error.holder,
          expiresAt: error.expiresAt,
        });
        const left = error.expiresAt.getTime() - Date.now();
        const wait = Math.min(Math.max(left, 0), options.leaseTtlMs) + LEASE_WAIT_MARGIN_MS;
        await sleepUnlessAborted(wait, control.stop);
        continue;
      }
      if (error instanceof PipelineAbortedError && control.stop.aborted) return { kind: "returned" };
      if (findCause(error, (e) => e instanceof StoreUnavailableError)) {
        // The run is intact; another delivery retries it once the store is back.
        options.emit({ type: "error", error: asError(error), runId });
        await sleepUnlessAborted(options.storeRetryMs ?? DEFAULT_STORE_RETRY_MS, control.stop);
        return { kind: "returned" };
      }
      return { kind: "failed", error: isCairnError(error) ? error : asError(error) };
    }
  }
}
