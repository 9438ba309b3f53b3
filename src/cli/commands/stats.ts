/** `cairn stats`: store-wide statistics. */
import type { Command } from "commander";
import type { CheckpointStatistics } from "../../index.js";
import { formatBytes, formatTime, printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withManager } from "../store-options.js";

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
    ["Corrupt entries", String(s.corruptCheckpoints)],
    ["Stored", `${formatBytes(s.storedDataSize)} (each output once)`],
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
    .description("Show statistics of the store: runs, checkpoints by status, sizes, resumes")
    .option("--name <pipeline>", "only this pipeline's runs (found through the runs-by-name index)")
    .addHelpText(
      "after",
      examples("cairn stats --store sqlite:./cairn.db --json", "cairn stats --name etl_pipeline"),
    );
  addStoreOptions(command).action(async (flags: StoreFlags & { name?: string }) => {
    await withManager(flags, async (manager) => {
      const stats = await manager.getStatistics(flags.name !== undefined ? { pipelineName: flags.name } : {});
      if (flags.json) printJson(stats);
      else printText(render(stats, (await manager.getStore()).location));
    });
  });
}
