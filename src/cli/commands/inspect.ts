/** `cairn inspect`: everything about one checkpoint, including whether it verifies. */
import type { Command } from "commander";
import { type CheckpointInspection, inspectCheckpoint } from "../../debug/inspect.js";
import { CommandExit, ExitCode } from "../exit-codes.js";
import { formatBytes, formatTable, formatTime, printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withManager } from "../store-options.js";

interface InspectFlags extends StoreFlags {
  checkpointId: string;
}

const list = (items: readonly string[] | null) =>
  items === null ? "(unreadable)" : items.length === 0 ? "(none)" : items.join(", ");

function render(report: CheckpointInspection): string {
  const m = report.metadata;
  const lines = [`Checkpoint ${report.checkpointId}`];
  if (m) {
    const fields: [string, string][] = [
      ["Pipeline", `${m.pipelineId} (${m.pipelineName})`],
      ["Stage", `${m.stageName} (index ${m.stageIndex})`],
      ["Sequence", `#${m.sequence}`],
      ["Status", m.status + (m.errorMessage ? ` (error: ${m.errorMessage})` : "")],
      ["Created", formatTime(m.timestamp)],
      ["Size", formatBytes(m.dataSize)],
      ["Checksum", m.checksum],
      ["Resume count", String(m.resumeCount)],
      ["Format version", String(m.formatVersion)],
    ];
    for (const [label, value] of fields) lines.push(`  ${`${label}:`.padEnd(16)}${value}`);
  } else {
    lines.push("  Metadata:       (unreadable)");
  }
  lines.push("", `Completed stages: ${list(report.completedStages)}`);
  lines.push(`Pending stages:   ${list(report.pendingStages)}`);
  lines.push(`State keys:       ${list(report.stateKeys)}`);
  if (report.outputs === null) lines.push("Outputs:          (unreadable)");
  else if (report.outputs.length === 0) lines.push("Outputs:          (none)");
  else {
    const rows = report.outputs.map((o) => [`  ${o.stage}`, formatBytes(o.bytes)]);
    lines.push("Outputs:", formatTable(["  STAGE", "SIZE"], rows, ["left", "right"]));
  }
  const parent = report.parentCheckpointId;
  if (m === null) lines.push("", "Parent:   (unknown)", "Children: (unknown)");
  else {
    const gone = report.parentInStore ? "" : " (no longer in the store)";
    lines.push("", `Parent:   ${parent === null ? "(none)" : parent + gone}`);
    lines.push(`Children: ${list(report.children)}`);
  }
  lines.push("");
  if (report.validation.valid) lines.push("Validation: valid");
  else {
    const count = report.validation.problems.length;
    lines.push(`Validation: ${count} problem${count === 1 ? "" : "s"}`);
    for (const p of report.validation.problems) lines.push(`  - ${p.kind}: ${p.message}`);
  }
  return lines.join("\n");
}

/** Registers `cairn inspect`. */
export function registerInspect(program: Command): void {
  const command = program
    .command("inspect")
    .summary("Show everything about one checkpoint")
    .description(
      "Show a checkpoint's metadata, stages, state keys, outputs, validation, parent and children (exit 4 if it is corrupt)",
    )
    .requiredOption("--checkpoint-id <id>", "the checkpoint to inspect")
    .addHelpText("after", examples("cairn inspect --checkpoint-id etl_load_20240101T000000000Z_abcd2345"));
  addStoreOptions(command).action(async (flags: InspectFlags) => {
    await withManager(flags, async (manager) => {
      const report = await inspectCheckpoint(manager, flags.checkpointId);
      if (flags.json) printJson(report);
      else printText(render(report));
      if (!report.validation.valid) {
        throw new CommandExit(ExitCode.Corrupt, `checkpoint ${flags.checkpointId} is corrupt`);
      }
    });
  });
}
