/** `cairn report`: the recovery report of a run, as text, Markdown or a self-contained HTML page. */
import { extname, resolve } from "node:path";
import { type Command, Option } from "commander";
import { InvalidArgumentError } from "../../core/errors.js";
import { buildRecoveryReport, REPORT_FORMATS, type ReportFormat, renderReport } from "../../debug/report.js";
import type { CheckpointManager } from "../../manager/checkpoint-manager.js";
import { Pipeline } from "../../pipeline/pipeline.js";
import type { PlanEstimate } from "../../pipeline/plan-estimate.js";
import type { PlannedStage } from "../../pipeline/types.js";
import { writeFileDurably } from "../../util/atomic-file.js";
import { UsageError } from "../exit-codes.js";
import { printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { storeArgs } from "../store-args.js";
import { addStoreOptions, type StoreFlags, withReader } from "../store-options.js";

interface ReportFlags extends StoreFlags {
  pipelineId: string;
  format?: ReportFormat;
  output?: string;
  pipelineFile?: string;
}

/** Report formats by `--output` extension; any other extension (or none) is text. */
const FORMAT_OF_EXTENSION: Readonly<Record<string, ReportFormat>> = {
  ".html": "html",
  ".htm": "html",
  ".md": "md",
  ".markdown": "md",
};

/** `--format` when given, else the one `--output`'s extension names (as `visualize` does), else text. */
function chosenFormat(format: ReportFormat | undefined, output: string | undefined): ReportFormat {
  if (format !== undefined) return format;
  return (output !== undefined && FORMAT_OF_EXTENSION[extname(output).toLowerCase()]) || "text";
}

/** Writes the file durably: a reader never sees half a report, and a failed write keeps the old one. */
async function writeReport(path: string, text: string): Promise<string> {
  const target = resolve(path);
  try {
    await writeFileDurably(target, text);
  } catch (error) {
    throw new InvalidArgumentError(`cannot write --output ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return target;
}

/** The planner's decisions for resuming the run under the given definition (a dry run: nothing is written). */
async function resumePlan(
  file: string,
  pipelineId: string,
  manager: CheckpointManager,
): Promise<{ resumePlan: PlannedStage[]; resumeEstimate?: PlanEstimate }> {
  const pipeline = await Pipeline.fromFile(file, { checkpointEnabled: true, checkpointStore: manager });
  const { stages, estimate } = await pipeline.execute({ runId: pipelineId, dryRun: true });
  return { resumePlan: stages, ...(estimate ? { resumeEstimate: estimate } : {}) };
}

/** Registers `cairn report`. */
export function registerReport(program: Command): void {
  const command = program
    .command("report")
    .summary("Write a run's recovery report (text, Markdown or HTML)")
    .description(
      "Write the recovery report of one run: summary, statistics, storage, the recommended recovery " +
        "point, failure points, recommendations and the command that resumes the run. With --pipeline-file, " +
        "also the resume plan: which stages a resume would skip, re-run and run under that definition, and why. " +
        "With --json the report data is printed as JSON (and --output still gets the rendered report). " +
        "Exits 0 even when the run has problems; 3 when it does not exist.",
    )
    .requiredOption("--pipeline-id <id>", "the run to report on")
    .addOption(
      new Option(
        "--format <format>",
        "text, md (Markdown) or html (default: from --output's extension, .html/.htm or .md/.markdown, else text)",
      ).choices(REPORT_FORMATS),
    )
    .option("--output <file>", "write the report to this file (replaced atomically) instead of stdout")
    .option(
      "--pipeline-file <path>",
      "the run's pipeline file: shows what a resume would skip, re-run and run, and completes the resume command",
    )
    .addHelpText(
      "after",
      examples(
        "cairn report --pipeline-id etl_pipeline_20240101T000000000Z_abc234",
        "cairn report --pipeline-id etl_20240101 --format html --output report.html --store sqlite:./cairn.db",
      ),
    );
  addStoreOptions(command).action(async (flags: ReportFlags, self: Command) => {
    if (flags.json && flags.format !== undefined && flags.output === undefined) {
      throw new UsageError("--json prints the report as JSON; --format applies only with --output <file>");
    }
    const args = storeArgs(self, ["pipelineId", "format", "output", "pipelineFile"]);
    await withReader(flags, async (manager) => {
      const report = await buildRecoveryReport(manager, flags.pipelineId, {
        storeArgs: args,
        ...(flags.pipelineFile !== undefined
          ? {
              pipelineFile: flags.pipelineFile,
              ...(await resumePlan(flags.pipelineFile, flags.pipelineId, manager)),
            }
          : {}),
      });
      const text = renderReport(report, chosenFormat(flags.format, flags.output));
      const written = flags.output !== undefined ? await writeReport(flags.output, text) : undefined;
      if (flags.json) printJson(report);
      else if (written !== undefined)
        printText(`Wrote the recovery report of ${flags.pipelineId} to ${written}`);
      else printText(text);
    });
  });
}
