/** `cairn repair`: backs up and quarantines a damaged checkpoint, or rebuilds what a valid one lacks. */
import type { Command } from "commander";
import {
  DEFAULT_BACKUP_DIR,
  type RepairReport,
  type RepairStatus,
  repairCheckpoint,
} from "../../debug/repair.js";
import { CommandExit, ExitCode } from "../exit-codes.js";
import { printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withManager } from "../store-options.js";

interface RepairFlags extends StoreFlags {
  checkpointId: string;
  dryRun?: boolean;
  force?: boolean;
  backupDir: string;
}

const OUTCOMES: Record<RepairStatus, string> = {
  healthy: "valid: nothing to repair",
  rebuilt: "valid: rebuilt what it lacked",
  quarantined: "invalid: quarantined (status expired); resume no longer uses it",
  "already-quarantined": "invalid: already quarantined by an earlier repair",
  "force-accepted": "invalid: its current content was accepted with --force as a new checkpoint",
  removed: "unreadable: backed up and removed from its run",
  "would-rebuild": "valid: would rebuild what it lacks",
  "would-quarantine": "invalid: would be quarantined",
  "would-force-accept": "invalid: its current content would be accepted as a new checkpoint",
  "would-remove": "unreadable: would be backed up and removed from its run",
};

/** Outcomes that leave the checkpoint out of the run (exit 4); a forced acceptance is a repair. */
const QUARANTINED: ReadonlySet<RepairStatus> = new Set([
  "quarantined",
  "already-quarantined",
  "removed",
  "would-quarantine",
  "would-remove",
]);

const EXIT_HELP = `
Exit codes:
  0  repaired, or healthy: the checkpoint verifies (missing provenance and indexes rebuilt),
     or its changed content was accepted with --force as a new checkpoint
  3  no checkpoint with that id
  4  the checkpoint was invalid and was quarantined (or removed, when it does not even parse);
     with --dry-run: it would be
  6  a runner is executing the run: repair waits for no one and changes nothing`;

function render(report: RepairReport): string {
  const where = report.pipelineId ? ` (run ${report.pipelineId})` : "";
  const lines = [`Checkpoint ${report.checkpointId}${where}: ${OUTCOMES[report.status]}`];
  if (report.dryRun) lines.push("Dry run: nothing was changed and no backup was written.");
  if (report.problems.length > 0) {
    lines.push("", "Problems:", ...report.problems.map((p) => `  ${p.kind}: ${p.message}`));
  }
  if (report.actions.length > 0) {
    lines.push("", report.dryRun ? "Would do:" : "Actions:", ...report.actions.map((a) => `  - ${a}`));
  }
  lines.push("");
  if (report.backup) lines.push(`Backup: ${report.backup}`);
  if (report.newCheckpointId) lines.push(`New checkpoint: ${report.newCheckpointId}`);
  lines.push(`Resume point: ${report.resumePoint ?? "none (no valid checkpoint left to resume from)"}`);
  return lines.join("\n");
}

/** Registers `cairn repair`. */
export function registerRepair(program: Command): void {
  const command = program
    .command("repair")
    .summary("Back up and quarantine an invalid checkpoint, or rebuild what a valid one lacks")
    .description(
      "Repair one checkpoint without ever re-sealing data that changed. A backup of what is stored " +
        "is written before any change. A checkpoint that fails verification is quarantined (status " +
        "expired), so resume uses the newest valid ancestor; one that does not parse is removed. " +
        "A valid one gets missing provenance and the store's indexes rebuilt. Only --force accepts " +
        "changed content, as a new checkpoint that records it did; the changed one stays invalid.",
    )
    .requiredOption("--checkpoint-id <id>", "the checkpoint to repair")
    .option("--dry-run", "show what would be done; change nothing and write no backup")
    .option("--force", "accept the changed content as a new checkpoint (recorded in its stateData.repair)")
    .option("--backup-dir <dir>", "folder for backup files", DEFAULT_BACKUP_DIR)
    .addHelpText(
      "after",
      `${EXIT_HELP}\n${examples(
        "cairn repair --checkpoint-id etl_load_20240101T000000000Z_abc234 --dry-run",
        "cairn repair --checkpoint-id etl_load_20240101T000000000Z_abc234 --store sqlite:./cairn.db",
      )}`,
    );
  addStoreOptions(command).action(async (flags: RepairFlags) => {
    await withManager(flags, async (manager) => {
      const report = await repairCheckpoint(manager, flags.checkpointId, {
        dryRun: flags.dryRun ?? false,
        force: flags.force ?? false,
        backupDir: flags.backupDir,
      });
      if (flags.json) printJson(report);
      else printText(render(report));
      if (QUARANTINED.has(report.status)) {
        throw new CommandExit(
          ExitCode.Corrupt,
          `checkpoint ${report.checkpointId} is invalid (${report.status})`,
        );
      }
    });
  });
}
