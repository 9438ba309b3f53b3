/** `cairn rekey`: re-wraps runs' data keys under another key-encryption key (key rotation). */
import type { Command } from "commander";
import type { RekeyReport } from "../../index.js";
import { UsageError } from "../exit-codes.js";
import { printJson, printText } from "../output.js";
import { withProgress } from "../progress.js";
import { examples } from "../runs.js";
import { addStoreOptions, keyFilePath, type StoreFlags, withManager } from "../store-options.js";

interface RekeyFlags extends StoreFlags {
  run?: string;
  to?: string;
}

function render(report: RekeyReport): string {
  const runs = (n: number) => `${n} run${n === 1 ? "" : "s"}`;
  return [
    `Re-wrapped ${runs(report.rewrapped)} under key ${report.toKeyId}`,
    `  already under ${report.toKeyId}: ${report.alreadyCurrent}`,
    `  not encrypted:       ${report.plaintext}`,
    `  runs looked at:      ${report.runs}`,
  ].join("\n");
}

/** Registers `cairn rekey`. */
export function registerRekey(program: Command): void {
  const command = program
    .command("rekey")
    .summary("Re-wrap encrypted runs under another key (key rotation)")
    .description(
      "Re-wrap each encrypted run's data key under a key of the key file (default: its active key), " +
        "without rewriting data. Afterwards the old key can be removed from the key file. Safe to " +
        "stop and run again: runs already under the key are skipped.",
    )
    .option("--run <id>", "only this run (default: every run in the store)")
    .option("--to <key-id>", "the key to wrap under (default: the key file's active key)")
    .addHelpText(
      "after",
      examples(
        "cairn keys generate --key-file ./cairn.keys    # adds k2 and makes it active",
        "cairn rekey --key-file ./cairn.keys --store sqlite:./cairn.db",
      ),
    );
  addStoreOptions(command).action(async (flags: RekeyFlags) => {
    if (keyFilePath(flags) === undefined)
      throw new UsageError("rekey needs the key file: --key-file <path> (or CAIRN_KEY_FILE)");
    await withManager(flags, async (manager) => {
      const report = await withProgress(flags, (progress) =>
        manager.rekey({
          ...(flags.run !== undefined ? { pipelineId: flags.run } : {}),
          ...(flags.to !== undefined ? { toKeyId: flags.to } : {}),
          onProgress: (done, total) => progress.count("re-wrapping", done, total, "runs"),
        }),
      );
      if (flags.json) printJson(report);
      else printText(render(report));
    });
  });
}
