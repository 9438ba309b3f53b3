/** `cairn stats`: store-wide statistics. */
import type { Command } from "commander";
import type { CheckpointStatistics } from "../../index.js";
import { atRestText } from "../../manager/at-rest-usage.js";
import { formatBytes, formatTime, printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withReader } from "../store-options.js";

/** The one check's counts, or why there are none. */
function checked(s: CheckpointStatistics): string {
  if (!s.check) {
    const unreadable = `${s.corruptCheckpoints} unreadable entr${s.corruptCheckpoints === 1 ? "y" : "ies"}`;
    return `${unreadable}; validity not checked (--verify checks every checkpoint, as \`cairn validate --all\` does)`;
  }
  const { valid, invalid, quarantined } = s.check;
  const unreadable = s.corruptCheckpoints > 0 ? `, ${s.corruptCheckpoints} of them unreadable entries` : "";
  return `${valid} valid, ${invalid} invalid (${quarantined} quarantined${unreadable})`;
}

function render(s: CheckpointStatistics, location: string): string {
  const byStatus = Object.entries(s.checkpointsByStatus)
    .map(([status, n]) => `${status} ${n}`)
    .join(", ");
  const rate =
    s.resumeSuccessRate === null ? "n/a (no resumed runs)" : `${(s.resumeSuccessRate * 100).toFixed(1)}%`;
  const rows: [string, string][] = [
    ["Store", `${s.storageStrategy} (${location})`],
    ["Pipeline runs", `${s.totalPipelines} (${s.activePipelines} active, ${s.completedPipelines} completed)`],
    ["Checkpoints", String(s.totalCheckpoints)],
    ["  by status", byStatus],
    ["  checked", checked(s)],
    ["Stored", `${formatBytes(s.storedDataSize)} (each output once)`],
    ["At rest", atRestText(s.atRest)],
    [
      "Checkpoint sizes",
      `${formatBytes(s.totalDataSize)} total, ${formatBytes(s.averageDataSize)} average (with every output each refers to)`,
    ],
    ["Resumes", `${s.totalResumeCount} in ${s.resumedPipelines} run${s.resumedPipelines === 1 ? "" : "s"}`],
    ["Resume success", rate],
    ["Oldest", formatTime(s.oldestCheckpoint)],
    ["Newest", formatTime(s.newestCheckpoint)],
  ];
  return rows.map(([label, value]) => `${`${label}:`.padEnd(18)}${value}`).join("\n");
}

/** Registers `cairn stats`. */
export function registerStats(program: Command): void {
  const command = program
    .command("stats")
    .summary("Show store statistics")
    .description(
      "Show statistics of the store: runs, checkpoints by status and by the one check (valid, " +
        "invalid, quarantined), sizes, bytes at rest (as stored against uncompressed; shares of " +
        "compressed and encrypted records, known without keys), resumes",
    )
    .option("--name <pipeline>", "only this pipeline's runs (found through the runs-by-name index)")
    .option(
      "--verify",
      "check every checkpoint too (checksums, outputs, chain links): as costly as validate --all",
    )
    .addHelpText(
      "after",
      examples("cairn stats --store sqlite:./cairn.db --json", "cairn stats --name etl_pipeline"),
    );
  addStoreOptions(command).action(async (flags: StoreFlags & { name?: string; verify?: boolean }) => {
    await withReader(flags, async (manager) => {
      const stats = await manager.getStatistics({
        verify: flags.verify === true,
        ...(flags.name !== undefined ? { pipelineName: flags.name } : {}),
      });
      if (flags.json) printJson(stats);
      else printText(render(stats, (await manager.getStore()).location));
    });
  });
}
