/** `cairn cleanup`: removes old checkpoints by age, or whole finished runs. */
import { createInterface } from "node:readline/promises";
import { type Command, InvalidArgumentError as CommanderArgumentError } from "commander";
import type { CheckpointManager, CleanupReport } from "../../index.js";
import { CommandExit, ExitCode, UsageError } from "../exit-codes.js";
import { formatTable, formatTime, printJson, printText } from "../output.js";
import { withProgress } from "../progress.js";
import { examples } from "../runs.js";
import { storeHint } from "../store-args.js";
import { addStoreOptions, type StoreFlags, withManager } from "../store-options.js";

interface CleanupFlags extends StoreFlags {
  retentionDays?: number;
  dryRun?: boolean;
  pipelineId?: string[];
  force?: boolean;
  yes?: boolean;
}

function parseDays(value: string): number {
  const days = Number(value);
  if (value.trim() === "" || !Number.isFinite(days) || days < 0) {
    throw new CommanderArgumentError("expected a non-negative number of days");
  }
  return days;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function renderReport(report: CleanupReport, hint: string): string {
  const verb = report.dryRun ? "Would remove" : "Removed";
  const lines: string[] = [];
  const deleted = report.deletedCheckpoints;
  if (deleted.length === 0) {
    lines.push(`No checkpoint is older than ${formatTime(report.cutoff)}.`);
  } else {
    lines.push(`${verb} ${plural(deleted.length, "checkpoint")} older than ${formatTime(report.cutoff)}:`);
    const rows = deleted.map((d) => [d.pipelineId, d.checkpointId, formatTime(d.timestamp)]);
    lines.push(formatTable(["PIPELINE ID", "CHECKPOINT ID", "CREATED"], rows));
  }
  lines.push(
    "",
    `Total: ${plural(deleted.length, "checkpoint")}, ${plural(report.deletedOutputs, "unreferenced output")}, ${plural(report.removedRuns.length, "run")} removed entirely${report.dryRun ? " (dry run: nothing was deleted)" : ""}.`,
  );
  for (const run of report.skipped) {
    lines.push(`Skipped run ${run.pipelineId}: ${run.reason.replace("force", "--force")}.`);
  }
  if (report.unfinishedRuns.length > 0) {
    const verb = report.dryRun ? "would be trimmed" : "were trimmed";
    lines.push(`Unfinished runs that ${verb} (--force): ${report.unfinishedRuns.join(", ")}.`);
  }
  if (report.skippedOutputCleanup.length > 0) {
    lines.push(
      `Outputs kept for ${report.skippedOutputCleanup.join(", ")}: a remaining checkpoint cannot be read (run \`cairn validate --all${hint}\`).`,
    );
  }
  return lines.join("\n");
}

/**
 * Deletes the named runs. Each deleted run is a line on stdout; each refused or missing run a
 * line on stderr, so a script sees them apart. Exit 0 when every run went, 1 when any was
 * refused (unfinished without --force, or in use), else 3 when any does not exist.
 */
async function cleanupRuns(
  manager: CheckpointManager,
  pipelineIds: string[],
  flags: CleanupFlags,
): Promise<void> {
  const force = flags.force === true;
  const dryRun = flags.dryRun === true;
  if (force && !dryRun && !flags.yes && onTerminal()) {
    const preview = await manager.cleanupPipelines(pipelineIds, { force, dryRun: true });
    const unfinished = preview.deleted.filter((r) => !r.finished).map((r) => r.pipelineId);
    await confirmUnfinished(unfinished);
  }
  const report = await manager.cleanupPipelines(pipelineIds, { force, dryRun });
  if (flags.json) printJson({ ...report, force });
  else {
    for (const run of report.deleted) {
      const what = `${plural(run.checkpoints, "checkpoint")}${run.finished ? "" : ", unfinished"}`;
      printText(
        dryRun
          ? `Would remove run ${run.pipelineId} (${what}).`
          : `Removed run ${run.pipelineId}: ${plural(run.checkpoints, "checkpoint")} deleted${run.finished ? "" : " (unfinished)"}.`,
      );
    }
    if (dryRun) printText("Dry run: nothing was deleted.");
  }
  for (const run of report.refused) {
    process.stderr.write(
      `cairn: refused to delete run ${run.pipelineId}: ${run.reason.replace("force", "--force")}\n`,
    );
  }
  for (const pipelineId of report.missing) {
    process.stderr.write(`cairn: no pipeline run with id ${JSON.stringify(pipelineId)} in the store\n`);
  }
  // The lines above said it all: an empty message keeps the CLI from saying it again.
  if (report.refused.length > 0) throw new CommandExit(ExitCode.Failure, "");
  if (report.missing.length > 0) throw new CommandExit(ExitCode.NotFound, "");
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** A person can answer a question: stdin and stderr are both a terminal. */
function onTerminal(): boolean {
  return process.stdin.isTTY === true && process.stderr.isTTY === true;
}

/**
 * On a terminal, deleting unfinished runs (only ever with --force) needs a "y": they cannot be
 * resumed afterwards. `--yes` answers for scripts; elsewhere --force alone is the consent.
 */
async function confirmUnfinished(unfinished: readonly string[]): Promise<void> {
  if (unfinished.length === 0) return;
  const names = unfinished.length <= 5 ? unfinished.join(", ") : `${unfinished.slice(0, 5).join(", ")}, …`;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  let answer: string;
  try {
    answer = await rl.question(
      `Delete checkpoints of ${plural(unfinished.length, "unfinished run")} (${names})? They cannot be resumed afterwards. [y/N] `,
    );
  } finally {
    rl.close();
  }
  if (!/^y(es)?$/i.test(answer.trim())) throw new CommandExit(ExitCode.Failure, "nothing was deleted");
}

/** Registers `cairn cleanup`. */
export function registerCleanup(program: Command): void {
  const command = program
    .command("cleanup")
    .summary("Delete old checkpoints, or a finished run")
    .description(
      "Delete checkpoints older than --retention-days, or finished runs with --pipeline-id (exactly one of the two). " +
        "Both leave unfinished runs alone unless --force (their checkpoints are how they resume); on a terminal, " +
        "--force shows what would go and asks before deleting from unfinished runs (--yes skips the question). " +
        "--dry-run only reports. " +
        "A run being executed (its lease is held) is never touched: it is reported as skipped or refused, even with --force. " +
        "With --pipeline-id, each refused (unfinished, or in use) or missing run is a line on stderr; the exit code is 1 " +
        "when any run was refused, else 3 when any does not exist.",
    )
    .option("--retention-days <n>", "delete checkpoints older than this many days", parseDays)
    .option("--dry-run", "only report what would be deleted")
    .option(
      "--pipeline-id <id>",
      "delete this run entirely, if it has finished (repeat the flag for several runs)",
      collect,
    )
    .option(
      "--force",
      "also delete from runs that have not finished (never one being executed); asks first on a terminal",
    )
    .option("--yes", "with --force: do not ask for confirmation on a terminal")
    .addHelpText(
      "after",
      examples(
        "cairn cleanup --retention-days 30 --dry-run",
        "cairn cleanup --pipeline-id etl_20240101T000000000Z_abc234 --force",
        "cairn cleanup --pipeline-id etl_a --pipeline-id etl_b",
      ),
    );
  addStoreOptions(command).action(async (flags: CleanupFlags, self: Command) => {
    const byAge = flags.retentionDays !== undefined;
    const byRun = flags.pipelineId !== undefined;
    if (byAge === byRun) {
      throw new UsageError(
        byAge
          ? "--retention-days and --pipeline-id cannot be combined: clean up by age or one run"
          : "say what to clean up: --retention-days <n> or --pipeline-id <id>",
      );
    }
    if (flags.yes && !flags.force) throw new UsageError("--yes confirms --force: give both");
    await withManager(flags, async (manager) => {
      if (flags.pipelineId !== undefined) return cleanupRuns(manager, flags.pipelineId, flags);
      const force = flags.force === true;
      const byAgeOptions = { retentionDays: flags.retentionDays as number, skipUnfinished: !force };
      if (force && !flags.dryRun && !flags.yes && onTerminal()) {
        const preview = await manager.cleanupOldCheckpoints({ ...byAgeOptions, dryRun: true });
        if (preview.unfinishedRuns.length > 0) printText(renderReport(preview, storeHint(self)));
        await confirmUnfinished(preview.unfinishedRuns);
      }
      const report = await withProgress(flags, (progress) =>
        manager.cleanupOldCheckpoints({
          ...byAgeOptions,
          dryRun: flags.dryRun === true,
          onProgress: (done, total) => progress.count("cleaning up", done, total, "runs"),
        }),
      );
      if (flags.json) printJson(report);
      else printText(renderReport(report, storeHint(self)));
    });
  });
}
