/** `cairn chain`: a run's checkpoint chain, oldest first, with a status symbol per checkpoint. */
import type { Command } from "commander";
import { printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withReader } from "../store-options.js";

interface ChainFlags extends StoreFlags {
  pipelineId: string;
}

/** Registers `cairn chain`. */
export function registerChain(program: Command): void {
  const command = program
    .command("chain")
    .summary("Show a run's checkpoint chain")
    .description("Show a run's checkpoint chain as text, oldest first")
    .requiredOption("--pipeline-id <id>", "the run to show")
    .addHelpText("after", examples("cairn chain --pipeline-id etl_20240101T000000000Z_abc234"));
  addStoreOptions(command).action(async (flags: ChainFlags) => {
    await withReader(flags, async (manager) => {
      // A mistyped id is CAIRN_NOT_FOUND (exit 3), not an empty chain.
      await manager.listRun(flags.pipelineId);
      const text = await manager.visualizeCheckpointChain(flags.pipelineId);
      if (flags.json) printJson({ pipelineId: flags.pipelineId, text });
      else printText(text);
    });
  });
}
