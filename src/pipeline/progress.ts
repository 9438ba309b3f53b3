/** The text rendering of `Pipeline.visualizeProgress()`. */
import type { StageProgress } from "./execution.js";

/** Symbol per stage state. */
export const PROGRESS_SYMBOLS: Record<StageProgress["state"], string> = {
  pending: "·",
  running: "▶",
  completed: "✓",
  skipped: "↷",
  migrated: "⇢",
  failed: "✗",
};

/**
 * What the progress needs of a step: its name and, in a DAG pipeline, its resolved
 * dependencies (absent: the step before it, as in a linear pipeline).
 */
export interface ProgressStep {
  name: string;
  dependsOn?: readonly string[];
}

const formatDuration = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

/** Each step's dependencies, the step before it when none are given. */
function dependencies(steps: readonly ProgressStep[]): string[][] {
  return steps.map((s, i) => [...(s.dependsOn ?? (i > 0 ? [steps[i - 1]?.name ?? ""] : []))]);
}

/** True when every step depends on exactly the one before it (the first on nothing). */
function isLinear(steps: readonly ProgressStep[], deps: readonly string[][]): boolean {
  return deps.every((d, i) => (i === 0 ? d.length === 0 : d.length === 1 && d[0] === steps[i - 1]?.name));
}

/**
 * One line per stage with its symbol, state, attempts and duration, under a summary line that
 * names the stages running now (several at once in a DAG pipeline). When the pipeline is not a
 * straight line, each stage also shows what it waits for (`← a, b`).
 */
export function renderProgress(
  name: string,
  pipelineId: string | undefined,
  steps: readonly ProgressStep[],
  progress: ReadonlyMap<string, StageProgress>,
): string {
  const states = steps.map((s) => progress.get(s.name)?.state ?? "pending");
  const done = states.filter((s) => s === "completed" || s === "skipped" || s === "migrated").length;
  const running = steps.filter((_, i) => states[i] === "running").map((s) => s.name);
  const deps = dependencies(steps);
  const graph = !isLinear(steps, deps);
  const width = Math.max(...steps.map((s) => s.name.length));
  const stateWidth = Math.max(...states.map((s) => s.length));
  let summary = `${name}${pipelineId ? ` (${pipelineId})` : ""}: ${done}/${steps.length} stages done`;
  if (running.length > 0) summary += `, ${running.length} running: ${running.join(", ")}`;
  const lines = [summary];
  for (const [i, step] of steps.entries()) {
    const p = progress.get(step.name) ?? { state: "pending" as const, attempts: 0, durationMs: undefined };
    let line = `  ${PROGRESS_SYMBOLS[p.state]} ${step.name.padEnd(width)}  ${graph ? p.state.padEnd(stateWidth) : p.state}`;
    if (graph) line += `  ${(deps[i] ?? []).length > 0 ? `← ${(deps[i] ?? []).join(", ")}` : "(root)"}`;
    if (p.durationMs !== undefined) line += `  ${formatDuration(p.durationMs)}`;
    if (p.attempts > 1) line += `  (${p.attempts} attempts)`;
    if (p.error) line += `  ${p.error}`;
    lines.push(line);
  }
  return `${lines.join("\n")}\n`;
}
