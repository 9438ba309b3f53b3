/** `cairn import`: imports an exported checkpoint or run after verifying every checkpoint. */
import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type Command, InvalidArgumentError as CommanderArgumentError } from "commander";
import { CheckpointConflictError, type CheckpointManager } from "../../index.js";
import { UsageError } from "../exit-codes.js";
import { printJson, printText, warn } from "../output.js";
import { withProgress } from "../progress.js";
import { examples } from "../runs.js";
import { addCompressionOption, addStoreOptions, type StoreFlags, withManager } from "../store-options.js";

interface ImportFlags extends StoreFlags {
  input: string[];
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

/**
 * The files `--input` names: each file as given, and for a folder (`cairn export --thread` writes
 * one) every `.json` file directly in it, by name.
 */
async function inputFiles(inputs: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    const path = resolve(input);
    // A path that does not exist is left to the import, which says so the way it always has.
    const isDir = await stat(path).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isDir) {
      files.push(path);
      continue;
    }
    const names = (await readdir(path)).filter((n) => n.endsWith(".json")).sort();
    if (names.length === 0) throw new UsageError(`${path} holds no .json export file`);
    files.push(...names.map((n) => join(path, n)));
  }
  return files;
}

type ImportReport = Awaited<ReturnType<CheckpointManager["importPipeline"]>>;

async function importOne(
  manager: CheckpointManager,
  input: string,
  flags: ImportFlags,
): Promise<ImportReport> {
  const overwrite = flags.overwrite === true;
  try {
    return await withProgress(flags, (progress) =>
      manager.importPipeline(input, {
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
}

function reportJson(report: ImportReport, overwrite: boolean): Record<string, unknown> {
  const [checkpointId] = report.checkpointIds;
  return report.kind === "checkpoint"
    ? { kind: report.kind, checkpointId, overwrite }
    : { ...report, overwrite, checkpoints: report.checkpointIds.length };
}

function reportLine(report: ImportReport): string {
  if (report.kind === "checkpoint") return `Imported ${report.checkpointIds[0]}`;
  const n = report.checkpointIds.length;
  const replaced = report.replaced > 0 ? ` (replacing ${report.replaced} stored before)` : "";
  return `Imported run ${report.pipelineId}: ${n} checkpoint${n === 1 ? "" : "s"}${replaced}`;
}

/** Registers `cairn import`. */
export function registerImport(program: Command): void {
  const command = program
    .command("import")
    .summary("Import an exported checkpoint or run")
    .description(
      "Import a checkpoint or a whole run exported by `cairn export`; a modified file is refused, and " +
        "nothing is written when the checkpoint or run already exists (unless --overwrite). An encrypted " +
        "(sealed) export needs the key-encryption key its run key names (--key-file); the run keeps its data key. " +
        "Several files, or a folder (every .json in it: what `cairn export --thread` writes), are imported one " +
        "after the other, each run atomically; the first that fails stops the command",
    )
    .requiredOption(
      "--input <files...>",
      "export files to read (one checkpoint, or a run, each), or folders of them",
    )
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
        "cairn import --input thread-42/ --store postgres://localhost/cairn",
      ),
    );
  addStoreOptions(addCompressionOption(command)).action(async (flags: ImportFlags) => {
    const files = await inputFiles(flags.input);
    const overwrite = flags.overwrite === true;
    await withManager(flags, async (manager) => {
      // One plain file: the output it always had.
      if (files.length === 1 && flags.input.length === 1 && files[0] === resolve(flags.input[0] as string)) {
        const report = await importOne(manager, files[0] as string, flags);
        if (flags.json) printJson(reportJson(report, overwrite));
        else printText(reportLine(report));
        return;
      }
      const done: { input: string; report: ImportReport }[] = [];
      for (const input of files) {
        try {
          done.push({ input, report: await importOne(manager, input, flags) });
        } catch (error) {
          if (done.length > 0) {
            warn(
              `imported ${done.length} of ${files.length} files before ${input} failed: ` +
                done.map((d) => d.input).join(", "),
            );
          }
          throw error;
        }
        if (!flags.json) printText(reportLine((done.at(-1) as { report: ImportReport }).report));
      }
      if (flags.json)
        printJson({ files: done.map((d) => ({ input: d.input, ...reportJson(d.report, overwrite) })) });
    });
  });
}
