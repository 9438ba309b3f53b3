/** `cairn list`: the runs in a store, or one run's checkpoints. */
import type { Command } from "commander";
import { InvalidArgumentError as CommanderArgumentError } from "commander";
import type { CheckpointManager, PipelineSummary } from "../../index.js";
import { UsageError } from "../exit-codes.js";
import { formatBytes, formatTable, formatTime, printJson, printText, warn } from "../output.js";
import { corruptCount, examples } from "../runs.js";
import { storeHint } from "../store-args.js";
import { addStoreOptions, type StoreFlags, withManager } from "../store-options.js";

interface ListFlags extends StoreFlags {
  pipelineId?: string;
  name?: string;
  unfinished?: boolean;
  limit?: number;
  cursor?: string;
}

async function listRuns(manager: CheckpointManager, flags: ListFlags, hint: string): Promise<void> {
  const json = flags.json === true;
  let nextCursor: string | undefined;
  let runs: PipelineSummary[];
  if (flags.name !== undefined) {
    ({ runs, nextCursor } = await manager.listRuns(flags.name, {
      ...(flags.unfinished ? { unfinished: true } : {}),
      ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
      ...(flags.cursor !== undefined ? { cursor: flags.cursor } : {}),
    }));
    if (json) return printJson({ runs, ...(nextCursor ? { nextCursor } : {}) });
  } else {
    if (flags.unfinished || flags.limit !== undefined || flags.cursor !== undefined)
      throw new UsageError(
        "--unfinished, --limit and --cursor page one pipeline's runs: add --name <pipeline>",
      );
    runs = await manager.listPipelines();
    if (json) return printJson(runs);
  }
  if (runs.length === 0) {
    printText(
      flags.name !== undefined
        ? `No runs of pipeline ${flags.name}${flags.cursor ? " after that cursor" : ""}`
        : `No pipeline runs in ${(await manager.getStore()).location}`,
    );
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
  if (nextCursor) printText(`More runs: cairn list --name ${flags.name} --cursor ${nextCursor}${hint}`);
}

async function listRun(
  manager: CheckpointManager,
  pipelineId: string,
  json: boolean,
  hint: string,
): Promise<void> {
  const listing = await manager.listRun(pipelineId);
  const history = await manager.getCheckpointHistory(pipelineId);
  const unreadable = corruptCount(listing);
  if (unreadable > 0) {
    warn(
      `${unreadable} stored entr${unreadable === 1 ? "y" : "ies"} of ${pipelineId} cannot be read; run \`cairn validate --pipeline-id ${pipelineId}${hint}\``,
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

function parseLimit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new CommanderArgumentError("must be an integer from 1 to 1000");
  return n;
}

/** Registers `cairn list`. */
export function registerList(program: Command): void {
  const command = program
    .command("list")
    .summary("List runs, or one run's checkpoints")
    .description("List pipeline runs, or the checkpoints of one run (newest first)")
    .option("--pipeline-id <id>", "list this run's checkpoints instead of the runs")
    .option("--name <pipeline>", "list one pipeline's runs, newest first, from the runs-by-name index")
    .option("--unfinished", "with --name: only runs that have not finished")
    .option("--limit <n>", "with --name: runs per page (1-1000, default 20)", parseLimit)
    .option("--cursor <cursor>", "with --name: the page after the one that printed this cursor")
    .addHelpText(
      "after",
      examples(
        "cairn list --store sqlite:./cairn.db",
        "cairn list --pipeline-id etl_20240101T000000000Z_abc234",
        "cairn list --name etl --unfinished --limit 5",
      ),
    );
  addStoreOptions(command).action(async (flags: ListFlags, self: Command) => {
    if (flags.pipelineId !== undefined && flags.name !== undefined)
      throw new UsageError("--pipeline-id lists one run's checkpoints, --name one pipeline's runs: give one");
    await withManager(flags, (manager) =>
      flags.pipelineId === undefined
        ? listRuns(manager, flags, storeHint(self))
        : listRun(manager, flags.pipelineId, flags.json === true, storeHint(self)),
    );
  });
}
