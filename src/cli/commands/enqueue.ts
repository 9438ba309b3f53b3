/**
 * `cairn enqueue`: puts one run of a pipeline file in a worker queue (BullMQ or pg-boss). The
 * file is read only for its pipeline's name, so it can be enqueued from a machine that lacks the
 * pipeline's agents; the workers load the pipeline itself. The job id is the run id: enqueueing a
 * run that is already queued adds nothing and says so (exit 0 either way).
 */
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import type { Command } from "commander";
import { parse as parseYaml } from "yaml";
import { assertValidName } from "../../core/ids.js";
import { readPipelineDefinition } from "../../pipeline/from-file.js";
import { InvalidPipelineError } from "../../pipeline/validate.js";
import { DEFAULT_QUEUE, type EnqueuedRun } from "../../workers/types.js";
import { ExitCode, UsageError } from "../exit-codes.js";
import { printJson, printText, reportError } from "../output.js";
import { examples } from "../runs.js";
import {
  addEngineOptions,
  connectionLabel,
  type EngineFlags,
  engineOptions,
  unreachableAsExit,
} from "../worker-options.js";

/** How long `enqueue` waits for the queue's server. */
const ENQUEUE_TIMEOUT_MS = 30_000;

interface EnqueueFlags extends EngineFlags {
  inputs?: string;
  runId?: string;
}

/** The name of the pipeline a file defines (the file is parsed, its agents are not loaded). */
export async function pipelineNameOf(path: string): Promise<string> {
  const definition = await readPipelineDefinition(path);
  if (definition.name === undefined) throw new InvalidPipelineError([`${path} has no name`]);
  return assertValidName("pipeline name", definition.name);
}

/** Reads the run's inputs: a JSON (or YAML) file holding an object, or stdin for `-`. */
async function readInputs(path: string): Promise<Record<string, unknown>> {
  const label = path === "-" ? "--inputs - (stdin)" : `--inputs ${path}`;
  const text = await (path === "-" ? readStdin() : readFile(path, "utf8")).catch((error: Error) => {
    throw new UsageError(`${label}: ${error.message}`);
  });
  let parsed: unknown;
  try {
    // YAML reads JSON too; a .json file is held to JSON.
    parsed = extname(path) === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new UsageError(`${label} does not parse: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw new UsageError(`${label} must hold an object`);
  return parsed as Record<string, unknown>;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** What `enqueue` prints without `--json`. */
export function enqueuedText(run: EnqueuedRun, pipeline: string, queue: string): string {
  const job = run.jobId === run.runId ? "" : ` (job ${run.jobId})`;
  return run.created
    ? `Queued run ${run.runId} of ${pipeline} on ${queue}${job}`
    : `Run ${run.runId} is already queued on ${queue}${job}: nothing was added ` +
        "(the queue holds a job for this run id: waiting, running, or finished recently)";
}

/** Registers `cairn enqueue`. */
export function registerEnqueue(program: Command): void {
  const command = program
    .command("enqueue <pipeline-file>")
    .summary("Queue a run of a pipeline file for the workers (cairn worker)")
    .description(
      "Adds one run of the pipeline to a BullMQ or pg-boss queue, where a `cairn worker` running the " +
        "same pipeline file picks it up. The file is read only for the pipeline's name (its agents " +
        "are not loaded). The job id is the run id: enqueueing a run id that is already queued adds " +
        "nothing and prints that it is already queued. Prints the run id (with --json: runId, jobId, " +
        "created, pipeline, queue).",
    )
    .option("--inputs <file>", "JSON (or YAML) file with the run's inputs; - reads them from stdin")
    .option("--run-id <id>", "the run's id, which is also the job's (default: a new run id)");
  addEngineOptions(command, "print the result as JSON").addHelpText(
    "after",
    `
Exit codes:
  0  queued, or already queued (nothing added)
  2  bad flags, no connection for pg-boss, an invalid pipeline name or run id, unreadable inputs
  3  the pipeline file does not exist
  5  the engine's package (bullmq, pg-boss) is not installed, or its server is unreachable
     (or does not answer within 30 s)
${examples(
  "cairn enqueue pipeline.yaml --engine bullmq --inputs inputs.json",
  "cairn enqueue pipeline.yaml --engine bullmq --redis-url redis://queue:6379 --run-id nightly-2024-01-01",
  'echo \'{"day":"2024-01-01"}\' | cairn enqueue pipeline.yaml --engine pg-boss --connection-string postgres://db/app --inputs - --json',
)}`,
  );
  command.action(async (file: string, flags: EnqueueFlags) => {
    const options = engineOptions(flags);
    const { connection } = options;
    if (flags.runId !== undefined) assertValidName("--run-id", flags.runId);
    const pipeline = await pipelineNameOf(file);
    const inputs = flags.inputs !== undefined ? await readInputs(flags.inputs) : undefined;
    // Loaded here, not at the top: the engines' packages are loaded only by the commands using them.
    const { enqueueRun } = await import("../../workers/index.js");
    const enqueuing = enqueueRun({
      ...options,
      pipeline,
      ...(inputs !== undefined ? { inputs } : {}),
      ...(flags.runId !== undefined ? { runId: flags.runId } : {}),
    }).catch(unreachableAsExit);
    // A Redis that does not answer keeps BullMQ's client retrying for ever: a one-shot command
    // gives up and exits (its reconnect timers would otherwise keep the process alive).
    let timer: NodeJS.Timeout | undefined;
    const run = await Promise.race([
      enqueuing,
      new Promise<undefined>((done) => {
        timer = setTimeout(() => done(undefined), ENQUEUE_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    if (run === undefined) {
      reportError(
        new Error(
          `the queue's server did not answer within ${ENQUEUE_TIMEOUT_MS / 1000} s (${connectionLabel(connection)})`,
        ),
      );
      process.exit(ExitCode.StoreUnavailable);
    }
    const queue = options.queue ?? DEFAULT_QUEUE;
    if (flags.json) printJson({ ...run, pipeline, queue, engine: flags.engine });
    else printText(`${enqueuedText(run, pipeline, queue)} (${flags.engine}, ${connectionLabel(connection)})`);
  });
}
