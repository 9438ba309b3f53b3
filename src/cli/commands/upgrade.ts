/** `cairn upgrade`: rewrites runs written in an older record format into the current one. */
import type { Command } from "commander";
import type { UpgradeReport } from "../../index.js";
import { CommandExit, ExitCode, UsageError } from "../exit-codes.js";
import { printJson, printText } from "../output.js";
import { withProgress } from "../progress.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withManager, withReader } from "../store-options.js";

interface UpgradeFlags extends StoreFlags {
  pipelineId?: string;
  all?: boolean;
  dryRun?: boolean;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function render(report: UpgradeReport): string {
  const lines: string[] = [];
  for (const run of report.upgraded) {
    const from = `${run.fromCheckpointId} (format ${run.fromVersion})`;
    lines.push(
      report.dryRun
        ? `Would upgrade run ${run.pipelineId}: a copy of ${from} in format ${report.formatVersion}`
        : `Upgraded run ${run.pipelineId}: ${run.checkpointId} (format ${report.formatVersion}) follows ${from}`,
    );
  }
  for (const run of report.skipped) lines.push(`Skipped run ${run.pipelineId}: ${run.reason}`);
  const done = report.dryRun ? "would be upgraded" : "upgraded";
  lines.push(
    `${plural(report.runs, "run")} looked at: ${report.upgraded.length} ${done}, ` +
      `${report.current.length} already in format ${report.formatVersion}, ${report.skipped.length} skipped`,
  );
  if (report.dryRun) lines.push("Dry run: nothing was written.");
  return lines.join("\n");
}

/** Registers `cairn upgrade`. */
export function registerUpgrade(program: Command): void {
  const command = program
    .command("upgrade")
    .summary("Rewrite runs of an older record format into the current one")
    .description(
      "For each run whose newest checkpoint was written in an older record format, write one new " +
        "checkpoint in the current format with the same content, stage and status, chained to it " +
        "(the old checkpoints stay until retention; outputs are not written again). Runs in use " +
        "(their lease is held) and runs whose newest checkpoint fails verification are skipped and " +
        "reported. Safe to stop and run again: runs already current are skipped. Older records are " +
        "read either way; upgrade only matters to drop old cairn readers.",
    )
    .option("--pipeline-id <id>", "upgrade this run")
    .option("--all", "upgrade every run in the store")
    .option("--dry-run", "only report what would be written")
    .addHelpText(
      "after",
      `${examples(
        "cairn upgrade --all --dry-run --store sqlite:./cairn.db",
        "cairn upgrade --pipeline-id etl_20240101T000000000Z_abc234",
      )}

Exit codes:
  0  every run looked at is in the current format (or would be, with --dry-run)
  1  a run was skipped because it is in use (its lease is held); run upgrade again later
  3  the run of --pipeline-id does not exist
  4  a run was skipped because its newest checkpoint fails verification (see cairn repair)
  7  an encrypted run needs a key not in the key file (--key-file, CAIRN_KEY_FILE)`,
    );
  addStoreOptions(command).action(async (flags: UpgradeFlags) => {
    if ((flags.pipelineId === undefined) === (flags.all !== true))
      throw new UsageError("upgrade needs exactly one of --pipeline-id <id> or --all");
    const target = flags.pipelineId !== undefined ? { pipelineId: flags.pipelineId } : { all: true as const };
    const dryRun = flags.dryRun === true;
    // A dry run opens the store read-only: nothing is created, migrated or written.
    const open = dryRun ? withReader : withManager;
    const report = await open(flags, (manager) =>
      withProgress(flags, (progress) =>
        manager.upgrade(target, {
          dryRun,
          onProgress: (done, total) => progress.count("upgrading", done, total, "runs"),
        }),
      ),
    );
    if (flags.json) printJson(report);
    else printText(render(report));
    // The report said it all: an empty message keeps the CLI from saying it again.
    if (report.skipped.some((s) => s.kind === "corrupt")) throw new CommandExit(ExitCode.Corrupt, "");
    if (report.skipped.some((s) => s.kind === "in_use")) throw new CommandExit(ExitCode.Failure, "");
  });
}
