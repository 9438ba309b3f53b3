/** The text rendering of a pipeline analysis (`cairn analyze`). */
import { atRestText } from "../manager/at-rest-usage.js";
import { CHECK_SYMBOLS, formatBytes } from "../manager/chain-text.js";
import type { PipelineAnalysis } from "./analyze.js";
import { renderCostLines } from "./analyze-costs.js";
import { renderThreadAnalysis } from "./analyze-thread.js";
import { checkpointCounts, formatRate, formatTime, sealedText, terminalSafe } from "./report-formats.js";

/** Renders an analysis as text for terminals. */
export function renderAnalysisText(a: PipelineAnalysis): string {
  const c = a.checkpoints;
  const lines = [
    `Analysis of ${a.pipelineId} (pipeline ${a.pipelineName})`,
    "",
    `Status:          ${a.thread ? "LangGraph thread namespace (threads do not finish)" : a.finished ? "finished" : a.finishedUnverified ? "finished (not verified: encrypted)" : "not finished"}`,
    `Checkpoints:     ${checkpointCounts(c, a.corrupted, c.keyMissing)}`,
    `Checkpoint data: ${formatBytes(a.storage.checkpointBytes)}`,
    `Outputs:         ${a.storage.outputs} stored, ${formatBytes(a.storage.outputBytes)}, ${a.storage.unreferencedOutputs} unreferenced`,
    `At rest:         ${atRestText(a.storage.atRest)}`,
  ];
  // A thread has no cairn resumes: LangGraph picks its own checkpoint (the thread part says which).
  if (a.thread) lines.push("", ...renderThreadAnalysis(a.thread));
  else {
    lines.push(
      `Resumes:         ${a.resumes.totalResumeCount} (from ${a.resumes.resumedCheckpoints} checkpoint${a.resumes.resumedCheckpoints === 1 ? "" : "s"})`,
      `Resume success:  ${formatRate(a.resumeSuccessRate)}`,
      `Resume point:    ${resumePointText(a)}`,
    );
  }
  if (a.corrupted.length > 0) {
    lines.push("", "Invalid:");
    for (const x of a.corrupted) {
      const where = x.checkpointId && x.location ? ` (${x.location})` : "";
      const mark = x.quarantined ? `${CHECK_SYMBOLS.quarantined} ` : `${CHECK_SYMBOLS.invalid} `;
      lines.push(`  ${mark}${x.checkpointId ?? x.location}${where}${x.quarantined ? " (quarantined)" : ""}`);
      for (const p of x.problems) lines.push(`      ${p}`);
    }
  }
  if (a.history.length > 0) {
    lines.push("", "History:");
    for (const h of a.history) {
      lines.push(`  ${h.problem ? `${CHECK_SYMBOLS.invalid} ` : ""}${h.kind}: ${h.message}`);
    }
  }
  if (a.orphaned.length > 0) {
    lines.push("", "Orphaned (parent missing):");
    for (const o of a.orphaned) lines.push(`  ${o.checkpointId} [${o.sequence}] parent ${o.missingParentId}`);
  }
  if (a.failurePoints.length > 0) {
    lines.push("", "Failure points:");
    for (const f of a.failurePoints) {
      const error = f.lastError !== null ? `: ${f.lastError}` : "";
      lines.push(`  ${f.stageName}: ${f.count}× (last ${formatTime(f.lastAt)})${error}`);
    }
  }
  if (a.costs) lines.push("", ...renderCostLines(a.costs));
  lines.push("", "Recommendations:", ...a.recommendations.map((r) => `  - ${r}`));
  return terminalSafe(lines.join("\n"));
}

function resumePointText(a: PipelineAnalysis): string {
  if (a.resumePoint) return `${a.resumePoint.checkpointId} (stage ${a.resumePoint.stageName})`;
  // Not "none": the run may well have one, the reader just cannot verify it.
  return a.resumeKeyMissing ? `unknown (${sealedText(a.resumeKeyMissing)})` : "none";
}
