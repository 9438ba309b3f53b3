/**
 * The types of `cairn-pipelines/workers`: pipeline runs as jobs of a queue engine (BullMQ or
 * pg-boss). The engine distributes runs and redelivers the run of a dead worker; cairn's
 * checkpoints and leases turn that redelivery into a resume. One job per run: its id is the run id.
 */
import type { Pipeline } from "../pipeline/pipeline.js";

/** The queue engines cairn runs on. */
export type WorkerEngine = "bullmq" | "pg-boss";

/**
 * Where the engine keeps its queue: for BullMQ a Redis URL or ioredis options, for pg-boss a
 * PostgreSQL connection string or `{ connectionString, schema }`.
 */
export type WorkerConnection = string | Readonly<Record<string, unknown>>;

/** A pipeline a worker can run: an instance, or the path of a pipeline file (YAML or JSON). */
export type PipelineSource = Pipeline | string;

/** What a worker reports as it handles jobs (for logs; a throwing listener is ignored). */
export type WorkerEvent =
  | { type: "job_started"; runId: string; pipeline: string; jobId: string; delivery: number }
  | {
      type: "waiting_for_lease";
      runId: string;
      pipeline: string;
      holder: string;
      expiresAt: Date;
    }
  | { type: "job_completed"; runId: string; pipeline: string; durationMs: number }
  /** Drained by `close()`: the running stages finished and checkpointed; the job is back in the queue. */
  | { type: "job_returned"; runId: string; pipeline: string }
  /** The run's lease was taken over (this worker was paused or cut off): the job is left to its new holder. */
  | { type: "job_fenced"; runId: string; pipeline: string; error: Error }
  /** The pipeline failed for good (its stages' own retries exhausted): the job fails without a retry. */
  | { type: "job_failed"; runId: string; pipeline: string; error: Error }
  /** An error of the engine or of a job outside any run (a bad payload, an unknown pipeline). */
  | { type: "error"; error: Error; runId?: string };

/** Options of `createWorker`. */
export interface CreateWorkerOptions {
  engine: WorkerEngine;
  connection: WorkerConnection;
  /** The pipelines this worker runs, by the name jobs give (a file's pipeline is also known by its `name`). */
  pipelines: Readonly<Record<string, PipelineSource>>;
  /** Runs executed at once by this worker (integer ≥ 1, default 1). */
  concurrency?: number;
  /** The queue's name (default `cairn-runs`). */
  queue?: string;
  /**
   * The cairn lease TTL of the runs this worker executes (default 30,000 ms). It also sets the
   * engine's own liveness settings (BullMQ `lockDuration`, pg-boss `expireInSeconds`) so the
   * two agree: see the README's "Workers" section.
   */
  leaseTtlMs?: number;
  /**
   * Accept a checkpoint store that is not shared between machines (file, sqlite, memory):
   * say so only when every worker runs on this machine, or the folder is a shared mount.
   */
  sharedStore?: boolean;
  /** Called for every worker event. */
  onEvent?: (event: WorkerEvent) => void;
}

/** A running worker. */
export interface CairnWorker {
  readonly engine: WorkerEngine;
  readonly queue: string;
  /**
   * Drains: takes no new job, lets the running stages finish and checkpoint (as `pause()`
   * does), returns their jobs to the queue for other workers, then closes the connections.
   */
  close(): Promise<void>;
}

/** Options of `enqueueRun`. */
export interface EnqueueRunOptions {
  engine: WorkerEngine;
  connection: WorkerConnection;
  /** The pipeline's name, as the workers know it. */
  pipeline: string;
  /** The run's inputs. */
  inputs?: Record<string, unknown>;
  /** The run id, which is also the job id (default: a new run id): enqueueing it twice makes one job. */
  runId?: string;
  /** The queue's name (default `cairn-runs`). */
  queue?: string;
  /** The lease TTL the workers use (default 30,000 ms): pg-boss stores the job's expiry from it. */
  leaseTtlMs?: number;
}

/** What `enqueueRun` did. */
export interface EnqueuedRun {
  runId: string;
  /** The engine's job id: the run id for BullMQ; for pg-boss the UUID derived from it. */
  jobId: string;
  /** False when a job for this run id was already in the queue (nothing was added). */
  created: boolean;
}

// ---- Between the engine-neutral job runner and an engine adapter (not exported from the entry) ----

/** A job's payload, as stored in the queue. */
export interface RunJobData {
  pipeline: string;
  runId: string;
  inputs?: Record<string, unknown>;
}

/** How a job ended, which tells the adapter what to do with it in its engine. */
export type JobOutcome =
  /** The run completed (now or earlier): complete the job. */
  | { kind: "completed" }
  /** Stopped at a checkpoint by a drain or a deadline: put the job back in the queue at once. */
  | { kind: "returned" }
  /** The lease was taken over: leave the job to whoever holds it now; never complete it. */
  | { kind: "fenced"; error: Error }
  /** The pipeline failed for good: fail the job without a retry. */
  | { kind: "failed"; error: Error };

/** What an adapter gives the runner for one job. */
export interface JobControl {
  /** The engine's job id. */
  jobId: string;
  /** 1 on the first delivery, 2 after one redelivery... */
  delivery: number;
  /** Aborted to stop the run at its next checkpoint (drain, or the end of a pg-boss slice). */
  stop: AbortSignal;
}

/** Runs one job's pipeline run; never throws (every end is an outcome). */
export type JobHandler = (data: RunJobData, control: JobControl) => Promise<JobOutcome>;

/** Settings an adapter derives its engine's liveness options from. */
export interface AdapterSettings {
  connection: WorkerConnection;
  queue: string;
  concurrency: number;
  leaseTtlMs: number;
  /** Engine errors (a lost connection, a lock it could not renew). */
  onError: (error: Error) => void;
}

/** One engine's side of a worker. */
export interface EngineWorker {
  /** Stops taking jobs, aborts every running job's `stop`, waits for their outcomes, closes. */
  close(): Promise<void>;
}

/** What each engine module (`bullmq.ts`, `pg-boss.ts`) exports. */
export interface EngineAdapter {
  startWorker(settings: AdapterSettings, handler: JobHandler): Promise<EngineWorker>;
  enqueue(
    settings: Omit<AdapterSettings, "concurrency" | "onError">,
    data: RunJobData,
  ): Promise<{ jobId: string; created: boolean }>;
}

/** The queue's name when none is given. */
export const DEFAULT_QUEUE = "cairn-runs";
/** The lease TTL when none is given (also the pipeline's own default). */
export const DEFAULT_WORKER_LEASE_TTL_MS = 30_000;
