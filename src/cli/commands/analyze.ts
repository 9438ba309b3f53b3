/** `cairn analyze`: the health, storage, resumes and failures of one run, with recommendations. */
import type { Command } from "commander";
import { analyzePipeline, renderAnalysisText } from "../../debug/analyze.js";
import { printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { storeArgs } from "../store-args.js";
import { addStoreOptions, type StoreFlags, withReader } from "../store-options.js";

interface AnalyzeFlags extends StoreFlags {
  pipelineId: string;
}

/** Registers `cairn analyze`. */
export function registerAnalyze(program: Command): void {
  const command = program
    .command("analyze")
    .summary("Analyze a run: checkpoint health, storage, resumes, failures")
    .description(
      "Analyze one run: healthy, invalid (and quarantined) and orphaned checkpoints, storage used, resumes, failure " +
        "points, the checkpoint a resume would use, and recommendations. Without the key, an encrypted run's " +
        "checkpoints are counted as not verified, naming the key id (never as invalid).\n" +
        "Informational: exits 0 even when it finds problems (use `cairn validate` to fail on them); " +
        "exits 3 when the run does not exist.",
    )
    .requiredOption("--pipeline-id <id>", "the run to analyze")
    .addHelpText(
      "after",
      examples(
        "cairn analyze --pipeline-id etl_pipeline_20240101T000000000Z_abc234",
        "cairn analyze --pipeline-id etl_20240101 --store sqlite:./cairn.db --json",
      ),
    );
  addStoreOptions(command).action(async (flags: AnalyzeFlags, self: Command) => {
    await withReader(flags, async (manager) => {
      const analysis = await analyzePipeline(manager, flags.pipelineId, {
        storeArgs: storeArgs(self, ["pipelineId"]),
      });
      if (flags.json) printJson(analysis);
      else printText(renderAnalysisText(analysis));
    });
  });
}
