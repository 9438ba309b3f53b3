/**
 * `cairn worker`: runs the runs of a BullMQ or pg-boss queue with the pipelines of the files
 * given, printing one line per worker event (JSON lines with `--json`). The queue distributes the
 * runs and redelivers a dead worker's; cairn's checkpoints and leases make that a resume. The
 * first SIGINT/SIGTERM drains: the running stages finish and checkpoint, their jobs go back to
 * the queue, and the command exits 0; a second signal exits at once with 130 (the runs resume
 * from their last checkpoint once their lease expires).
 */
import { resolve } from "node:path";
import { type Command, InvalidArgumentError as CommanderArgumentError } from "commander";
import { ErrorCode, isCairnError } from "../../index.js";
import type { WorkerEvent } from "../../workers/types.js";
import { DEFAULT_WORKER_LEASE_TTL_MS } from "../../workers/types.js";
import { CommandExit, ExitCode, UsageError } from "../exit-codes.js";
import { formatTime, printText } from "../output.js";
import { examples } from "../runs.js";
import { stopOnSignals } from "../stop-signals.js";
import {
  addEngineOptions,
  connectionLabel,
  type EngineFlags,
  engineOptions,
  unreachableAsExit,
} from "../worker-options.js";
import { pipelineNameOf } from "./enqueue.js";

/** How long a worker stopped while connecting waits for its connection before exiting anyway. */
const START_GRACE_MS = 2_000;

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms).unref());

interface WorkerFlags extends EngineFlags {
  concurrency?: number;
  sharedStore?: boolean;
}

function parseConcurrency(value: string): number {
  if (!/^\d{1,4}$/.test(value) || Number(value) < 1 || Number(value) > 1000)
    throw new CommanderArgumentError("expected a whole number from 1 to 1000");
  return Number(value);
}

/** An error as JSON: its message, and its code when it has one. */
function errorJson(error: Error): { message: string; code: string | null } {
  const code = (error as { code?: unknown }).code;
  return { message: error.message, code: typeof code === "string" ? code : null };
}

/** A line of `--json` output: the event's fields, the time, errors as `{ message, code }`. */
export function eventJson(event: WorkerEvent | LifecycleEvent, at: Date = new Date()): string {
  const fields: Record<string, unknown> = { ...event, at: at.toISOString() };
  if ("error" in event) fields.error = errorJson(event.error);
  if ("expiresAt" in event) fields.expiresAt = event.expiresAt.toISOString();
  return JSON.stringify(fields);
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const withCode = (error: Error) => {
  const { message, code } = errorJson(error);
  return code ? `${message} (${code})` : message;
};

/** A readable line: time, what happened, the run, details. */
export function eventLine(event: WorkerEvent | LifecycleEvent, at: Date = new Date()): string {
  const line = (what: string, text: string) => `${formatTime(at)}  ${what.padEnd(9)}  ${text}`;
  switch (event.type) {
    case "job_started":
      return line(
        "started",
        `${event.runId}  (${event.pipeline}${event.delivery > 1 ? `, delivery ${event.delivery}: resuming` : ""})`,
      );
    case "waiting_for_lease":
      return line(
        "waiting",
        `${event.runId}  another runner (${event.holder}) holds its lease until ${formatTime(event.expiresAt)}`,
      );
    case "job_completed":
      return line("completed", `${event.runId}  in ${seconds(event.durationMs)}`);
    case "job_returned":
      return line("returned", `${event.runId}  stopped at a checkpoint, back in the queue`);
    case "job_fenced":
      return line("fenced", `${event.runId}  left to its new lease holder: ${withCode(event.error)}`);
    case "job_failed":
      return line("failed", `${event.runId}  ${withCode(event.error)}`);
    case "error":
      return line("error", `${event.runId ? `${event.runId}  ` : ""}${withCode(event.error)}`);
    case "worker_ready":
      return line(
        "ready",
        `${event.engine} queue ${event.queue} at ${event.connection}: ${event.pipelines.join(", ")} ` +
          `(concurrency ${event.concurrency}, lease ${seconds(event.leaseTtlMs)}); Ctrl+C drains`,
      );
    case "worker_draining":
      return line(
        "draining",
        "running stages finish and checkpoint, their jobs go back to the queue (signal again to exit now)",
      );
    case "worker_stopped":
      return line(
        "stopped",
        event.drained ? "drained" : "before the worker started (its queue's server had not answered)",
      );
  }
}

/** What the command itself reports around the worker's own events. */
export type LifecycleEvent =
  | {
      type: "worker_ready";
      engine: string;
      queue: string;
      connection: string;
      pipelines: string[];
      concurrency: number;
      leaseTtlMs: number;
    }
  | { type: "worker_draining" }
  /** `drained: false`: stopped while still connecting, before it took any job. */
  | { type: "worker_stopped"; drained: boolean };

/** The pipelines of the files, by name; two files naming the same pipeline are a usage error. */
async function pipelinesOf(files: readonly string[]): Promise<Record<string, string>> {
  const pipelines: Record<string, string> = {};
  for (const file of files) {
    const name = await pipelineNameOf(file);
    const seen = pipelines[name];
    if (seen !== undefined)
      throw new UsageError(
        `${seen} and ${file} both define pipeline ${name}: a worker runs one of each name`,
      );
    pipelines[name] = resolve(file);
  }
  return pipelines;
}

/** Registers `cairn worker`. */
export function registerWorker(program: Command): void {
  const command = program
    .command("worker <pipeline-file...>")
    .summary("Run queued runs of pipeline files (BullMQ or pg-boss), until stopped")
    .description(
      "Takes runs from a BullMQ (Redis) or pg-boss (PostgreSQL) queue, put there by `cairn enqueue`, " +
        "and executes them with the pipelines of the files given (a job names its pipeline by the " +
        "file's `name`). Start as many workers as you like, on any machine: the engine distributes " +
        "the runs and redelivers the run of a worker that died, and the next worker resumes it from " +
        "its last checkpoint. The checkpoint store is each file's own, and must be shared by the " +
        "workers (postgres, redis, s3, azure): a file, sqlite or memory store is refused unless " +
        "--shared-store says that every worker sees the same one. Prints one line per event (with " +
        "--json, one JSON object per line). SIGINT/SIGTERM drain: the running stages finish and " +
        "checkpoint, their jobs go back to the queue for the other workers, and the worker exits 0; " +
        "a second signal exits at once.",
    )
    .option("--concurrency <n>", "runs executed at once by this worker (default 1)", parseConcurrency)
    .option(
      "--shared-store",
      "accept a file, sqlite or memory checkpoint store: every worker runs on this machine, or the folder is a shared mount",
    );
  addEngineOptions(command, "print each event as one JSON line").addHelpText(
    "after",
    `
Exit codes:
  0  drained after SIGINT/SIGTERM: the running stages checkpointed, their jobs are back in the queue
  1  any other failure (e.g. the engine failed while starting)
  2  bad flags, no connection for pg-boss, an invalid pipeline file, two files with one name,
     a file without checkpoints, or a checkpoint store that is not shared (without --shared-store)
  3  a pipeline file does not exist
  5  the engine's package (bullmq, pg-boss) or a store's driver is not installed, or a server is
     unreachable (also: stopped by a signal while its queue's server had not answered yet)
  130 a second signal: exited at once; the runs resume from their last checkpoint when their lease expires
${examples(
  "cairn worker pipeline.yaml --engine bullmq",
  "cairn worker etl.yaml report.yaml --engine bullmq --redis-url redis://queue:6379 --concurrency 4",
  "cairn worker pipeline.yaml --engine pg-boss --connection-string postgres://db/app --lease-ttl 60000 --json",
)}`,
  );
  command.action(async (files: string[], flags: WorkerFlags) => {
    const options = engineOptions(flags);
    const { connection } = options;
    const pipelines = await pipelinesOf(files);
    const print = (event: WorkerEvent | LifecycleEvent) =>
      printText(flags.json ? eventJson(event) : eventLine(event));
    // Loaded here, not at the top: the engines' packages are loaded only by the commands using them.
    const { createWorker } = await import("../../workers/index.js");
    const stop = new AbortController();
    const undo = stopOnSignals(stop);
    const stopped = new Promise<undefined>((done) => {
      if (stop.signal.aborted) done(undefined);
      else stop.signal.addEventListener("abort", () => done(undefined), { once: true });
    });
    try {
      const starting = createWorker({
        ...options,
        pipelines,
        ...(flags.concurrency !== undefined ? { concurrency: flags.concurrency } : {}),
        ...(flags.sharedStore ? { sharedStore: true } : {}),
        onEvent: print,
      }).catch((error: unknown) => {
        // The library's message speaks of the option; on the command line it is a flag.
        if (isCairnError(error, ErrorCode.StoreNotShared))
          throw new CommandExit(
            ExitCode.Usage,
            `${error.message.replace(/pass sharedStore: true/, "pass --shared-store")} (${error.code})`,
          );
        return unreachableAsExit(error);
      });
      // A signal while the worker is still connecting (a queue server that does not answer keeps
      // it there) must stop it too: it gets a moment to come up and drain as usual, else it exits.
      const worker =
        (await Promise.race([starting, stopped])) ??
        (await Promise.race([starting, sleep(START_GRACE_MS).then(() => undefined)]));
      if (worker === undefined) {
        print({ type: "worker_stopped", drained: false });
        // Its queue's server never answered: as unavailable as a refused connection.
        process.exit(ExitCode.StoreUnavailable);
      }
      print({
        type: "worker_ready",
        engine: worker.engine,
        queue: worker.queue,
        connection: connectionLabel(connection),
        pipelines: Object.keys(pipelines),
        concurrency: flags.concurrency ?? 1,
        leaseTtlMs: options.leaseTtlMs ?? DEFAULT_WORKER_LEASE_TTL_MS,
      });
      await stopped;
      print({ type: "worker_draining" });
      await worker.close();
      print({ type: "worker_stopped", drained: true });
    } finally {
      undo();
    }
  });
}
