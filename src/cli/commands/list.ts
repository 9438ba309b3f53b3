/** `cairn list`: the runs in a store, or one run's checkpoints. */
import type { Command } from "commander";
import type { CheckpointManager } from "../../index.js";
import { formatBytes, formatTable, formatTime, printJson, printText, warn } from "../output.js";
import { corruptCount, examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withManager } from "../store-options.js";

interface ListFlags extends StoreFlags {
  pipelineId?: string;
}

async function listRuns(manager: CheckpointManager, json: boolean): Promise<void> {
  const runs = await manager.listPipelines();
  if (json) return printJson(runs);
  if (runs.length === 0) {
    printText(`No pipeline runs in ${(await manager.getStore()).location}`);
    return;
  }
  const rows = runs.map((r) => [
    r.pipelineId,
    r.pipelineName,
    r.status,
    `${r.completedStages}/${r.totalStages}`,
    r.corruptCount > 0 ? `${r.checkpointCount} (+${r.corruptCount} corrupt)` : String(r.checkpointCount),
    formatTime(r.lastTimestamp),
  ]);
  printText(
    formatTable(["PIPELINE ID", "NAME", "STATUS", "STAGES", "CHECKPOINTS", "LAST UPDATE"], rows, [
      "left",
      "left",
      "left",
      "right",
      "right",
    ]),
  );
}

async function listRun(manager: CheckpointManager, pipelineId: string, json: boolean): Promise<void> {
  const listing = await manager.listRun(pipelineId);
  const history = await manager.getCheckpointHistory(pipelineId);
  const unreadable = corruptCount(listing);
  if (unreadable > 0) {
    warn(
      `${unreadable} stored entr${unreadable === 1 ? "y" : "ies"} of ${pipelineId} cannot be read; run \`cairn validate --pipeline-id ${pipelineId}\``,
    );
  }
  if (json) return printJson(history);
  const rows = history.map((m) => [
    String(m.sequence),
    m.stageName,
    m.status,
    formatTime(m.timestamp),
    formatBytes(m.dataSize),
    m.checkpointId,
  ]);
  printText(
    formatTable(["SEQ", "STAGE", "STATUS", "TIME", "SIZE", "CHECKPOINT ID"], rows, [
      "right",
      "left",
      "left",
      "left",
      "right",
    ]),
  );
}

/** Registers `cairn list`. */
export function registerList(program: Command): void {
  const command = program
    .command("list")
    .summary("List runs, or one run's checkpoints")
    .description("List pipeline runs, or the checkpoints of one run (newest first)")
    .option("--pipeline-id <id>", "list this run's checkpoints instead of the runs")
    .addHelpText(
      "after",
      examples(
        "cairn list --store sqlite:./cairn.db",
        "cairn list --pipeline-id etl_20240101T000000000Z_abc234",
      ),
    );
  addStoreOptions(command).action(async (flags: ListFlags) => {
    await withManager(flags, (manager) =>
      flags.pipelineId === undefined
        ? listRuns(manager, flags.json === true)
        : listRun(manager, flags.pipelineId, flags.json === true),
    );
  });
}
