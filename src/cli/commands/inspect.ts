/** `cairn inspect`: everything about one checkpoint, including whether it verifies. */
import type { Command } from "commander";
import type { ValidationProblem } from "../../core/types.js";
import { describeAtRest } from "../../debug/at-rest-info.js";
import { type CheckpointInspection, inspectCheckpoint } from "../../debug/inspect.js";
import { renderThreadInspection } from "../../debug/thread-inspect.js";
import { CommandExit, ExitCode, UsageError } from "../exit-codes.js";
import { formatBytes, formatTable, formatTime, printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withReader } from "../store-options.js";
import { addThreadOptions, checkThreadFlags, type ThreadFlags } from "../thread-args.js";
import { threadPart } from "./inspect-thread.js";

interface InspectFlags extends StoreFlags, ThreadFlags {
  checkpointId?: string;
}

const list = (items: readonly string[] | null, hidden = "(unreadable)") =>
  items === null ? hidden : items.length === 0 ? "(none)" : items.join(", ");

/** Problems that keep the content from being shown, in words (`checksum mismatch`). */
const WITHHELD: Partial<Record<ValidationProblem["kind"], string>> = {
  checksum_mismatch: "checksum mismatch",
  output_missing: "an output is missing",
  output_hash_mismatch: "an output does not match its hash",
  invalid_metadata: "invalid metadata",
};

/** What a field shows when the checkpoint's content cannot be shown: why, not just "unreadable". */
function withheld(report: CheckpointInspection): string {
  if (report.keyMissing) return `(encrypted under key id ${report.keyMissing.keyId})`;
  const reasons = [...new Set(report.validation.problems.map((p) => WITHHELD[p.kind]))].filter(
    (r): r is string => r !== undefined,
  );
  return reasons.length > 0 ? `(not shown: ${reasons.join(", ")})` : "(unreadable)";
}

function render(report: CheckpointInspection): string {
  const m = report.metadata;
  const hidden = withheld(report);
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
      ...(report.atRest ? ([["At rest", describeAtRest(report.atRest)]] as [string, string][]) : []),
    ];
    for (const [label, value] of fields) lines.push(`  ${`${label}:`.padEnd(16)}${value}`);
  } else {
    lines.push("  Metadata:       (unreadable)");
  }
  const known = report.outputVersions !== null;
  lines.push("", `Pipeline version: ${report.pipelineVersion ?? (known ? "(none)" : hidden)}`);
  lines.push(`Completed stages: ${list(report.completedStages, hidden)}`);
  lines.push(`Pending stages:   ${list(report.pendingStages, hidden)}`);
  lines.push(`State keys:       ${list(report.stateKeys, hidden)}`);
  if (report.outputs === null) lines.push(`Outputs:          ${hidden}`);
  else if (report.outputs.length === 0) lines.push("Outputs:          (none)");
  else {
    const rows = report.outputs.map((o) => {
      const migration = report.outputMigrations?.[o.stage];
      return [
        `  ${o.stage}`,
        formatBytes(o.bytes),
        `v${report.outputVersions?.[o.stage] ?? 1}`,
        migration
          ? `migrated from v${migration.from}${migration.by !== undefined ? ` by pipeline ${migration.by}` : ""}`
          : "",
      ];
    });
    lines.push("Outputs:", formatTable(["  STAGE", "SIZE", "VERSION", "ORIGIN"], rows, ["left", "right"]));
  }
  const parent = report.parentCheckpointId;
  if (m === null) lines.push("", "Parent:   (unknown)", "Children: (unknown)");
  else {
    const gone = report.parentInStore ? "" : " (no longer in the store)";
    lines.push("", `Parent:   ${parent === null ? "(none)" : parent + gone}`);
    lines.push(`Children: ${list(report.children)}`);
  }
  lines.push("");
  if (report.keyMissing) {
    lines.push(
      `Data:       encrypted under key id ${report.keyMissing.keyId}; not shown and not verified`,
      `            ${report.keyMissing.message}`,
    );
  } else if (report.validation.valid) lines.push("Validation: valid");
  else {
    const count = report.validation.problems.length;
    const handled = report.validation.quarantined ? ", quarantined (resume skips it)" : "";
    lines.push(`Validation: invalid${handled}, ${count} problem${count === 1 ? "" : "s"}`);
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
      "Show a checkpoint's metadata, how it is stored at rest, stages, state keys, outputs, validation, parent " +
        "and children (exit 4 if it is invalid; exit 7, after the metadata, if it is encrypted under a key not given)",
    )
    .option(
      "--checkpoint-id <id>",
      "the checkpoint to inspect; with --thread also its LangGraph id, or part of it (default: the latest)",
    )
    .addHelpText(
      "after",
      examples(
        "cairn inspect --checkpoint-id etl_load_20240101T000000000Z_abcd2345",
        "cairn inspect --thread support-42 --store sqlite:./graph.db",
        "cairn inspect --thread support-42 --namespace child:3ec1fe96-4c95-5aef-8806-c52e232d4bbe --checkpoint-id 99c8-6bc0",
      ),
    );
  addThreadOptions(
    command,
    "a checkpoint of this thread (the root graph's, or --namespace's), by --checkpoint-id or the latest",
  );
  addStoreOptions(command).action(async (flags: InspectFlags) => {
    checkThreadFlags(flags);
    if (flags.checkpointId === undefined && flags.thread === undefined)
      throw new UsageError("say what to inspect: --checkpoint-id <id>, or --thread <thread_id>");
    await withReader(flags, async (manager) => {
      const { checkpointId, langgraph } = await threadPart(manager, flags);
      const report = await inspectCheckpoint(manager, checkpointId);
      if (flags.json) printJson(langgraph ? { ...report, langgraph } : report);
      else
        printText(render(report) + (langgraph ? `\n\n${renderThreadInspection(langgraph).join("\n")}` : ""));
      if (report.keyMissing) throw new CommandExit(ExitCode.KeyMissing, "");
      if (!report.validation.valid) {
        throw new CommandExit(ExitCode.Corrupt, `checkpoint ${checkpointId} is invalid`);
      }
    });
  });
}
