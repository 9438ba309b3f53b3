/** `cairn import`: imports an exported checkpoint or run after verifying every checkpoint. */
import { resolve } from "node:path";
import { type Command, InvalidArgumentError as CommanderArgumentError } from "commander";
import { CheckpointConflictError } from "../../index.js";
import { printJson, printText } from "../output.js";
import { withProgress } from "../progress.js";
import { examples } from "../runs.js";
import { addCompressionOption, addStoreOptions, type StoreFlags, withManager } from "../store-options.js";

interface ImportFlags extends StoreFlags {
  input: string;
  overwrite?: boolean;
  maxBytes?: number;
}

const UNITS: Record<string, number> = {
  "": 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
};

/** `--max-bytes`: a whole number of bytes, optionally in KiB, MiB or GiB (`512MiB`, `2G`). */
function parseBytes(value: string): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(value.trim());
  const unit = match ? UNITS[(match[2] as string).toLowerCase()] : undefined;
  const bytes = match && unit !== undefined ? Number(match[1]) * unit : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1)
    throw new CommanderArgumentError("must be a positive number of bytes, optionally with KiB, MiB or GiB");
  return bytes;
}

const PHASES: Record<string, string> = { checking: "checking", writing: "importing" };

/** Registers `cairn import`. */
export function registerImport(program: Command): void {
  const command = program
    .command("import")
    .summary("Import an exported checkpoint or run")
    .description(
      "Import a checkpoint or a whole run exported by `cairn export`; a modified file is refused, and " +
        "nothing is written when the checkpoint or run already exists (unless --overwrite). An encrypted " +
        "(sealed) export needs the key-encryption key its run key names (--key-file); the run keeps its data key",
    )
    .requiredOption("--input <file>", "export file to read (one checkpoint, or a run)")
    .option("--overwrite", "replace the checkpoint, or the whole run, if it already exists")
    .option(
      "--max-bytes <size>",
      "refuse a file larger than this, before reading it (bytes, or e.g. 2GiB; default 1GiB)",
      parseBytes,
    )
    .addHelpText(
      "after",
      examples(
        "cairn import --input load.json --store sqlite:./cairn.db",
        "cairn import --input run.json --overwrite --strategy postgres --connection-string postgres://localhost/cairn",
      ),
    );
  addStoreOptions(addCompressionOption(command)).action(async (flags: ImportFlags) => {
    await withManager(flags, async (manager) => {
      const overwrite = flags.overwrite === true;
      let report: Awaited<ReturnType<typeof manager.importPipeline>>;
      try {
        report = await withProgress(flags, (progress) =>
          manager.importPipeline(resolve(flags.input), {
            overwrite,
            ...(flags.maxBytes !== undefined ? { maxImportBytes: flags.maxBytes } : {}),
            onProgress: (done, total, phase) =>
              progress.count(PHASES[phase] ?? phase, done, total, "checkpoints"),
          }),
        );
      } catch (error) {
        // The library's message speaks of an option; the user needs the flag's name.
        // (A clash with another run's checkpoint has no such hint: --overwrite cannot fix it.)
        if (error instanceof CheckpointConflictError && error.message.includes("import with overwrite")) {
          throw new CheckpointConflictError(
            error.id,
            error.message.replace("import with overwrite", "pass --overwrite"),
          );
        }
        throw error;
      }
      const [checkpointId] = report.checkpointIds;
      if (flags.json) {
        printJson(
          report.kind === "checkpoint"
            ? { kind: report.kind, checkpointId, overwrite }
            : { ...report, overwrite, checkpoints: report.checkpointIds.length },
        );
      } else if (report.kind === "checkpoint") printText(`Imported ${checkpointId}`);
      else {
        const n = report.checkpointIds.length;
        const replaced = report.replaced > 0 ? ` (replacing ${report.replaced} stored before)` : "";
        printText(`Imported run ${report.pipelineId}: ${n} checkpoint${n === 1 ? "" : "s"}${replaced}`);
      }
    });
  });
}
