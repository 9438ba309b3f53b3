#!/usr/bin/env node
/**
 * The `cairn` command line: a thin layer over `CheckpointManager`. Each command lives in
 * `commands/`; this file builds the program, runs it and turns errors into exit codes.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { dropOutputWhenClosed } from "./closed-output.js";
import { registerAnalyze } from "./commands/analyze.js";
import { registerAudit } from "./commands/audit.js";
import { registerChain } from "./commands/chain.js";
import { registerCleanup } from "./commands/cleanup.js";
import { registerCompare } from "./commands/compare.js";
import { registerEnqueue } from "./commands/enqueue.js";
import { registerExport } from "./commands/export.js";
import { registerImport } from "./commands/import.js";
import { registerInspect } from "./commands/inspect.js";
import { registerKeys } from "./commands/keys.js";
import { registerList } from "./commands/list.js";
import { registerMigrate } from "./commands/migrate.js";
import { registerMonitor } from "./commands/monitor.js";
import { registerRekey } from "./commands/rekey.js";
import { registerRepair } from "./commands/repair.js";
import { registerReplicate } from "./commands/replicate.js";
import { registerReport } from "./commands/report.js";
import { registerRun } from "./commands/run.js";
import { registerStats } from "./commands/stats.js";
import { registerUi } from "./commands/ui.js";
import { registerUpgrade } from "./commands/upgrade.js";
import { registerValidate } from "./commands/validate.js";
import { registerVisualize } from "./commands/visualize.js";
import { registerWatch } from "./commands/watch.js";
import { registerWorker } from "./commands/worker.js";
import { CommandExit, EXIT_CODES_HELP, ExitCode, exitCodeFor } from "./exit-codes.js";
import { reportError } from "./output.js";
import { STORE_HELP } from "./store-options.js";

/** The package version, read at run time so the CLI never disagrees with package.json. */
function packageVersion(): string {
  const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}

/** Builds the `cairn` program with every command registered. */
export function createProgram(): Command {
  const program = new Command()
    .name("cairn")
    .description("Run checkpointed pipelines; inspect, verify and manage their checkpoints")
    .version(packageVersion(), "-V, --version", "print the version")
    // Settings made before `.command()` are inherited by every command.
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({
      outputError: (text, write) => write(text.replace(/^error: /, "cairn: ")),
    })
    .addHelpText(
      "after",
      `\n${STORE_HELP}\n\n${EXIT_CODES_HELP}\n\nDebugging: CAIRN_DEBUG=1 prints stack traces.`,
    );
  registerRun(program);
  registerList(program);
  registerInspect(program);
  registerValidate(program);
  registerRepair(program);
  registerCompare(program);
  registerStats(program);
  registerExport(program);
  registerImport(program);
  registerReplicate(program);
  registerCleanup(program);
  registerMigrate(program);
  registerMonitor(program);
  registerWatch(program);
  registerChain(program);
  registerAnalyze(program);
  registerReport(program);
  registerVisualize(program);
  registerKeys(program);
  registerRekey(program);
  registerUpgrade(program);
  registerWorker(program);
  registerEnqueue(program);
  registerAudit(program);
  registerUi(program);
  return program;
}

/** Runs the CLI on `argv` (as `process.argv`) and returns the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    await createProgram().parseAsync([...argv]);
    return ExitCode.Success;
  } catch (error) {
    const code = exitCodeFor(error);
    // Commander has already printed its own errors and help, and a command that ends with an
    // empty CommandExit has printed what there was to say; everything else is reported here.
    const silent = error instanceof CommanderError || (error instanceof CommandExit && error.message === "");
    if (!silent) reportError(error);
    return code;
  }
}

// A closed pipe (`cairn run … | head`) is neither an error nor the end of the command.
dropOutputWhenClosed();

// exitCode instead of process.exit(): pending stdout writes are flushed before the process ends.
process.exitCode = await runCli(process.argv);
