/** `cairn analyze`: the health, storage, resumes, failures and learned costs of one run, with recommendations. */
import { type Command, InvalidArgumentError as CommanderArgumentError } from "commander";
import { analyzePipeline, renderAnalysisText } from "../../debug/analyze.js";
import { findThreadRun, threadRunIds } from "../../debug/thread.js";
import { DEFAULT_COST_RUNS } from "../../manager/cost-history.js";
import { UsageError } from "../exit-codes.js";
import { printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { storeArgs } from "../store-args.js";
import { addStoreOptions, type StoreFlags, withReader } from "../store-options.js";
import { addThreadOptions, checkThreadFlags, type ThreadFlags } from "../thread-args.js";

interface AnalyzeFlags extends StoreFlags, ThreadFlags {
  pipelineId?: string;
  costRuns: number;
}

function parseRuns(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new CommanderArgumentError("must be an integer from 1 to 1000");
  return n;
}

/** Registers `cairn analyze`. */
export function registerAnalyze(program: Command): void {
  const command = program
    .command("analyze")
    .summary("Analyze a run: checkpoint health, storage, resumes, failures, learned costs")
    .description(
      "Analyze one run: healthy, invalid (and quarantined) and orphaned checkpoints, storage used, resumes, failure " +
        "points, the checkpoint a resume would use, and recommendations. Without the key, an encrypted run's " +
        "checkpoints are counted as not verified, naming the key id (never as invalid).\n" +
        "Costs: per stage, the duration, failure rate and checkpoint write cost learned from the pipeline's " +
        "newest runs (exponentially weighted, the newest weighs most), and where `checkpointPolicy: auto` " +
        "would skip the checkpoint after a stage.\n" +
        "A LangGraph thread's run (--thread) is a tree that never finishes: instead of a resume point and " +
        "costs, its forks, branch tips and the checkpoint LangGraph resumes from.\n" +
        "Informational: exits 0 even when it finds problems (use `cairn validate` to fail on them); " +
        "exits 3 when the run does not exist.",
    )
    .option("--pipeline-id <id>", "the run to analyze")
    .option(
      "--cost-runs <n>",
      `how many of the pipeline's newest runs to learn costs from (1-1000, default ${DEFAULT_COST_RUNS})`,
      parseRuns,
      DEFAULT_COST_RUNS,
    )
    .addHelpText(
      "after",
      examples(
        "cairn analyze --pipeline-id etl_pipeline_20240101T000000000Z_abc234",
        "cairn analyze --pipeline-id etl_20240101 --store sqlite:./cairn.db --json",
        "cairn analyze --thread support-42 --store sqlite:./graph.db",
      ),
    );
  addThreadOptions(
    command,
    "analyze each of its namespaces (one run each): the tree, forks, branches and the latest checkpoint",
  );
  addStoreOptions(command).action(async (flags: AnalyzeFlags, self: Command) => {
    checkThreadFlags(flags);
    const { thread, pipelineId } = flags;
    if (thread === undefined && pipelineId === undefined)
      throw new UsageError("say what to analyze: --pipeline-id <id>, or --thread <thread_id>");
    await withReader(flags, async (manager) => {
      const analyze = (runId: string) =>
        analyzePipeline(manager, runId, {
          storeArgs: storeArgs(self, ["pipelineId", "costRuns", "thread", "namespace"]),
          costs: { runs: flags.costRuns },
        });
      if (thread === undefined) {
        const analysis = await analyze(pipelineId as string);
        if (flags.json) printJson(analysis);
        else printText(renderAnalysisText(analysis));
        return;
      }
      const runIds =
        flags.namespace === undefined
          ? await threadRunIds(manager, thread)
          : [await findThreadRun(manager, thread, flags.namespace)];
      const analyses = [];
      for (const runId of runIds) analyses.push(await analyze(runId));
      if (flags.json) printJson({ threadId: thread, namespaces: analyses });
      else printText(analyses.map(renderAnalysisText).join("\n\n"));
    });
  });
}
