/**
 * The live display of `cairn run`: on a terminal, the per-stage progress block is redrawn in
 * place on every event; elsewhere (CI logs, pipes) each event is one plain, timestamped line.
 */
import type { DryRunResult, Pipeline, PipelineEvent, PipelineResults } from "../../index.js";

const time = (d: Date) => d.toISOString().slice(11, 19);
const ms = (v: number) => (v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`);

/** Plain-text line for an event, or undefined for events not worth a line. */
export function eventLine(event: PipelineEvent): string | undefined {
  const at = time(event.at);
  switch (event.type) {
    case "run_started":
      return `${at} run ${event.pipelineId} started`;
    case "run_resumed":
      return `${at} resuming run ${event.pipelineId} from checkpoint ${event.checkpointId} (next stage: ${event.resumeFromStage ?? "none"})`;
    case "stage_started":
      return `${at} ▶ ${event.stageName} started${event.attempt > 1 ? ` (attempt ${event.attempt})` : ""}`;
    case "stage_skipped":
      return `${at} ↷ ${event.stageName} skipped: completed in a valid checkpoint`;
    case "stage_migrated":
      return `${at} ⇢ ${event.stageName} migrated: its stored output converted from version ${event.fromVersion} to ${event.toVersion} (not run)`;
    case "stage_rerun":
      return `${at} ↻ ${event.stageName} runs again: ${event.reason}`;
    case "stage_retry":
      return `${at} ⟳ ${event.stageName} attempt ${event.attempt} failed (${event.error.message}); retrying in ${ms(event.delayMs)}`;
    case "stage_completed":
      return `${at} ✓ ${event.stageName} completed in ${ms(event.durationMs)}`;
    case "stage_failed":
      return `${at} ✗ ${event.stageName} failed: ${event.error.message}`;
    case "checkpoint_created":
      return `${at}   checkpoint ${event.checkpointId}`;
    case "run_paused":
      return `${at} paused; pending: ${event.pendingStages.join(", ")}`;
    case "run_completed":
      return `${at} run ${event.pipelineId} completed in ${ms(event.durationMs)}`;
    case "run_failed":
      return `${at} run ${event.pipelineId} failed at ${event.stageName}`;
    case "history_lost":
      return `${at} ✗ run ${event.pipelineId} lost its history: ${event.expected} and every other checkpoint of it are gone`;
    case "replica_problem":
      return `${at} ⚠ replica ${event.replica} (${event.kind}): ${event.message}`;
    case "replica_synced":
      return `${at}   replica ${event.replica} caught up (${event.checkpointsCopied} checkpoint${event.checkpointsCopied === 1 ? "" : "s"} copied)`;
  }
}

/**
 * The last stage's output of a completed run, its plain fields one per line: a pipeline's last
 * stage typically says what it produced and where (a report's path, a database), and the run
 * should end by telling the user. Nested values are left to `--json`.
 */
function lastOutputLines(results: PipelineResults): string[] {
  const stages = Object.keys(results.stepsResults);
  const last = stages.at(-1);
  const output = last === undefined ? undefined : results.finalOutputs[last];
  if (output === null || output === undefined) return [];
  const cut = (text: string) => (text.length > 200 ? `${text.slice(0, 199)}…` : text);
  if (typeof output !== "object") return [`Output of ${last}: ${cut(String(output))}`];
  const plain = Object.entries(output as Record<string, unknown>).filter(
    ([, v]) => typeof v === "string" || typeof v === "number" || typeof v === "boolean",
  );
  if (plain.length === 0) return [];
  const width = Math.max(...plain.map(([k]) => k.length)) + 1;
  return [`Output of ${last}:`, ...plain.map(([k, v]) => `  ${`${k}:`.padEnd(width)} ${cut(String(v))}`)];
}

/** Writes progress to a stream, redrawing in place when it is a terminal. */
export class ProgressView {
  private drawn = 0;
  private readonly live: boolean;
  /** Stages started and not yet finished, in start order: several at once in a DAG pipeline. */
  private readonly running: string[] = [];

  constructor(private readonly out: NodeJS.WriteStream) {
    this.live = Boolean(out.isTTY) && process.env.TERM !== "dumb";
  }

  /** Shows one event. */
  update(event: PipelineEvent, pipeline: Pipeline | undefined): void {
    this.track(event);
    if (!this.live || !pipeline) {
      let line = eventLine(event);
      // Concurrent stages interleave their lines; say which ones are in flight.
      if (line && event.type === "stage_started" && this.running.length > 1)
        line += `  [${this.running.length} running: ${this.running.join(", ")}]`;
      if (line) this.out.write(`${line}\n`);
      return;
    }
    // Lines that matter after the run (resume point, reruns, failures) are kept above the block.
    if (
      event.type === "run_resumed" ||
      event.type === "history_lost" ||
      event.type === "replica_problem" ||
      event.type === "stage_rerun" ||
      event.type === "stage_migrated" ||
      event.type === "stage_failed" ||
      event.type === "stage_retry"
    ) {
      this.note(eventLine(event) as string);
    }
    this.clear();
    const block = pipeline.visualizeProgress();
    this.out.write(block);
    this.drawn = block.split("\n").length - 1;
  }

  private track(event: PipelineEvent): void {
    if (event.type === "stage_started") {
      if (!this.running.includes(event.stageName)) this.running.push(event.stageName);
    } else if (event.type === "stage_completed" || event.type === "stage_failed") {
      const at = this.running.indexOf(event.stageName);
      if (at >= 0) this.running.splice(at, 1);
    }
  }

  private clear(): void {
    // Back to the left edge first: the terminal's own echo (`^C`) may have moved the cursor, and
    // moving up keeps the column, so the next line would start mid-row after old text ("coSIGINT").
    this.out.write(`\r${this.drawn > 0 ? `\x1b[${this.drawn}A` : ""}\x1b[0J`);
    this.drawn = 0;
  }

  /** A message kept in the output (above the live block). */
  note(message: string): void {
    if (this.live) this.clear();
    this.out.write(`${message}\n`);
  }

  /** Leaves the last drawn block in place. */
  finish(): void {
    this.drawn = 0;
  }

  /** Prints a dry run's plan. */
  printPlan(plan: DryRunResult): void {
    const lines = [
      `Plan for ${plan.name}: ${plan.pipelineId ? `run ${plan.pipelineId}` : "a new run"}${plan.resumeFrom ? `, from checkpoint ${plan.resumeFrom}` : ""}`,
    ];
    if (plan.pipelineVersion !== undefined) lines.push(`  pipeline version ${plan.pipelineVersion}`);
    // Wide enough for the longest action shown (`migrate` only when a stage migrates).
    const width = Math.max(5, ...plan.stages.map((s) => s.action.length));
    for (const s of plan.stages) {
      // Salvage may reuse a stage's output from an older checkpoint than the one resumed from.
      const older =
        s.source !== undefined && s.source !== plan.resumeFrom ? ` [output from ${s.source}]` : "";
      lines.push(
        `  ${s.action.padEnd(width)} ${s.stageName}  (${s.agent})${s.reason ? `: ${s.reason}` : ""}${older}`,
      );
    }
    this.out.write(`${lines.join("\n")}\n`);
  }

  /** Prints the summary of a finished or paused run. */
  printResults(results: PipelineResults): void {
    if (results.alreadyComplete) {
      const at = results.completedAt
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, "Z");
      this.out.write(
        `Run ${results.pipelineId} was already complete (finished ${at}): nothing to do; ` +
          `its outputs are in checkpoint ${results.resumedFrom}\n`,
      );
      return;
    }
    const took = results.completedAt.getTime() - results.startedAt.getTime();
    const ran = Object.values(results.stepsResults).filter((r) => r.status === "completed").length;
    const migrated = results.migratedStages.length;
    const lines = [
      `Run ${results.pipelineId} ${results.status} in ${ms(took)}: ${ran} stage(s) ran, ${results.skippedStages.length} skipped, ${migrated > 0 ? `${migrated} migrated, ` : ""}${results.checkpointsCreated} checkpoint(s) written`,
    ];
    if (results.resumedFrom) lines.push(`Resumed from checkpoint ${results.resumedFrom}`);
    for (const m of results.migratedStages)
      lines.push(
        `Migrated: ${m.stageName} (output version ${m.fromVersion} → ${m.toVersion}; its agent was not called)`,
      );
    for (const r of results.rerunStages) lines.push(`Ran again: ${r.stageName} (${r.reason})`);
    if (results.pendingStages.length > 0) lines.push(`Pending: ${results.pendingStages.join(", ")}`);
    else lines.push(...lastOutputLines(results));
    this.out.write(`${lines.join("\n")}\n`);
  }
}
