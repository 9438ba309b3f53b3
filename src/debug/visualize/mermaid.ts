/** The checkpoint graph as a Mermaid flowchart (`flowchart LR`), for Markdown that renders Mermaid. */
import { formatBytes } from "../../manager/chain-text.js";
import type { CheckpointGraph, GraphNode } from "./graph.js";
import { MARK_COLORS, type NodeColorKey, STATUS_COLORS, STATUS_TEXT_COLORS, statusLabel } from "./palette.js";
import { cleanText, fitText, formatUtc } from "./text.js";

/** Renders the graph as Mermaid text: nodes `c1, c2...`, parent edges, a class per status. */
export function renderMermaid(graph: CheckpointGraph): string {
  const ids = nodeIds(graph);
  const lines = [
    "flowchart LR",
    `  %% Checkpoint graph: ${cleanText(graph.title)}`,
    `  %% ${graph.counts.checkpoints} checkpoints, generated ${graph.generatedAt.toISOString()}`,
  ];
  const classes = new Map<string, string[]>();
  for (const node of graph.nodes) {
    const id = ids.get(node.id) ?? "";
    lines.push(`  ${id}${shape(node)}`);
    const cls = classOf(node);
    classes.set(cls, [...(classes.get(cls) ?? []), id]);
    if (node.kind === "checkpoint" && node.valid === false) {
      classes.set("invalid", [...(classes.get("invalid") ?? []), id]);
    }
  }
  for (const edge of graph.edges) {
    const removed = graph.nodes.find((n) => n.id === edge.from)?.kind === "removed";
    lines.push(`  ${ids.get(edge.from)} ${removed ? "-.->" : "-->"} ${ids.get(edge.to)}`);
  }
  for (const key of Object.keys(STATUS_COLORS) as NodeColorKey[]) {
    lines.push(
      `  classDef ${key} fill:${STATUS_COLORS[key]},stroke:${MARK_COLORS.outline},color:${STATUS_TEXT_COLORS[key]}`,
    );
  }
  lines.push(
    `  classDef removed fill:${MARK_COLORS.background},stroke:${MARK_COLORS.removed},color:${MARK_COLORS.removed},stroke-dasharray:5 4`,
    `  classDef invalid stroke:${MARK_COLORS.invalid},stroke-width:4px,stroke-dasharray:8 4`,
  );
  for (const [cls, members] of classes) lines.push(`  class ${members.join(",")} ${cls}`);
  return `${lines.join("\n")}\n`;
}

/** Safe node ids `c1`, `c2`... in graph order, keyed by node id. */
export function nodeIds(graph: CheckpointGraph): Map<string, string> {
  return new Map(graph.nodes.map((node, i) => [node.id, `c${i + 1}`]));
}

function classOf(node: GraphNode): string {
  return node.kind === "checkpoint" ? node.status : node.kind;
}

function shape(node: GraphNode): string {
  if (node.kind === "removed") return `(["${label(["parent removed", node.checkpointId])}"])`;
  if (node.kind === "corrupt") {
    return `["${label(["⚠ unreadable entry", node.location, fitText(node.reason, 400, 12)])}"]`;
  }
  const parts = [
    escapeMermaid(node.stageName),
    escapeMermaid(`#${node.sequence} · ${statusLabel(node.status)}`),
    escapeMermaid(formatUtc(node.timestamp)),
    escapeMermaid(formatBytes(node.dataSize)),
  ];
  if (node.resumed) parts.push(escapeMermaid(`↻ resumed ×${node.resumeCount}`));
  if (node.failed) parts.push(escapeMermaid(`✗ ${fitText(node.errorMessage ?? "failed", 300, 12)}`));
  if (node.quarantined) parts.push("⊘ quarantined");
  else if (node.valid === false) parts.push("⚠ invalid");
  return `("${parts.join("<br/>")}")`;
}

function label(parts: string[]): string {
  return parts.map(escapeMermaid).join("<br/>");
}

/**
 * Text safe inside a quoted Mermaid label: Mermaid's entity codes (`#quot;`, `#lt;`...) for
 * quotes, markup characters and `#` itself, one line.
 */
export function escapeMermaid(text: string): string {
  return cleanText(text).replace(/[#"<>&`]/g, (ch) => `#${ch.codePointAt(0)};`);
}
