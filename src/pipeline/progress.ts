/** The text rendering of `Pipeline.visualizeProgress()`. */
import type { StageProgress } from "./execution.js";
import type { NormalizedStep } from "./validate.js";

/** Symbol per stage state. */
export const PROGRESS_SYMBOLS: Record<StageProgress["state"], string> = {
  pending: "·",
  running: "▶",
  completed: "✓",
  skipped: "↷",
  migrated: "⇢",
  failed: "✗",
};

const formatDuration = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

/** One line per stage with its symbol, state, attempts and duration, under a summary line. */
export function renderProgress(
  name: string,
  pipelineId: string | undefined,
  steps: readonly NormalizedStep[],
  progress: ReadonlyMap<string, StageProgress>,
): string {
  const states = steps.map((s) => progress.get(s.name)?.state ?? "pending");
  const done = states.filter((s) => s === "completed" || s === "skipped" || s === "migrated").length;
  const width = Math.max(...steps.map((s) => s.name.length));
  const lines = [`${name}${pipelineId ? ` (${pipelineId})` : ""}: ${done}/${steps.length} stages done`];
  for (const step of steps) {
    const p = progress.get(step.name) ?? { state: "pending" as const, attempts: 0, durationMs: undefined };
    let line = `  ${PROGRESS_SYMBOLS[p.state]} ${step.name.padEnd(width)}  ${p.state}`;
    if (p.durationMs !== undefined) line += `  ${formatDuration(p.durationMs)}`;
    if (p.attempts > 1) line += `  (${p.attempts} attempts)`;
    if (p.error) line += `  ${p.error}`;
    lines.push(line);
  }
  return `${lines.join("\n")}\n`;
}
