/**
 * Markdown and HTML renderings of a recovery report. Everything taken from the store (names,
 * error messages, paths) is escaped: an error message is data, never markup.
 */
import { formatBytes } from "../manager/chain-text.js";
import type { SealedKey } from "../manager/run-walk.js";
import type { PlanEstimate } from "../pipeline/plan-estimate.js";
import type { CorruptedCheckpoint } from "./analyze.js";
import { threadRecoveryRows } from "./analyze-thread.js";
import type { RecoveryReport } from "./report.js";
import {
  codeSegments,
  escapeHtml,
  escapeMarkdown,
  fence,
  mdInline,
  mdTable,
  terminalSafe,
} from "./report-escape.js";
import type { StageGraph } from "./visualize/stage-graph.js";
import { renderStageMermaid } from "./visualize/stage-render.js";

export { escapeHtml, escapeMarkdown, terminalSafe } from "./report-escape.js";

/** `2024-01-01 12:00:00Z`, or `-`. */
export function formatTime(date: Date | null | undefined): string {
  return date
    ? date
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, "Z")
    : "-";
}

/** The resume success rate in words. */
export function formatRate(rate: number | null): string {
  if (rate === null) return "n/a (never resumed)";
  return rate === 1 ? "100% (resumed and finished)" : "0% (resumed, not finished)";
}

function finishedText(run: RecoveryReport["run"]): string {
  if (run.finished) return "finished";
  return run.finishedUnverified ? "finished; not verified: encrypted" : "not finished";
}

/** Label/value rows shared by every format, so they all say the same things. */
export function sections(r: RecoveryReport): { title: string; rows: [string, string][] }[] {
  const s = r.statistics;
  const p = r.recoveryPoint;
  const byStatus = Object.entries(s.byStatus)
    .filter(([, n]) => n > 0)
    .map(([status, n]) => `${status} ${n}`)
    .join(", ");
  return [
    {
      title: "Run",
      rows: [
        ["Pipeline", r.run.pipelineName],
        ["Run id", r.run.pipelineId],
        ["Status", `${r.run.status} (${finishedText(r.run)})`],
        ["Stages", `${r.run.stagesCompleted}/${r.run.stagesTotal} completed`],
        ["First checkpoint", formatTime(r.run.firstAt)],
        [
          "Last checkpoint",
          `${formatTime(r.run.lastAt)}${r.run.latestStage ? ` (stage ${r.run.latestStage})` : ""}`,
        ],
      ],
    },
    {
      title: "Statistics",
      rows: [
        ["Checkpoints", checkpointCounts({ ...s, total: s.checkpoints }, r.corrupted, s.keyMissing)],
        ["By status", byStatus || "-"],
        [
          "Resumes",
          `${s.totalResumeCount} (from ${s.resumedCheckpoints} checkpoint${s.resumedCheckpoints === 1 ? "" : "s"})`,
        ],
        ["Resume success", formatRate(s.resumeSuccessRate)],
      ],
    },
    {
      title: "Storage",
      rows: [
        ["Checkpoint data", formatBytes(r.storage.checkpointBytes)],
        ["Outputs", `${r.storage.outputs} stored, ${formatBytes(r.storage.outputBytes)}`],
        ["Unreferenced outputs", String(r.storage.unreferencedOutputs)],
      ],
    },
    {
      title: "Recommended recovery point",
      rows: r.thread
        ? threadRecoveryRows(r.thread)
        : p
          ? [
              ["Checkpoint", p.checkpointId],
              ["Stage", `${p.stageName} (index ${p.stageIndex}), checkpoint #${p.sequence}`],
              ["Time", formatTime(p.timestamp)],
              ["Completed stages", p.completedStages.join(", ") || "-"],
              ["Pending stages", p.pendingStages.join(", ") || "-"],
              ["Newest checkpoint", p.isNewest ? "yes" : "no: newer checkpoints cannot be used"],
            ]
          : r.recoveryKeyMissing
            ? [["Checkpoint", `unknown: ${sealedText(r.recoveryKeyMissing)}`]]
            : [["Checkpoint", "none: no checkpoint verifies; a resume starts from the first stage"]],
    },
    ...(r.stageGraph ? [stageSection(r.stageGraph)] : []),
    ...(r.resumePlan
      ? [
          {
            title: "Resume plan",
            rows: [
              ...r.resumePlan.map((s): [string, string] => [
                s.stageName,
                `${s.action}${s.reason !== undefined ? `: ${s.reason}` : ""}` +
                  // Salvage may take a stage's output from an older checkpoint than the others'.
                  (s.source !== undefined ? ` (output from ${s.source})` : ""),
              ]),
              ...(r.resumeEstimate ? [["Estimate", estimateText(r.resumeEstimate)] as [string, string]] : []),
            ],
          },
        ]
      : []),
  ];
}

/** `✓ completed · 1.2 s; after extract, validate`: one row per stage, in definition order. */
export function stageSection(g: StageGraph): { title: string; rows: [string, string][] } {
  const symbols = { completed: "✓", failed: "✗", pending: "·" } as const;
  const after = new Map<string, string[]>();
  for (const e of g.edges) after.set(e.to, [...(after.get(e.to) ?? []), e.from]);
  const ms = (v: number) => (v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`);
  return {
    title: `Stage graph (checkpoint #${g.sequence}${g.dependenciesKnown ? "" : "; no dependencies recorded: linear"})`,
    rows: g.nodes.map((n): [string, string] => {
      const deps = after.get(n.name) ?? [];
      const state = `${symbols[n.state]} ${n.state}${n.ready ? " (ready: dependencies done)" : ""}`;
      const took = n.durationMs !== undefined ? ` · ${ms(n.durationMs)}` : "";
      const failure = n.errorMessage !== undefined ? `: ${n.errorMessage}` : "";
      return [n.name, `${state}${took}${failure}; ${deps.length > 0 ? `after ${deps.join(", ")}` : "root"}`];
    }),
  };
}

/** One line per problem: invalid (or quarantined) checkpoints and unreadable entries, then orphans. */
export function problemLines(r: RecoveryReport): { subject: string; kind: string; detail: string }[] {
  const lines: { subject: string; kind: string; detail: string }[] = [];
  for (const c of r.corrupted) {
    const subject = c.checkpointId ?? c.location ?? "(unknown)";
    const kind = c.quarantined ? "quarantined" : c.checkpointId === undefined ? "unreadable" : "invalid";
    for (const problem of c.problems) lines.push({ subject, kind, detail: problem });
  }
  for (const h of r.history) {
    if (h.problem) lines.push({ subject: `run ${r.run.pipelineId}`, kind: h.kind, detail: h.message });
  }
  for (const o of r.orphaned) {
    lines.push({
      subject: o.checkpointId,
      kind: "orphaned",
      detail: `parent ${o.missingParentId} is missing`,
    });
  }
  return lines;
}

/** Renders a report as plain text for terminals. */
export function renderText(r: RecoveryReport): string {
  const out = [
    `Recovery report: ${r.run.pipelineName} (run ${r.run.pipelineId})`,
    `Generated ${formatTime(r.generatedAt)}`,
  ];
  for (const section of sections(r)) {
    out.push("", section.title);
    const width = Math.max(...section.rows.map(([label]) => label.length)) + 2;
    for (const [label, value] of section.rows) out.push(`  ${`${label}:`.padEnd(width)}${value}`);
  }
  const problems = problemLines(r);
  if (problems.length > 0) {
    out.push("", "Problems");
    for (const p of problems) out.push(`  ⚠ ${p.subject} (${p.kind}): ${p.detail}`);
  }
  if (r.failurePoints.length > 0) {
    out.push("", "Failure points");
    for (const f of r.failurePoints) {
      out.push(
        `  ${f.stageName}: ${f.count}× (last ${formatTime(f.lastAt)})${f.lastError !== null ? `: ${f.lastError}` : ""}`,
      );
    }
  }
  out.push("", "Recommendations", ...r.recommendations.map((line) => `  - ${line}`));
  out.push("", "Resume command", `  ${r.resumeCommand ?? noResume(r)}`);
  return `${terminalSafe(out.join("\n"))}\n`;
}

/** Renders a report as Markdown with tables. */
export function renderMarkdown(r: RecoveryReport): string {
  const out = [
    `# Recovery report: ${escapeMarkdown(r.run.pipelineName)}`,
    "",
    `Run \`${r.run.pipelineId}\`, generated ${formatTime(r.generatedAt)}.`,
  ];
  for (const section of sections(r)) {
    out.push("", `## ${section.title}`, "", ...mdTable(["Field", "Value"], section.rows));
  }
  if (r.stageGraph) {
    // Markdown viewers that render Mermaid draw the graph itself.
    out.push("", "```mermaid", renderStageMermaid(r.stageGraph).trimEnd(), "```");
  }
  const problems = problemLines(r);
  if (problems.length > 0) {
    out.push(
      "",
      "## Problems",
      "",
      ...mdTable(
        ["Checkpoint", "Kind", "Detail"],
        problems.map((p) => [p.subject, p.kind, p.detail]),
      ),
    );
  }
  if (r.failurePoints.length > 0) {
    const rows = r.failurePoints.map((f) => [
      f.stageName,
      String(f.count),
      formatTime(f.lastAt),
      f.lastError ?? "-",
    ]);
    out.push("", "## Failure points", "", ...mdTable(["Stage", "Failures", "Last at", "Last error"], rows));
  }
  out.push("", "## Recommendations", "", ...r.recommendations.map((line) => `- ${mdInline(line)}`));
  out.push("", "## Resume command", "");
  if (r.resumeCommand === null) out.push(`${capitalized(noResume(r))}.`);
  else {
    const f = fence(r.resumeCommand);
    out.push(`${f}sh`, r.resumeCommand, f);
  }
  return `${out.join("\n")}\n`;
}

const CSS = `
body{margin:0;background:#f6f7f9;color:#1f2328;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:960px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.15em;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.meta{color:#59636e;margin:0}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d0d7de}
th,td{text-align:left;vertical-align:top;padding:6px 10px;border-bottom:1px solid #eaeef2;overflow-wrap:anywhere}
thead th{background:#f0f2f4}tbody th{width:14em;font-weight:600;color:#424a53}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
code{background:#eff1f3;padding:1px 4px;border-radius:4px}
pre{background:#1f2328;color:#f6f8fa;padding:12px 14px;border-radius:6px;overflow-x:auto}
pre code{background:none;padding:0}
ul{background:#fff;border:1px solid #d0d7de;margin:0;padding:10px 10px 10px 30px}li{margin:4px 0}
.bad{color:#b42318;font-weight:600}.ok{color:#1a7f37;font-weight:600}.warn{color:#9a6700;font-weight:600}
`;

function htmlInline(text: string): string {
  return codeSegments(text)
    .map((s) => (s.code ? (s.text === "" ? "" : `<code>${escapeHtml(s.text)}</code>`) : escapeHtml(s.text)))
    .join("");
}

function htmlTable(headers: readonly string[], rows: readonly string[][]): string {
  const head = headers.map((h) => `<th scope="col">${escapeHtml(h)}</th>`).join("");
  const body = rows
    .map((row) => `<tr>${row.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`)
    .join("\n");
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function statusClass(r: RecoveryReport): string {
  // A quarantined checkpoint is a handled problem: a warning, not a failure.
  if (
    r.corrupted.some((c) => !c.quarantined) ||
    r.history.some((h) => h.problem) ||
    (!r.run.finished && r.run.status === "failed")
  )
    return "bad";
  if (r.statistics.corrupted > 0 || r.statistics.sealed > 0) return "warn";
  return r.run.finished && r.statistics.orphaned === 0 ? "ok" : "warn";
}

/** Renders a report as a self-contained HTML page: inline CSS, no scripts, no external assets. */
export function renderHtml(r: RecoveryReport): string {
  const parts: string[] = [];
  for (const section of sections(r)) {
    const rows = section.rows
      .map(([label, value]) => {
        const cls = section.title === "Run" && label === "Status" ? ` class="${statusClass(r)}"` : "";
        return `<tr><th scope="row">${escapeHtml(label)}</th><td${cls}>${escapeHtml(value)}</td></tr>`;
      })
      .join("\n");
    parts.push(
      `<section><h2>${escapeHtml(section.title)}</h2><table><tbody>\n${rows}\n</tbody></table></section>`,
    );
  }
  const problems = problemLines(r);
  if (problems.length > 0) {
    const rows = problems.map((p) => [p.subject, p.kind, p.detail]);
    parts.push(`<section><h2>Problems</h2>${htmlTable(["Checkpoint", "Kind", "Detail"], rows)}</section>`);
  }
  if (r.failurePoints.length > 0) {
    const rows = r.failurePoints.map((f) => [
      f.stageName,
      String(f.count),
      formatTime(f.lastAt),
      f.lastError ?? "-",
    ]);
    parts.push(
      `<section><h2>Failure points</h2>${htmlTable(["Stage", "Failures", "Last at", "Last error"], rows)}</section>`,
    );
  }
  const recommendations = r.recommendations.map((line) => `<li>${htmlInline(line)}</li>`).join("\n");
  parts.push(`<section><h2>Recommendations</h2><ul>\n${recommendations}\n</ul></section>`);
  parts.push(
    `<section><h2>Resume command</h2>${
      r.resumeCommand === null
        ? `<p>${escapeHtml(capitalized(noResume(r)))}.</p>`
        : `<pre><code>${escapeHtml(r.resumeCommand)}</code></pre>`
    }</section>`,
  );
  const title = `Recovery report: ${r.run.pipelineName}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
<p class="meta">Run <code>${escapeHtml(r.run.pipelineId)}</code>, generated ${escapeHtml(formatTime(r.generatedAt))}</p>
${parts.join("\n")}
</main>
</body>
</html>
`;
}

/**
 * `3 (2 healthy, 1 invalid (1 quarantined), 0 orphaned)`: the counts in the one vocabulary.
 * Sealed checkpoints (no key) are counted apart, never as invalid: `5 (5 not verified: ...)`.
 */
export function checkpointCounts(
  c: { total: number; healthy: number; corrupted: number; orphaned: number; sealed?: number },
  invalid: readonly CorruptedCheckpoint[],
  keyMissing?: SealedKey,
): string {
  const sealed = c.sealed ?? 0;
  const unverified = sealed > 0 ? `${sealed} not verified: ${sealedText(keyMissing)}` : "";
  if (sealed > 0 && sealed === c.total) return `${c.total} (${unverified})`;
  const quarantined = invalid.filter((x) => x.quarantined).length;
  const handled = quarantined > 0 ? ` (${quarantined} quarantined)` : "";
  const more = unverified ? `, ${unverified}` : "";
  return `${c.total} (${c.healthy} healthy, ${c.corrupted} invalid${handled}, ${c.orphaned} orphaned${more})`;
}

/** `encrypted under key id k1; pass --key-file`: why checkpoints are not verified, and what helps. */
export function sealedText(key: SealedKey | undefined): string {
  if (key?.kind === "data-key") return `encrypted with data key ${key.keyId}, which is destroyed`;
  return `encrypted under key id ${key?.keyId ?? "unknown"}; pass --key-file`;
}

const duration = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

/** `at least ≈ 3 ms to finish; the recovery point saves ≈ 1.2 s (learned from 4 runs)`. */
function estimateText(e: PlanEstimate): string {
  const about = e.approximate ? "≈ " : "";
  const atLeast = e.unknown.length > 0 ? "at least " : "";
  const unknown = e.unknown.length > 0 ? `; no history of ${e.unknown.join(", ")}` : "";
  return (
    `${atLeast}${about}${duration(e.remainingMs)} to finish; the recovery point saves ${about}${duration(e.savedMs)} ` +
    `(learned from ${e.runs} run${e.runs === 1 ? "" : "s"}${unknown})`
  );
}

/** Why a report has no resume command. */
function noResume(r: RecoveryReport): string {
  return r.thread
    ? "none: LangGraph resumes a thread (invoke the graph with its thread_id)"
    : "none: the run finished";
}

const capitalized = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);
