/** `cairn validate`: verifies checkpoints and reports every problem found. */
import type { Command } from "commander";
import type { CheckpointManager, HistoryFinding, RunValidation, ValidationProblem } from "../../index.js";
import { STATUS_SYMBOLS } from "../../manager/chain-text.js";
import { CommandExit, ExitCode, UsageError } from "../exit-codes.js";
import { printJson, printText } from "../output.js";
import { type ProgressLine, withProgress } from "../progress.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withManager } from "../store-options.js";

interface ValidateFlags extends StoreFlags {
  pipelineId?: string;
  checkpointId?: string;
  all?: boolean;
}

/** One problem, with the checkpoint (or, for an unparseable entry, the location) it is about. */
interface FoundProblem extends ValidationProblem {
  pipelineId: string | null;
  checkpointId: string | null;
  /** Where an unparseable entry is (file path, row key); null for checkpoints that parse. */
  location: string | null;
}

/** A run's history compared with its head record: lost history (`problem`), or information. */
interface FoundHistory {
  pipelineId: string;
  kind: HistoryFinding["kind"];
  problem: boolean;
  message: string;
  missing: HistoryFinding["missing"] | null;
}

interface ValidationReport {
  scope: { pipelineId: string } | { checkpointId: string } | { all: true };
  runsChecked: number;
  checkpointsChecked: number;
  valid: boolean;
  problems: FoundProblem[];
  /** Per run, what the comparison with its head record found; `problem` ones make it invalid. */
  history: FoundHistory[];
}

/** Adds a run walk's problems to the report; checkpoints deleted during the walk were not checked. */
function addRun(report: ValidationReport, run: RunValidation): void {
  report.runsChecked++;
  report.checkpointsChecked += run.summary.listed - run.summary.gone;
  for (const v of run.checkpoints) {
    for (const p of v.problems) {
      report.problems.push({
        pipelineId: run.pipelineId,
        checkpointId: v.checkpointId,
        location: v.corrupt?.location ?? null,
        ...p,
      });
    }
  }
  for (const f of run.history) {
    const { kind, problem, message } = f;
    report.history.push({ pipelineId: run.pipelineId, kind, problem, message, missing: f.missing ?? null });
  }
}

function scopeOf(flags: ValidateFlags): ValidationReport["scope"] {
  const given = [
    flags.pipelineId !== undefined ? "--pipeline-id" : undefined,
    flags.checkpointId !== undefined ? "--checkpoint-id" : undefined,
    flags.all ? "--all" : undefined,
  ].filter((f) => f !== undefined);
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0
        ? "say what to validate: --pipeline-id <id>, --checkpoint-id <id> or --all"
        : `${given.join(", ")} cannot be combined: validate one run, one checkpoint, or --all`,
    );
  }
  if (flags.pipelineId !== undefined) return { pipelineId: flags.pipelineId };
  if (flags.checkpointId !== undefined) return { checkpointId: flags.checkpointId };
  return { all: true };
}

async function validate(
  manager: CheckpointManager,
  scope: ValidationReport["scope"],
  progress: ProgressLine,
): Promise<ValidationReport> {
  const report: ValidationReport = {
    scope,
    runsChecked: 0,
    checkpointsChecked: 0,
    valid: true,
    problems: [],
    history: [],
  };
  if ("checkpointId" in scope) {
    const result = await manager.validateCheckpoint(scope.checkpointId);
    report.checkpointsChecked = 1;
    for (const p of result.problems) {
      report.problems.push({ pipelineId: null, checkpointId: scope.checkpointId, location: null, ...p });
    }
  } else if ("pipelineId" in scope) {
    const onProgress = (done: number, total: number) =>
      progress.count("validating", done, total, "checkpoints");
    addRun(report, await manager.validateRun(scope.pipelineId, { onProgress }));
  } else {
    const runs = await manager.validateAllRuns({
      onProgress: (done, total, pipelineId) =>
        progress.count(`validating ${pipelineId}`, done, total, "checkpoints"),
    });
    for (const run of runs) addRun(report, run);
  }
  report.valid = report.problems.length === 0 && !report.history.some((h) => h.problem);
  return report;
}

function render(report: ValidationReport): string {
  const lines: string[] = [];
  let current: string | undefined;
  for (const p of report.problems) {
    const heading =
      p.location === null
        ? (p.checkpointId ?? "(unknown)")
        : p.checkpointId === null
          ? `${p.location} (unreadable entry)`
          : `${p.checkpointId} (unreadable entry: ${p.location})`;
    if (heading !== current) {
      lines.push(`${STATUS_SYMBOLS.corrupt} ${heading}`);
      current = heading;
    }
    lines.push(`    ${p.kind}: ${p.message}`);
  }
  for (const h of report.history) {
    if (h.problem) lines.push(`${STATUS_SYMBOLS.corrupt} run ${h.pipelineId}: ${h.kind}: ${h.message}`);
  }
  for (const h of report.history) {
    if (!h.problem && h.kind === "pruned") lines.push(`  run ${h.pipelineId}: ${h.message}`);
  }
  const runs =
    "checkpointId" in report.scope
      ? ""
      : ` in ${report.runsChecked} run${report.runsChecked === 1 ? "" : "s"}`;
  const checked = `Checked ${report.checkpointsChecked} checkpoint${report.checkpointsChecked === 1 ? "" : "s"}${runs}`;
  if (report.valid) lines.push(`${checked}: all valid.`);
  else {
    const subjects = new Set(report.problems.map((p) => p.checkpointId ?? p.location)).size;
    const lost = new Set(report.history.filter((h) => h.problem).map((h) => h.pipelineId)).size;
    const parts = [];
    if (report.problems.length > 0) {
      parts.push(
        `${report.problems.length} problem${report.problems.length === 1 ? "" : "s"} in ${subjects} checkpoint${subjects === 1 ? "" : "s"}`,
      );
    }
    if (lost > 0) parts.push(`lost history in ${lost} run${lost === 1 ? "" : "s"}`);
    lines.push("", `${checked}: ${parts.join("; ")}.`);
  }
  return lines.join("\n");
}

/** Registers `cairn validate`. */
export function registerValidate(program: Command): void {
  const command = program
    .command("validate")
    .summary("Verify checkpoints and run history; exit 4 if any problem is found")
    .description(
      "Verify checksums, outputs and chain links, and that no run lost checkpoints it was written " +
        "(other than by retention); exit 4 if any problem is found",
    )
    .option("--pipeline-id <id>", "validate every checkpoint of this run")
    .option("--checkpoint-id <id>", "validate one checkpoint")
    .option("--all", "validate every checkpoint in the store")
    .addHelpText(
      "after",
      examples(
        "cairn validate --all --store sqlite:./cairn.db",
        "cairn validate --pipeline-id etl_20240101T000000000Z_abc234",
      ),
    );
  addStoreOptions(command).action(async (flags: ValidateFlags) => {
    const scope = scopeOf(flags);
    await withManager(flags, async (manager) => {
      const report = await withProgress(flags, (progress) => validate(manager, scope, progress));
      if (flags.json) printJson(report);
      else printText(render(report));
      if (!report.valid) {
        const count = report.problems.length + report.history.filter((h) => h.problem).length;
        throw new CommandExit(ExitCode.Corrupt, `validation found ${count} problem${count === 1 ? "" : "s"}`);
      }
    });
  });
}
