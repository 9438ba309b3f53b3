/** `cairn cleanup`: removes old checkpoints by age, or whole finished runs. */
import { type Command, InvalidArgumentError as CommanderArgumentError } from "commander";
import type { CheckpointManager, CleanupReport } from "../../index.js";
import { CommandExit, ExitCode, UsageError } from "../exit-codes.js";
import { formatTable, formatTime, printJson, printText } from "../output.js";
import { withProgress } from "../progress.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withManager } from "../store-options.js";

interface CleanupFlags extends StoreFlags {
  retentionDays?: number;
  dryRun?: boolean;
  pipelineId?: string;
  force?: boolean;
}

function parseDays(value: string): number {
  const days = Number(value);
  if (value.trim() === "" || !Number.isFinite(days) || days < 0) {
    throw new CommanderArgumentError("expected a non-negative number of days");
  }
  return days;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function renderReport(report: CleanupReport): string {
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
  if (report.skippedOutputCleanup.length > 0) {
    lines.push(
      `Outputs kept for ${report.skippedOutputCleanup.join(", ")}: a remaining checkpoint cannot be read (run \`cairn validate\`).`,
    );
  }
  return lines.join("\n");
}

async function cleanupRun(
  manager: CheckpointManager,
  pipelineId: string,
  flags: CleanupFlags,
): Promise<void> {
  // A mistyped id is CAIRN_NOT_FOUND (exit 3), not "nothing to delete".
  await manager.listRun(pipelineId);
  const force = flags.force === true;
  const deleted = await manager.cleanupCompletedPipelines([pipelineId], { force });
  // The library skips an unfinished run silently; on the command line that must not look like success.
  if (deleted === 0) {
    throw new CommandExit(
      ExitCode.Failure,
      `run ${pipelineId} has not finished; its checkpoints are how it resumes. Pass --force to delete it anyway`,
    );
  }
  if (flags.json) printJson({ pipelineId, deletedCheckpoints: deleted, force });
  else printText(`Removed run ${pipelineId}: ${plural(deleted, "checkpoint")} deleted.`);
}

/** Registers `cairn cleanup`. */
export function registerCleanup(program: Command): void {
  const command = program
    .command("cleanup")
    .summary("Delete old checkpoints, or a finished run")
    .description(
      "Delete checkpoints older than --retention-days, or one finished run with --pipeline-id (exactly one of the two)",
    )
    .option("--retention-days <n>", "delete checkpoints older than this many days", parseDays)
    .option("--dry-run", "with --retention-days: only report what would be deleted")
    .option("--pipeline-id <id>", "delete this run entirely, if it has finished")
    .option("--force", "with --pipeline-id: delete the run even if it has not finished")
    .addHelpText(
      "after",
      examples(
        "cairn cleanup --retention-days 30 --dry-run",
        "cairn cleanup --pipeline-id etl_20240101T000000000Z_abc234 --force",
      ),
    );
  addStoreOptions(command).action(async (flags: CleanupFlags) => {
    const byAge = flags.retentionDays !== undefined;
    const byRun = flags.pipelineId !== undefined;
    if (byAge === byRun) {
      throw new UsageError(
        byAge
          ? "--retention-days and --pipeline-id cannot be combined: clean up by age or one run"
          : "say what to clean up: --retention-days <n> or --pipeline-id <id>",
      );
    }
    if (byAge && flags.force) throw new UsageError("--force applies to --pipeline-id only");
    if (byRun && flags.dryRun) throw new UsageError("--dry-run applies to --retention-days only");
    await withManager(flags, async (manager) => {
      if (flags.pipelineId !== undefined) return cleanupRun(manager, flags.pipelineId, flags);
      const report = await withProgress(flags, (progress) =>
        manager.cleanupOldCheckpoints({
          retentionDays: flags.retentionDays as number,
          dryRun: flags.dryRun === true,
          onProgress: (done, total) => progress.count("cleaning up", done, total, "runs"),
        }),
      );
      if (flags.json) printJson(report);
      else printText(renderReport(report));
    });
  });
}
