/** The text rendering of a run's checkpoint chain, as `visualizeCheckpointChain` returns it. */
import type { CheckpointStatusValue } from "../core/types.js";
import type { ListedCheckpoint } from "../stores/types.js";

/** Symbol shown for each status. */
export const STATUS_SYMBOLS: Record<CheckpointStatusValue | "corrupt", string> = {
  completed: "✓",
  in_progress: "▶",
  failed: "✗",
  resumed: "↻",
  expired: "⌛",
  corrupt: "⚠",
};

/** Human-readable byte size: `512 B`, `1.5 KB`, `3.2 MB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** Renders the chain oldest first, one line per checkpoint, with a legend. */
export function renderChain(pipelineId: string, listing: readonly ListedCheckpoint[]): string {
  if (listing.length === 0) return `Pipeline ${pipelineId}: no checkpoints\n`;
  const lines = [
    `Checkpoint chain of ${pipelineId} (${listing.length} checkpoint${listing.length === 1 ? "" : "s"})`,
  ];
  listing.forEach((entry, i) => {
    if (i > 0) lines.push("│");
    if (!entry.ok) {
      lines.push(
        `${STATUS_SYMBOLS.corrupt} corrupt  ${entry.corrupt.checkpointId ?? entry.corrupt.location}: ${entry.corrupt.reason}`,
      );
      return;
    }
    const m = entry.metadata;
    const time = m.timestamp.replace("T", " ").replace(/\.\d+Z$/, "Z");
    let line = `${STATUS_SYMBOLS[m.status]} #${m.sequence} ${m.stage_name} (index ${m.stage_index})  ${m.status}  ${time}  ${formatBytes(m.data_size)}  ${m.checkpoint_id}`;
    if (m.resume_count > 0) line += `  resumed ×${m.resume_count}`;
    if (m.error_message) line += `\n│   error: ${m.error_message}`;
    lines.push(line);
  });
  const legend = Object.entries(STATUS_SYMBOLS)
    .map(([status, symbol]) => `${symbol} ${status}`)
    .join("  ");
  lines.push("", `Legend: ${legend}`);
  return `${lines.join("\n")}\n`;
}
