/** Checks of `createWorker` and `enqueueRun` options: every problem named at once, before any connection. */
import { InvalidArgumentError } from "../core/errors.js";
import { isValidName } from "../core/ids.js";
import { unknownOptionsProblem } from "../core/options.js";
import {
  type CreateWorkerOptions,
  DEFAULT_QUEUE,
  DEFAULT_WORKER_LEASE_TTL_MS,
  type EnqueueRunOptions,
  type WorkerEngine,
} from "./types.js";

const ENGINES: readonly WorkerEngine[] = ["bullmq", "pg-boss"];
/** Below a second the engines' own liveness checks (BullMQ's stall check, pg-boss's expiry) cannot follow. */
export const MIN_LEASE_TTL_MS = 1_000;

const WORKER_KEYS = [
  "engine",
  "connection",
  "pipelines",
  "concurrency",
  "queue",
  "leaseTtlMs",
  "sharedStore",
  "onEvent",
] as const satisfies readonly (keyof CreateWorkerOptions)[];
const ENQUEUE_KEYS = [
  "engine",
  "connection",
  "pipeline",
  "inputs",
  "runId",
  "queue",
  "leaseTtlMs",
] as const satisfies readonly (keyof EnqueueRunOptions)[];

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** What the engine, connection, queue and lease TTL options have wrong. */
function commonProblems(options: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const { engine, connection, queue, leaseTtlMs } = options;
  if (!ENGINES.includes(engine as WorkerEngine))
    problems.push(`engine must be "bullmq" or "pg-boss", got ${JSON.stringify(engine)}`);
  if (!(typeof connection === "string" && connection.length > 0) && !isPlainObject(connection))
    problems.push("connection must be a connection URL or an options object");
  if (queue !== undefined && !isValidName(queue))
    problems.push(
      `queue ${JSON.stringify(queue)} is not a valid queue name (letters, digits, '.', '_' and '-', starting with a letter or digit)`,
    );
  if (
    leaseTtlMs !== undefined &&
    (!Number.isInteger(leaseTtlMs) || (leaseTtlMs as number) < MIN_LEASE_TTL_MS)
  )
    problems.push(
      `leaseTtlMs must be an integer ≥ ${MIN_LEASE_TTL_MS} (milliseconds), got ${String(leaseTtlMs)}`,
    );
  return problems;
}

const fail = (subject: string, problems: string[]) => {
  if (problems.length > 0) throw new InvalidArgumentError(`${subject}: ${problems.join("; ")}`);
};

/** The checked options of `createWorker`, with defaults. */
export function checkWorkerOptions(options: CreateWorkerOptions) {
  if (!isPlainObject(options)) throw new InvalidArgumentError("createWorker() options must be an object");
  const problems = commonProblems(options);
  const unknown = unknownOptionsProblem("createWorker()", options, WORKER_KEYS);
  if (unknown) problems.push(unknown);
  const { pipelines, concurrency, sharedStore, onEvent } = options;
  if (!isPlainObject(pipelines) || Object.keys(pipelines).length === 0)
    problems.push("pipelines must map at least one pipeline name to a Pipeline or a pipeline file");
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1))
    problems.push(`concurrency must be an integer ≥ 1, got ${String(concurrency)}`);
  if (sharedStore !== undefined && typeof sharedStore !== "boolean")
    problems.push("sharedStore must be a boolean");
  if (onEvent !== undefined && typeof onEvent !== "function") problems.push("onEvent must be a function");
  fail("createWorker()", problems);
  return {
    ...options,
    concurrency: concurrency ?? 1,
    queue: options.queue ?? DEFAULT_QUEUE,
    leaseTtlMs: options.leaseTtlMs ?? DEFAULT_WORKER_LEASE_TTL_MS,
    sharedStore: sharedStore ?? false,
  };
}

/** The checked options of `enqueueRun`, with defaults (the run id is drawn by the caller). */
export function checkEnqueueOptions(options: EnqueueRunOptions) {
  if (!isPlainObject(options)) throw new InvalidArgumentError("enqueueRun() options must be an object");
  const problems = commonProblems(options);
  const unknown = unknownOptionsProblem("enqueueRun()", options, ENQUEUE_KEYS);
  if (unknown) problems.push(unknown);
  const { pipeline, inputs, runId } = options;
  if (!isValidName(pipeline))
    problems.push(`pipeline must be the name of a pipeline the workers run, got ${JSON.stringify(pipeline)}`);
  if (inputs !== undefined && !isPlainObject(inputs)) problems.push("inputs must be an object");
  if (runId !== undefined && !isValidName(runId))
    problems.push(
      `runId ${JSON.stringify(runId)} is not a valid run id (letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128)`,
    );
  fail("enqueueRun()", problems);
  return {
    ...options,
    queue: options.queue ?? DEFAULT_QUEUE,
    leaseTtlMs: options.leaseTtlMs ?? DEFAULT_WORKER_LEASE_TTL_MS,
  };
}
