/**
 * `cairn export`: writes one checkpoint (`--checkpoint-id`), or every checkpoint of a run
 * (`--pipeline-id`), outputs inlined, to a self-contained JSON file.
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { CheckpointCorruptError, type CheckpointManager, type ExportForm } from "../../index.js";
import { UsageError } from "../exit-codes.js";
import { printJson, printText, warn } from "../output.js";
import { withProgress } from "../progress.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withReader } from "../store-options.js";

interface ExportFlags extends StoreFlags {
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

async function exportRun(
  manager: CheckpointManager,
  pipelineId: string,
  output: string,
  flags: ExportFlags,
): Promise<void> {
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
  if (flags.json) {
    printJson({
      pipelineId,
      output,
      checkpoints: report.checkpointIds.length,
      checkpointIds: report.checkpointIds,
      skipped: report.skipped,
      form: report.form,
    });
    return;
  }
  const left =
    report.skipped.length > 0 ? ` (${plural(report.skipped.length, "invalid checkpoint")} left out)` : "";
  printText(
    `Exported run ${pipelineId}: ${plural(report.checkpointIds.length, "checkpoint")} to ${output}${FORM_NOTE[report.form]}${left}`,
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
        "with its wrapped data key (the key file is needed to verify it and to import it), unless --decrypt",
    )
    .option("--checkpoint-id <id>", "the checkpoint to export")
    .option("--pipeline-id <id>", "export every checkpoint of this run, oldest first")
    .requiredOption("--output <file>", "file to write (replaced if it exists)")
    .option(
      "--skip-corrupt",
      "with --pipeline-id: leave out invalid checkpoints (those that fail verification)",
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
      ),
    );
  addStoreOptions(command).action(async (flags: ExportFlags) => {
    const byId = flags.checkpointId !== undefined;
    const byRun = flags.pipelineId !== undefined;
    if (byId === byRun) {
      throw new UsageError(
        byId
          ? "--checkpoint-id and --pipeline-id cannot be combined: export one checkpoint or one run"
          : "say what to export: --checkpoint-id <id> or --pipeline-id <id>",
      );
    }
    if (byId && flags.skipCorrupt) throw new UsageError("--skip-corrupt applies to --pipeline-id only");
    await withReader(flags, async (manager) => {
      const output = resolve(flags.output);
      if (flags.pipelineId !== undefined) return exportRun(manager, flags.pipelineId, output, flags);
      const checkpointId = flags.checkpointId as string;
      const form = await manager.exportCheckpoint(checkpointId, output, { decrypt: flags.decrypt === true });
      if (flags.json) printJson({ checkpointId, output, form });
      else printText(`Exported ${checkpointId} to ${output}${FORM_NOTE[form]}`);
    });
  });
}
