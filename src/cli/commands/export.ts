/**
 * `cairn export`: writes one checkpoint (`--checkpoint-id`), or every checkpoint of a run
 * (`--pipeline-id`), outputs inlined, to a self-contained JSON file.
 */
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { findThreadRun, threadRunIds } from "../../debug/thread.js";
import {
  CheckpointCorruptError,
  type CheckpointManager,
  type ExportForm,
  type RunExportReport,
} from "../../index.js";
import { UsageError } from "../exit-codes.js";
import { printJson, printText, warn } from "../output.js";
import { withProgress } from "../progress.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withReader } from "../store-options.js";
import { addThreadOptions, checkThreadFlags, type ThreadFlags } from "../thread-args.js";

interface ExportFlags extends StoreFlags, ThreadFlags {
  checkpointId?: string;
  pipelineId?: string;
  output: string;
  skipCorrupt?: boolean;
  decrypt?: boolean;
}

/** What the printed line adds for each way a run's data can be in the file. */
const FORM_NOTE: Record<ExportForm, string> = {
  plain: "",
  sealed: ", encrypted (the key-encryption key is needed to import it)",
  decrypted: ", decrypted on purpose (outputs re-addressed by SHA-256, checksums recomputed)",
};

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** Exports one run and warns about what it left out; printing the result is the caller's. */
async function exportOne(
  manager: CheckpointManager,
  pipelineId: string,
  output: string,
  flags: ExportFlags,
): Promise<RunExportReport> {
  let report: Awaited<ReturnType<CheckpointManager["exportPipeline"]>>;
  try {
    report = await withProgress(flags, (progress) =>
      manager.exportPipeline(pipelineId, output, {
        skipCorrupt: flags.skipCorrupt === true,
        decrypt: flags.decrypt === true,
        onProgress: (done, total) => progress.count("exporting", done, total, "checkpoints"),
      }),
    );
  } catch (error) {
    // The library's message speaks of an option; the user needs the flag's name.
    if (error instanceof CheckpointCorruptError && error.problems.some((p) => p.includes("skipCorrupt"))) {
      throw new CheckpointCorruptError(
        error.checkpointId,
        error.problems.map((p) => p.replace("export with skipCorrupt", "pass --skip-corrupt")),
      );
    }
    throw error;
  }
  for (const s of report.skipped) {
    warn(`left out invalid checkpoint ${s.checkpointId ?? s.location}: ${s.reason}`);
  }
  return report;
}

/** The JSON of one run export. */
const runJson = (report: RunExportReport) => ({
  pipelineId: report.pipelineId,
  output: report.path,
  checkpoints: report.checkpointIds.length,
  checkpointIds: report.checkpointIds,
  skipped: report.skipped,
  form: report.form,
});

/** The line printed for one run export. */
function runLine(report: RunExportReport): string {
  const left =
    report.skipped.length > 0 ? ` (${plural(report.skipped.length, "invalid checkpoint")} left out)` : "";
  return `Exported run ${report.pipelineId}: ${plural(report.checkpointIds.length, "checkpoint")} to ${report.path}${FORM_NOTE[report.form]}${left}`;
}

async function exportRun(
  manager: CheckpointManager,
  pipelineId: string,
  output: string,
  flags: ExportFlags,
): Promise<void> {
  const report = await exportOne(manager, pipelineId, output, flags);
  if (flags.json) return printJson(runJson(report));
  printText(runLine(report));
}

/**
 * `--thread`: every namespace of the thread (or `--namespace`'s) to a file of its own,
 * `<dir>/<run id>.json`; `cairn import --input <dir>` imports them all.
 */
async function exportThread(
  manager: CheckpointManager,
  thread: string,
  dir: string,
  flags: ExportFlags,
): Promise<void> {
  const runIds =
    flags.namespace === undefined
      ? await threadRunIds(manager, thread)
      : [await findThreadRun(manager, thread, flags.namespace)];
  await mkdir(dir, { recursive: true });
  const reports: RunExportReport[] = [];
  for (const runId of runIds)
    reports.push(await exportOne(manager, runId, join(dir, `${runId}.json`), flags));
  if (flags.json) return printJson({ threadId: thread, output: dir, runs: reports.map(runJson) });
  for (const report of reports) printText(runLine(report));
  printText(
    `Exported LangGraph thread ${JSON.stringify(thread)}: ${plural(reports.length, "namespace run")} to ${dir}; ` +
      "import them all with `cairn import --input <dir>`",
  );
}

/** Registers `cairn export`. */
export function registerExport(program: Command): void {
  const command = program
    .command("export")
    .summary("Export a checkpoint, or a whole run, to a JSON file")
    .description(
      "Export a verified checkpoint (--checkpoint-id), or every checkpoint of a run (--pipeline-id), " +
        "to a JSON file that any store can import. An encrypted run is exported encrypted, as stored, " +
        "with its wrapped data key (the key file is needed to verify it and to import it), unless --decrypt. " +
        "--thread exports every namespace run of a LangGraph thread, one file each, into the --output folder",
    )
    .option("--checkpoint-id <id>", "the checkpoint to export")
    .option("--pipeline-id <id>", "export every checkpoint of this run, oldest first")
    .requiredOption(
      "--output <file>",
      "file to write (replaced if it exists); with --thread, a folder (created) that gets one <run id>.json per namespace",
    )
    .option(
      "--skip-corrupt",
      "with --pipeline-id or --thread: leave out invalid checkpoints (those that fail verification)",
    )
    .option(
      "--decrypt",
      "write an encrypted run in plaintext, on purpose (outputs re-addressed by SHA-256, checksums " +
        "recomputed); without it an encrypted run is exported encrypted",
    )
    .addHelpText(
      "after",
      examples(
        "cairn export --checkpoint-id etl_load_20240101T000000000Z_abcd2345 --output load.json",
        "cairn export --pipeline-id etl_20240101T000000000Z_abc234 --output run.json",
        "cairn export --pipeline-id etl_20240101T000000000Z_abc234 --output plain.json --decrypt --key-file keys.json",
        "cairn export --thread support-42 --output thread-42/ --store sqlite:./graph.db",
      ),
    );
  addThreadOptions(
    command,
    "export every namespace of this thread, one run file each, into the --output folder",
  );
  addStoreOptions(command).action(async (flags: ExportFlags) => {
    checkThreadFlags(flags);
    const given = [flags.checkpointId, flags.pipelineId, flags.thread].filter((f) => f !== undefined).length;
    if (given !== 1) {
      throw new UsageError(
        given > 1
          ? "--checkpoint-id, --pipeline-id and --thread cannot be combined: export one checkpoint, one run or one thread"
          : "say what to export: --checkpoint-id <id>, --pipeline-id <id> or --thread <thread_id>",
      );
    }
    if (flags.checkpointId !== undefined && flags.skipCorrupt)
      throw new UsageError("--skip-corrupt applies to --pipeline-id and --thread only");
    await withReader(flags, async (manager) => {
      const output = resolve(flags.output);
      if (flags.thread !== undefined) return exportThread(manager, flags.thread, output, flags);
      if (flags.pipelineId !== undefined) return exportRun(manager, flags.pipelineId, output, flags);
      const checkpointId = flags.checkpointId as string;
      const form = await manager.exportCheckpoint(checkpointId, output, { decrypt: flags.decrypt === true });
      if (flags.json) printJson({ checkpointId, output, form });
      else printText(`Exported ${checkpointId} to ${output}${FORM_NOTE[form]}`);
    });
  });
}
