/** `cairn import`: imports an exported checkpoint file after verifying it. */
import { resolve } from "node:path";
import type { Command } from "commander";
import { CheckpointConflictError } from "../../index.js";
import { printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withManager } from "../store-options.js";

interface ImportFlags extends StoreFlags {
  input: string;
  overwrite?: boolean;
}

/** Registers `cairn import`. */
export function registerImport(program: Command): void {
  const command = program
    .command("import")
    .summary("Import an exported checkpoint file")
    .description("Import a checkpoint exported by `cairn export`; a modified file is refused")
    .requiredOption("--input <file>", "export file to read")
    .option("--overwrite", "replace a checkpoint that already exists with the same id")
    .addHelpText("after", examples("cairn import --input load.json --store sqlite:./cairn.db"));
  addStoreOptions(command).action(async (flags: ImportFlags) => {
    await withManager(flags, async (manager) => {
      let checkpointId: string;
      try {
        checkpointId = await manager.importCheckpoint(resolve(flags.input), {
          overwrite: flags.overwrite === true,
        });
      } catch (error) {
        // The library's message speaks of an option; the user needs the flag's name.
        if (error instanceof CheckpointConflictError) {
          throw new CheckpointConflictError(
            error.id,
            `Checkpoint ${error.id} already exists in the store; pass --overwrite to replace it`,
          );
        }
        throw error;
      }
      if (flags.json) printJson({ checkpointId, overwrite: flags.overwrite === true });
      else printText(`Imported ${checkpointId}`);
    });
  });
}
