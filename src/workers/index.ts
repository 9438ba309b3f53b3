/**
 * `cairn-pipelines/workers`: pipeline runs as jobs of a queue engine, BullMQ (Redis) or pg-boss
 * (PostgreSQL). The engine distributes runs and redelivers the run of a dead worker; cairn's
 * checkpoints and leases make the redelivery a resume. Neither engine's package is loaded until a
 * worker or an enqueue uses it.
 */
import { newRunId } from "../core/ids.js";
import { checkEnqueueOptions, checkWorkerOptions } from "./options.js";
import { closeResolved, resolvePipelines } from "./resolve-pipelines.js";
import { makeJobHandler } from "./run-job.js";
import type {
  CairnWorker,
  CreateWorkerOptions,
  EngineAdapter,
  EnqueuedRun,
  EnqueueRunOptions,
  WorkerEngine,
  WorkerEvent,
} from "./types.js";

export { StoreNotSharedError } from "../core/errors.js";
export type {
  CairnWorker,
  CreateWorkerOptions,
  EnqueuedRun,
  EnqueueRunOptions,
  PipelineSource,
  WorkerConnection,
  WorkerEngine,
  WorkerEvent,
} from "./types.js";
export { DEFAULT_QUEUE, DEFAULT_WORKER_LEASE_TTL_MS } from "./types.js";

/** The engine's adapter module, imported only when that engine is used. */
async function loadAdapter(engine: WorkerEngine): Promise<EngineAdapter> {
  const module = engine === "bullmq" ? await import("./bullmq.js") : await import("./pg-boss.js");
  return module.adapter;
}

/** A listener that cannot break the worker: a throw is reported as a warning. */
function safeListener(onEvent: ((event: WorkerEvent) => void) | undefined) {
  return (event: WorkerEvent) => {
    if (!onEvent) return;
    try {
      onEvent(event);
    } catch (error) {
      process.emitWarning(
        `cairn: worker onEvent listener threw on ${event.type}: ${(error as Error).message}`,
      );
    }
  };
}

/**
 * Starts a worker that runs the pipelines' runs from the queue, `concurrency` at a time, and
 * resumes the runs other workers left behind. Refuses pipelines without checkpoints, and stores
 * other machines cannot reach unless `sharedStore: true`.
 */
export async function createWorker(options: CreateWorkerOptions): Promise<CairnWorker> {
  const checked = checkWorkerOptions(options);
  const { engine, queue, concurrency, leaseTtlMs, connection } = checked;
  const emit = safeListener(checked.onEvent);
  const resolved = await resolvePipelines(checked.pipelines, { sharedStore: checked.sharedStore });
  try {
    const adapter = await loadAdapter(engine);
    const handler = makeJobHandler(resolved, { leaseTtlMs, emit });
    const engineWorker = await adapter.startWorker(
      { connection, queue, concurrency, leaseTtlMs, onError: (error) => emit({ type: "error", error }) },
      handler,
    );
    let closing: Promise<void> | undefined;
    return {
      engine,
      queue,
      close() {
        closing ??= (async () => {
          try {
            await engineWorker.close();
          } finally {
            await closeResolved(resolved);
          }
        })();
        return closing;
      },
    };
  } catch (error) {
    await closeResolved(resolved);
    throw error;
  }
}

/**
 * Puts a run in the queue for the workers: one job per run id, so enqueueing the same run twice
 * adds nothing (`created: false`).
 */
export async function enqueueRun(options: EnqueueRunOptions): Promise<EnqueuedRun> {
  const checked = checkEnqueueOptions(options);
  const { engine, connection, queue, leaseTtlMs, pipeline, inputs } = checked;
  const runId = checked.runId ?? newRunId(pipeline);
  const adapter = await loadAdapter(engine);
  const { jobId, created } = await adapter.enqueue(
    { connection, queue, leaseTtlMs },
    { pipeline, runId, ...(inputs !== undefined ? { inputs } : {}) },
  );
  return { runId, jobId, created };
}
