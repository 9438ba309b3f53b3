/**
 * `cairn run`: executes a pipeline file with live progress. The first SIGINT/SIGTERM stops the
 * run after its current stage, with a checkpoint; a second one releases the run's lease and exits.
 */
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import type { Command } from "commander";
import { parse as parseYaml } from "yaml";
import { commandLine } from "../../debug/recommendations.js";
import {
  MigrationError,
  Pipeline,
  type PipelineEvent,
  type PipelineResults,
  StageFailedError,
} from "../../index.js";
import { loadPipelineOptions } from "../../pipeline/from-file.js";
import { CommandExit, ExitCode, UsageError } from "../exit-codes.js";
import { printJson, printText, warn } from "../output.js";
import { planEstimate, planEstimateText } from "../plan-estimate.js";
import { examples } from "../runs.js";
import { storeArgs } from "../store-args.js";
import {
  addCompressionOption,
  addStoreOptions,
  atRestOptions,
  createManager,
  type StoreFlags,
  storeFlagsGiven,
} from "../store-options.js";
import { ProgressView } from "./run-progress.js";

interface RunFlags extends StoreFlags {
  inputs?: string;
  runId?: string;
  resume: boolean;
  dryRun?: boolean;
}

async function readInputs(path: string): Promise<Record<string, unknown>> {
  const text = await readFile(path, "utf8").catch((error: Error) => {
    throw new UsageError(`--inputs ${path}: ${error.message}`);
  });
  let parsed: unknown;
  try {
    parsed = extname(path) === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new UsageError(`--inputs ${path} does not parse: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new UsageError(`--inputs ${path} must hold an object`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * The command that resumes a run, shown when it fails or stops. It repeats the store flags the
 * user gave (all of them, quoted); without any, the pipeline file names the store again.
 */
function resumeCommand(file: string, pipelineId: string, flags: StoreFlags, command: Command): string {
  const store = storeFlagsGiven(flags) ? storeArgs(command, ["inputs", "runId", "resume", "dryRun"]) : [];
  return commandLine("cairn", "run", file, "--run-id", pipelineId, ...store);
}

/** Where `cairn run` takes its store from, for the line it prints: flags, CAIRN_STORE, or the file. */
function storeSource(
  flags: StoreFlags,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): { fromFile: boolean; label: string } {
  if (storeFlagsGiven(flags)) return { fromFile: false, label: "the store options" };
  if (env.CAIRN_STORE) return { fromFile: false, label: "CAIRN_STORE" };
  return { fromFile: true, label: file };
}

/** How long a second Ctrl+C waits for the store to release the lease before exiting anyway. */
const RELEASE_WAIT_MS = 2_000;

/**
 * Exits with 130 after releasing the run's lease, so the next `cairn run` resumes at once rather
 * than being refused until the lease expires. Best effort and brief: a store that does not
 * answer must not hold up an exit the user asked for twice (a third signal exits at once).
 */
async function exitReleasingLease(pipeline: Pipeline): Promise<never> {
  let timer: NodeJS.Timeout | undefined;
  const released = pipeline.abandon().then(
    () => true,
    () => false,
  );
  const ok = await Promise.race([
    released,
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), RELEASE_WAIT_MS);
    }),
  ]);
  clearTimeout(timer);
  if (!ok) warn("could not release the run's lease: the next run waits for it to expire");
  process.exit(ExitCode.Interrupted);
}

/** Registers `cairn run`. */
export function registerRun(program: Command): void {
  const command = program
    .command("run <pipeline-file>")
    .summary("Run a pipeline file, resuming where it stopped")
    .description(
      "Run a pipeline defined in YAML or JSON. With checkpoints on, an unfinished run of the same pipeline " +
        "is resumed from its last valid checkpoint; completed stages are skipped. The store: the store " +
        "options, else CAIRN_STORE, else the pipeline file's checkpoint section (which may leave " +
        "checkpointing off: a warning says so).",
    )
    .option("--inputs <file>", "YAML or JSON file with the run's inputs")
    .option("--run-id <id>", "execute or resume this run id")
    .option("--no-resume", "start a fresh run even if an unfinished one exists")
    .option("--dry-run", "show the plan without running agents or writing checkpoints")
    .addHelpText(
      "after",
      examples(
        "cairn run examples/co2e/pipeline.yaml",
        "cairn run pipeline.yaml --inputs inputs.json --store sqlite:./cairn.db",
        "cairn run pipeline.yaml --run-id etl_pipeline_20240101T000000000Z_abc234",
      ),
    );
  addStoreOptions(addCompressionOption(command)).action(
    async (file: string, flags: RunFlags, self: Command) => {
      const inputs = flags.inputs !== undefined ? await readInputs(flags.inputs) : undefined;
      if (flags.runId !== undefined && flags.resume === false) {
        throw new UsageError(
          "--run-id and --no-resume cannot be combined: a named run either resumes or is new",
        );
      }
      // One rule for every command: store flags, else CAIRN_STORE; only without either does the
      // pipeline file's own checkpoint section choose (and may leave checkpointing off).
      const source = storeSource(flags, file);
      const view = new ProgressView(flags.json ? process.stderr : process.stdout);
      // --key-file and --compression replace the file's settings (its key file is then not read).
      const atRest = await atRestOptions(flags);
      const fileOptions = await loadPipelineOptions(file, {
        ...(atRest.encryption ? { checkpointEncryption: atRest.encryption } : {}),
        ...(atRest.compression ? { checkpointCompression: atRest.compression } : {}),
        onEvent: (event: PipelineEvent) => view.update(event, pipeline),
      });
      const { checkpointCompression, checkpointEncryption, ...rest } = fileOptions;
      // With a store from the flags or CAIRN_STORE, the file's at-rest settings still apply: a run
      // the file says to encrypt is never written in the clear because the store came from elsewhere.
      const manager = source.fromFile
        ? undefined
        : await createManager(flags, process.env, false, {
            ...(checkpointCompression !== undefined ? { compression: checkpointCompression } : {}),
            ...(checkpointEncryption !== undefined ? { encryption: checkpointEncryption } : {}),
          });
      const options = manager ? { ...rest, checkpointEnabled: true, checkpointStore: manager } : fileOptions;
      const pipeline = new Pipeline(options);
      const used = pipeline.checkpointManager;
      if (used) view.note(`Store: ${(await used.getStore()).location} (from ${source.label})`);
      else
        warn(
          `checkpointing is off: ${file} does not enable it and neither --store nor CAIRN_STORE is set, ` +
            "so this run cannot be resumed (pass --store <url>, set CAIRN_STORE, or enable checkpoint: in the file)",
        );
      const execute = { ...(inputs ? { inputs } : {}), ...(flags.runId ? { runId: flags.runId } : {}) };
      if (flags.dryRun) {
        const plan = await pipeline.execute({ ...execute, resume: flags.resume, dryRun: true });
        const estimate = await planEstimate(used, plan);
        if (flags.json) printJson(estimate ? { ...plan, estimate } : plan);
        else {
          view.printPlan(plan);
          if (estimate) printText(planEstimateText(estimate));
        }
        await (manager ?? pipeline).close();
        return;
      }
      const stop = new AbortController();
      let signals = 0;
      // Set by a second signal: the process ends there, whatever the execution does meanwhile.
      let exiting: Promise<never> | undefined;
      const onSignal = (signal: NodeJS.Signals) => {
        signals++;
        if (signals > 2) process.exit(ExitCode.Interrupted);
        if (signals > 1) {
          view.note(`${signal} again: exiting now; the run resumes from its last checkpoint`);
          exiting = exitReleasingLease(pipeline);
          return;
        }
        view.note(`${signal}: stopping after the current stage (press Ctrl+C again to exit now)`);
        stop.abort(new Error(signal));
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      let results: PipelineResults;
      try {
        results = await pipeline.execute({ ...execute, resume: flags.resume, signal: stop.signal });
      } catch (error) {
        if (exiting) await exiting; // the abandoned execution's own error is not the outcome
        view.finish();
        const id = pipeline.pipelineId;
        if (error instanceof StageFailedError) {
          view.note(
            `Stage ${error.stageName} failed: ${(error.cause as Error | undefined)?.message ?? error.message}`,
          );
          if (pipeline.checkpointEnabled)
            view.note(`Resume with: ${resumeCommand(file, error.pipelineId, flags, self)}`);
          throw new CommandExit(ExitCode.Failure, error.message);
        }
        if (error instanceof MigrationError && id && pipeline.checkpointEnabled) {
          // Thrown before anything was written: the run resumes as soon as the migration is fixed.
          view.note(`Fix the migration, then resume with: ${resumeCommand(file, id, flags, self)}`);
          throw error;
        }
        if ((error as { code?: string }).code === "CAIRN_ABORTED" && id) {
          view.note(`Stopped. Resume with: ${resumeCommand(file, id, flags, self)}`);
          throw new CommandExit(ExitCode.Interrupted, ""); // the resume hint above says it all
        }
        throw error;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        await (manager ?? pipeline).close();
      }
      view.finish();
      if (flags.json) printJson(results);
      else view.printResults(results);
    },
  );
}
