/** `cairn export`: writes one checkpoint, outputs inlined, to a self-contained JSON file. */
import { resolve } from "node:path";
import type { Command } from "commander";
import { printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withManager } from "../store-options.js";

interface ExportFlags extends StoreFlags {
  checkpointId: string;
  output: string;
}

/** Registers `cairn export`. */
export function registerExport(program: Command): void {
  const command = program
    .command("export")
    .summary("Export a checkpoint to a JSON file")
    .description("Export a verified checkpoint to a JSON file that any store can import")
    .requiredOption("--checkpoint-id <id>", "the checkpoint to export")
    .requiredOption("--output <file>", "file to write (replaced if it exists)")
    .addHelpText(
      "after",
      examples("cairn export --checkpoint-id etl_load_20240101T000000000Z_abcd2345 --output load.json"),
    );
  addStoreOptions(command).action(async (flags: ExportFlags) => {
    await withManager(flags, async (manager) => {
      const output = resolve(flags.output);
      await manager.exportCheckpoint(flags.checkpointId, output);
      if (flags.json) printJson({ checkpointId: flags.checkpointId, output });
      else printText(`Exported ${flags.checkpointId} to ${output}`);
    });
  });
}
