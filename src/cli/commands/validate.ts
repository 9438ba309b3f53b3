/** `cairn validate`: verifies checkpoints and reports every problem found. */
import type { Command } from "commander";
import { findThreadRun, threadRunIds } from "../../debug/thread.js";
import type { CheckpointManager, HistoryFinding, RunValidation, ValidationProblem } from "../../index.js";
import { CHECK_SYMBOLS } from "../../manager/chain-text.js";
import { CommandExit, ExitCode, UsageError } from "../exit-codes.js";
import { printJson, printText } from "../output.js";
import { type ProgressLine, withProgress } from "../progress.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, withReader } from "../store-options.js";
import { addThreadOptions, checkThreadFlags, type ThreadFlags } from "../thread-args.js";

interface ValidateFlags extends StoreFlags, ThreadFlags {
  pipelineId?: string;
  checkpointId?: string;
  all?: boolean;
  strict?: boolean;
}

/** One problem, with the checkpoint (or, for an unparseable entry, the location) it is about. */
interface FoundProblem extends ValidationProblem {
  pipelineId: string | null;
  checkpointId: string | null;
  /** Where an unparseable entry is (file path, row key); null for checkpoints that parse. */
  location: string | null;
  /** The checkpoint was quarantined by `cairn repair`: reported, a failure only with `--strict`. */
  quarantined: boolean;
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
  scope:
    | { pipelineId: string }
    | { checkpointId: string }
    | { all: true }
    | { threadId: string; namespace: string | null; runIds: string[] };
  runsChecked: number;
  checkpointsChecked: number;
  /** False when a checkpoint is invalid and not quarantined (with `--strict`: when any is invalid). */
  valid: boolean;
  /** Quarantined checkpoints among the invalid ones. */
  quarantined: number;
  strict: boolean;
  problems: FoundProblem[];
  /** Per run, what the comparison with its head record found; `problem` ones make it invalid. */
  history: FoundHistory[];
}

/** Adds a run walk's problems to the report; checkpoints deleted during the walk were not checked. */
function addRun(report: ValidationReport, run: RunValidation): void {
  report.runsChecked++;
  report.checkpointsChecked += run.summary.listed - run.summary.gone;
  report.quarantined += run.summary.quarantined;
  for (const v of run.checkpoints) {
    for (const p of v.problems) {
      report.problems.push({
        pipelineId: run.pipelineId,
        checkpointId: v.checkpointId,
        location: v.corrupt?.location ?? null,
        quarantined: v.quarantined,
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
    flags.thread !== undefined ? "--thread" : undefined,
  ].filter((f) => f !== undefined);
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0
        ? "say what to validate: --pipeline-id <id>, --checkpoint-id <id>, --thread <thread_id> or --all"
        : `${given.join(", ")} cannot be combined: validate one run, one checkpoint, one thread, or --all`,
    );
  }
  if (flags.thread !== undefined)
    return { threadId: flags.thread, namespace: flags.namespace ?? null, runIds: [] };
  if (flags.pipelineId !== undefined) return { pipelineId: flags.pipelineId };
  if (flags.checkpointId !== undefined) return { checkpointId: flags.checkpointId };
  return { all: true };
}

async function validate(
  manager: CheckpointManager,
  scope: ValidationReport["scope"],
  strict: boolean,
  progress: ProgressLine,
): Promise<ValidationReport> {
  const report: ValidationReport = {
    scope,
    runsChecked: 0,
    checkpointsChecked: 0,
    valid: true,
    quarantined: 0,
    strict,
    problems: [],
    history: [],
  };
  if ("checkpointId" in scope) {
    const result = await manager.validateCheckpoint(scope.checkpointId);
    report.checkpointsChecked = 1;
    if (result.quarantined) report.quarantined = 1;
    for (const p of result.problems) {
      const { quarantined } = result;
      report.problems.push({
        pipelineId: null,
        checkpointId: scope.checkpointId,
        location: null,
        quarantined,
        ...p,
      });
    }
  } else if ("threadId" in scope) {
    // Every namespace of the thread is a run of its own; a fork in one is no problem (a tree).
    scope.runIds =
      scope.namespace === null
        ? await threadRunIds(manager, scope.threadId)
        : [await findThreadRun(manager, scope.threadId, scope.namespace)];
    for (const runId of scope.runIds) {
      const onProgress = (done: number, total: number) =>
        progress.count(`validating ${runId}`, done, total, "checkpoints");
      addRun(report, await manager.validateRun(runId, { onProgress }));
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
  report.valid = failing(report).length === 0 && !report.history.some((h) => h.problem);
  return report;
}

/** The problems that fail the command: all with `--strict`, else those of unquarantined checkpoints. */
function failing(report: ValidationReport): FoundProblem[] {
  return report.strict ? report.problems : report.problems.filter((p) => !p.quarantined);
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
      lines.push(
        p.quarantined
          ? `${CHECK_SYMBOLS.quarantined} ${heading} (quarantined)`
          : `${CHECK_SYMBOLS.invalid} ${heading}`,
      );
      current = heading;
    }
    lines.push(`    ${p.kind}: ${p.message}`);
  }
  for (const h of report.history) {
    if (h.problem) lines.push(`${CHECK_SYMBOLS.invalid} run ${h.pipelineId}: ${h.kind}: ${h.message}`);
  }
  for (const h of report.history) {
    if (!h.problem && h.kind === "pruned") lines.push(`  run ${h.pipelineId}: ${h.message}`);
  }
  const runs =
    "checkpointId" in report.scope
      ? ""
      : ` in ${report.runsChecked} run${report.runsChecked === 1 ? "" : "s"}` +
        ("threadId" in report.scope
          ? ` (namespaces of LangGraph thread ${JSON.stringify(report.scope.threadId)})`
          : "");
  const checked = `Checked ${report.checkpointsChecked} checkpoint${report.checkpointsChecked === 1 ? "" : "s"}${runs}`;
  if (report.problems.length === 0 && !report.history.some((h) => h.problem)) {
    lines.push(`${checked}: all valid.`);
  } else {
    const subjects = new Set(report.problems.map((p) => p.checkpointId ?? p.location)).size;
    const lost = new Set(report.history.filter((h) => h.problem).map((h) => h.pipelineId)).size;
    const parts = [];
    if (report.problems.length > 0) {
      const invalid = `${subjects} invalid checkpoint${subjects === 1 ? "" : "s"}`;
      const quarantined = report.quarantined > 0 ? ` (${report.quarantined} quarantined)` : "";
      const problems = `${report.problems.length} problem${report.problems.length === 1 ? "" : "s"}`;
      parts.push(`${invalid}${quarantined}, ${problems}`);
    }
    if (lost > 0) parts.push(`lost history in ${lost} run${lost === 1 ? "" : "s"}`);
    lines.push("", `${checked}: ${parts.join("; ")}.`);
    if (report.valid && report.problems.length > 0) {
      lines.push("Every invalid checkpoint is quarantined: resume skips them (--strict fails on them).");
    }
  }
  return lines.join("\n");
}

/** Registers `cairn validate`. */
export function registerValidate(program: Command): void {
  const command = program
    .command("validate")
    .summary("Verify checkpoints and run history; exit 4 if a checkpoint is invalid or history was lost")
    .description(
      "Verify checksums, outputs and chain links, and that no run lost checkpoints it was written " +
        "(other than by retention); exit 4 if any problem is found. A checkpoint quarantined by " +
        "`cairn repair` is a handled problem: reported, and exit 4 only with --strict",
    )
    .option("--pipeline-id <id>", "validate every checkpoint of this run")
    .option("--checkpoint-id <id>", "validate one checkpoint")
    .option("--all", "validate every checkpoint in the store")
    .option("--strict", "exit 4 on quarantined checkpoints too (by default they are reported only)")
    .addHelpText(
      "after",
      examples(
        "cairn validate --all --store sqlite:./cairn.db",
        "cairn validate --pipeline-id etl_20240101T000000000Z_abc234",
        "cairn validate --thread support-42 --store sqlite:./graph.db",
      ),
    );
  addThreadOptions(command, "validate every record of every namespace of this thread (a fork is no problem)");
  addStoreOptions(command).action(async (flags: ValidateFlags) => {
    checkThreadFlags(flags);
    const scope = scopeOf(flags);
    await withReader(flags, async (manager) => {
      const strict = flags.strict === true;
      const report = await withProgress(flags, (progress) => validate(manager, scope, strict, progress));
      if (flags.json) printJson(report);
      else printText(render(report));
      if (!report.valid) {
        const n = failing(report).length + report.history.filter((h) => h.problem).length;
        throw new CommandExit(ExitCode.Corrupt, `validation found ${n} problem${n === 1 ? "" : "s"}`);
      }
    });
  });
}
