/** The text rendering of a run's checkpoint chain, as `visualizeCheckpointChain` returns it. */
import type { CheckpointStatusValue } from "../core/types.js";
import type { CheckpointStore } from "../stores/types.js";
import { type CheckpointVerdict, validateRun } from "./run-walk.js";

/** Symbol shown for each status (`corrupt` is kept for compatibility: see {@link CHECK_SYMBOLS}). */
export const STATUS_SYMBOLS: Record<CheckpointStatusValue | "corrupt", string> = {
  completed: "✓",
  in_progress: "▶",
  failed: "✗",
  resumed: "↻",
  expired: "⌛",
  corrupt: "⚠",
};

/**
 * The one vocabulary of the check, in every command and picture: a checkpoint is `valid` or
 * `invalid` (with problem kinds); an invalid one `cairn repair` handled is `quarantined`; a
 * listing entry that does not even parse is `unreadable` (one kind of invalid).
 */
export const CHECK_SYMBOLS = { invalid: "⚠", quarantined: "⊘", unreadable: "⚠", sealed: "◌" } as const;

/** What a sealed checkpoint is called everywhere: never invalid, never corrupt; just unverified. */
export function sealedLabel(keyMissing: CheckpointVerdict["keyMissing"]): string {
  return `not verified: encrypted under key id ${keyMissing?.keyId ?? "unknown"}`;
}

/** `invalid (checksum_mismatch, broken_chain)`, or `quarantined (...)`, for a checked checkpoint. */
export function checkLabel(
  verdict: Pick<CheckpointVerdict, "status" | "problems" | "quarantined" | "keyMissing">,
): string {
  if (verdict.status === "sealed") return sealedLabel(verdict.keyMissing);
  if (verdict.status !== "invalid") return verdict.status;
  const kinds = [...new Set(verdict.problems.map((p) => p.kind))].join(", ");
  return `${verdict.quarantined ? "quarantined" : "invalid"} (${kinds})`;
}

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

/** Renders the chain oldest first, one line per checkpoint with the check's verdict, and a legend. */
export function renderChain(pipelineId: string, checkpoints: readonly CheckpointVerdict[]): string {
  const shown = checkpoints.filter((v) => v.status !== "gone");
  if (shown.length === 0) return `Pipeline ${pipelineId}: no checkpoints\n`;
  const valid = shown.filter((v) => v.status === "valid").length;
  const sealed = shown.filter((v) => v.status === "sealed").length;
  const quarantined = shown.filter((v) => v.quarantined).length;
  const invalid = shown.length - valid - sealed - quarantined;
  const counts = [`${valid} valid`, ...(invalid > 0 ? [`${invalid} invalid`] : [])];
  if (quarantined > 0) counts.push(`${quarantined} quarantined`);
  if (sealed > 0) counts.push(`${sealed} not verified (encrypted)`);
  const lines = [
    `Checkpoint chain of ${pipelineId} (${shown.length} checkpoint${shown.length === 1 ? "" : "s"}: ${counts.join(", ")})`,
  ];
  shown.forEach((v, i) => {
    if (i > 0) lines.push("│");
    const m = v.metadata;
    if (!m) {
      const where = v.corrupt?.checkpointId ?? v.corrupt?.location ?? "(unknown)";
      lines.push(`${CHECK_SYMBOLS.unreadable} unreadable  ${where}: ${v.corrupt?.reason ?? ""}`);
      return;
    }
    const time = m.timestamp.replace("T", " ").replace(/\.\d+Z$/, "Z");
    const symbol =
      v.status === "valid"
        ? STATUS_SYMBOLS[m.status]
        : CHECK_SYMBOLS[v.status === "sealed" ? "sealed" : v.quarantined ? "quarantined" : "invalid"];
    let line = `${symbol} #${m.sequence} ${m.stage_name} (index ${m.stage_index})  ${m.status}  ${time}  ${formatBytes(m.data_size)}  ${m.checkpoint_id}`;
    if (v.status === "invalid" || v.status === "sealed") line += `  ${checkLabel(v)}`;
    if (m.resume_count > 0) line += `  resumed ×${m.resume_count}`;
    if (m.error_message) line += `\n│   error: ${m.error_message}`;
    lines.push(line);
  });
  const { corrupt: _alias, ...statuses } = STATUS_SYMBOLS;
  const legend = [
    ...Object.entries(statuses).map(([status, symbol]) => `${symbol} ${status}`),
    `${CHECK_SYMBOLS.invalid} invalid`,
    `${CHECK_SYMBOLS.quarantined} quarantined`,
    ...(sealed > 0 ? [`${CHECK_SYMBOLS.sealed} not verified (encrypted)`] : []),
  ].join("  ");
  lines.push("", `Legend: ${legend} (status symbols are shown for valid checkpoints)`);
  return `${lines.join("\n")}\n`;
}

/** Renders a run's chain after checking it with one listing (`visualizeCheckpointChain`). */
export async function visualizeChain(store: CheckpointStore, pipelineId: string): Promise<string> {
  const listing = await store.listCheckpoints(pipelineId);
  if (listing.length === 0) return renderChain(pipelineId, []);
  return renderChain(
    pipelineId,
    (await validateRun(store, pipelineId, { listing, sealed: "report" })).checkpoints,
  );
}
