/** `cairn list`: the runs in a store, or one run's checkpoints. */
import type { Command } from "commander";
import { InvalidArgumentError as CommanderArgumentError } from "commander";
import { shellQuote } from "../../debug/recommendations.js";
import { threadsOf } from "../../debug/thread-of-run.js";
import type { CheckpointManager, CheckpointVerdict, PipelineSummary } from "../../index.js";
import { isThreadRun } from "../../langgraph/ids.js";
import { checkLabel } from "../../manager/chain-text.js";
import { checkLatest } from "../../manager/run-walk.js";
import { UsageError } from "../exit-codes.js";
import { formatBytes, formatTable, formatTime, printJson, printText, warn } from "../output.js";
import { examples } from "../runs.js";
import { storeHint } from "../store-args.js";
import { addStoreOptions, type StoreFlags, withReader } from "../store-options.js";
import { addThreadOptions, checkThreadFlags, type ThreadFlags } from "../thread-args.js";
import { listThread, threadTable } from "./list-threads.js";

interface ListFlags extends StoreFlags, ThreadFlags {
  pipelineId?: string;
  name?: string;
  unfinished?: boolean;
  limit?: number;
  cursor?: string;
  /** `--verify`: the one check of each run's newest checkpoint (it reads all that checkpoint's outputs). */
  verify?: boolean;
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
    const checked = flags.verify === true ? await withLatestCheck(manager, runs) : runs;
    if (json) {
      const threads = await threadsOf(manager, checked);
      return printJson({ runs: withThreads(checked, threads), ...(nextCursor ? { nextCursor } : {}) });
    }
    runs = checked;
  } else {
    if (flags.unfinished || flags.limit !== undefined || flags.cursor !== undefined)
      throw new UsageError(
        "--unfinished, --limit and --cursor page one pipeline's runs: add --name <pipeline>",
      );
    runs = await manager.listPipelines();
    if (flags.verify === true) runs = await withLatestCheck(manager, runs);
    if (json) return printJson(withThreads(runs, await threadsOf(manager, runs)));
  }
  if (runs.length === 0) {
    printText(
      flags.name !== undefined
        ? `No runs of pipeline ${flags.name}${flags.cursor ? " after that cursor" : ""}`
        : `No pipeline runs in ${(await manager.getStore()).location}`,
    );
    return;
  }
  // LangGraph threads get a table of their own: their thread and namespace say more than a run id.
  const threadRuns = runs.filter((r) => isThreadRun(r.pipelineId));
  runs = runs.filter((r) => !isThreadRun(r.pipelineId));
  if (runs.length > 0) printRunTable(runs as CheckedSummary[], flags.verify === true);
  if (threadRuns.length > 0) {
    if (runs.length > 0) printText("");
    printText("LangGraph threads (CairnSaver):");
    const threads = await threadsOf(manager, threadRuns);
    printText(threadTable(threadRuns, threads));
    // One thread listed: the hint names it, ready to paste.
    const ids = new Set([...threads.values()].map((t) => t?.threadId));
    const [only] = ids;
    const id = ids.size === 1 && only !== undefined ? shellQuote(only) : "<thread_id>";
    printText(`One thread's namespaces: cairn list --thread ${id}${hint}`);
  }
  if (nextCursor) printText(`More runs: cairn list --name ${flags.name} --cursor ${nextCursor}${hint}`);
}

/** Adds `thread` ({ threadId, namespace }, or null when unknown) to the summaries of thread runs. */
function withThreads<T extends PipelineSummary>(
  runs: readonly T[],
  threads: Map<string, { threadId: string; namespace: string } | null>,
): (T & { thread?: { threadId: string; namespace: string } | null })[] {
  return runs.map((r) =>
    threads.has(r.pipelineId) ? { ...r, thread: threads.get(r.pipelineId) ?? null } : r,
  );
}

function printRunTable(runs: CheckedSummary[], verify: boolean): void {
  const rows = runs.map((r) => [
    r.pipelineId,
    r.pipelineName,
    r.status,
    `${r.completedStages}/${r.totalStages}`,
    r.corruptCount > 0 ? `${r.checkpointCount} (+${r.corruptCount} unreadable)` : String(r.checkpointCount),
    formatTime(r.lastTimestamp),
    ...(verify ? [r.latestCheck ? checkLabel(r.latestCheck) : "-"] : []),
  ]);
  const headers = ["PIPELINE ID", "NAME", "STATUS", "STAGES", "CHECKPOINTS", "LAST UPDATE"];
  if (verify) headers.push("NEWEST CHECKPOINT");
  printText(formatTable(headers, rows, ["left", "left", "left", "right", "right", "left", "left"]));
  printText(
    verify
      ? "NEWEST CHECKPOINT: the check of each run's newest checkpoint only; `cairn validate --all` checks every one."
      : "Not verified: --verify checks each run's newest checkpoint, `cairn validate --all` every one.",
  );
}

/** A run summary with the one check of its newest checkpoint (`latestCheck`, absent for an empty run). */
type CheckedSummary = PipelineSummary & {
  latestCheck?: Pick<CheckpointVerdict, "status" | "quarantined" | "problems">;
};

/** Adds each run's `latestCheck`: a full walk of every run would cost as much as `validate --all`. */
async function withLatestCheck(
  manager: CheckpointManager,
  runs: PipelineSummary[],
): Promise<CheckedSummary[]> {
  const store = await manager.getStore();
  const checked: CheckedSummary[] = [];
  for (const run of runs) {
    const verdict = await checkLatest(store, run.pipelineId);
    checked.push(
      verdict
        ? {
            ...run,
            latestCheck: {
              status: verdict.status,
              quarantined: verdict.quarantined,
              problems: verdict.problems,
            },
          }
        : run,
    );
  }
  return checked;
}

async function listRun(
  manager: CheckpointManager,
  pipelineId: string,
  json: boolean,
  hint: string,
): Promise<void> {
  // Without the key, encrypted checkpoints are listed as not verified rather than failing the listing.
  const validation = await manager.validateRun(pipelineId, { sealed: "report" });
  const unreadable = validation.checkpoints.filter((v) => v.corrupt !== undefined).length;
  if (unreadable > 0) {
    warn(
      `${unreadable} stored entr${unreadable === 1 ? "y" : "ies"} of ${pipelineId} cannot be read (unreadable); run \`cairn validate --pipeline-id ${pipelineId}${hint}\``,
    );
  }
  const verdicts = new Map(validation.checkpoints.map((v) => [v.checkpointId, v]));
  const history = (await manager.getCheckpointHistory(pipelineId)).flatMap((m) => {
    const v = verdicts.get(m.checkpointId);
    // Deleted since the walk, or written after it (not checked): left out, as a listing would.
    if (!v || v.status === "gone") return [];
    // From the body, or the clear outline of an encrypted one; records before format 2 have none.
    const pipelineVersion = v.body?.pipeline_version ?? null;
    return [
      {
        ...m,
        pipelineVersion,
        check: v.quarantined ? "quarantined" : v.status,
        problems: v.problems,
        verdict: v,
      },
    ];
  });
  if (json) return printJson(history.map(({ verdict: _, ...m }) => m));
  const rows = history.map((m) => [
    String(m.sequence),
    m.stageName,
    m.status,
    formatTime(m.timestamp),
    formatBytes(m.dataSize),
    checkLabel(m.verdict),
    m.checkpointId,
    m.pipelineVersion ?? "—",
  ]);
  printText(
    formatTable(["SEQ", "STAGE", "STATUS", "TIME", "SIZE", "CHECK", "CHECKPOINT ID", "VERSION"], rows, [
      "right",
      "left",
      "left",
      "left",
      "right",
      "left",
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
    .description(
      "List pipeline runs, or the checkpoints of one run (newest first). LangGraph threads (CairnSaver) are " +
        "listed in a table of their own, by thread and namespace; --thread lists one thread's namespaces",
    )
    .option("--pipeline-id <id>", "list this run's checkpoints instead of the runs")
    .option("--name <pipeline>", "list one pipeline's runs, newest first, from the runs-by-name index")
    .option("--unfinished", "with --name: only runs that have not finished")
    .option("--limit <n>", "with --name: runs per page (1-1000, default 20)", parseLimit)
    .option("--cursor <cursor>", "with --name: the page after the one that printed this cursor")
    .option(
      "--verify",
      "runs: check each run's newest checkpoint (reads and hashes its outputs; a run's own checkpoints are always checked)",
    )
    .addHelpText(
      "after",
      examples(
        "cairn list --store sqlite:./cairn.db",
        "cairn list --pipeline-id etl_20240101T000000000Z_abc234",
        "cairn list --name etl --unfinished --limit 5",
        "cairn list --thread support-42 --store sqlite:./graph.db",
        'cairn list --thread support-42 --namespace "" --store sqlite:./graph.db',
      ),
    );
  addThreadOptions(
    command,
    "list its namespaces (one run each); with --namespace, that namespace's checkpoint tree",
  );
  addStoreOptions(command).action(async (flags: ListFlags, self: Command) => {
    checkThreadFlags(flags);
    if (flags.pipelineId !== undefined && flags.name !== undefined)
      throw new UsageError("--pipeline-id lists one run's checkpoints, --name one pipeline's runs: give one");
    if (
      flags.thread !== undefined &&
      [flags.name, flags.verify, flags.unfinished, flags.limit, flags.cursor].some((f) => f !== undefined)
    )
      throw new UsageError(
        "--thread lists one thread, every record verified: leave out --name, --verify, --unfinished, --limit and --cursor",
      );
    const thread = flags.thread;
    await withReader(flags, (manager) =>
      thread !== undefined
        ? listThread(manager, { ...flags, thread }, storeHint(self))
        : flags.pipelineId === undefined
          ? listRuns(manager, flags, storeHint(self))
          : listRun(manager, flags.pipelineId, flags.json === true, storeHint(self)),
    );
  });
}
