/** The checkpoint graph as a Graphviz DOT digraph, left to right (`dot -Tsvg graph.dot`). */
import { formatBytes } from "../../manager/chain-text.js";
import type { CheckpointGraph, GraphNode } from "./graph.js";
import { nodeIds } from "./mermaid.js";
import { MARK_COLORS, STATUS_COLORS, STATUS_TEXT_COLORS, statusLabel } from "./palette.js";
import { cleanText, fitText, formatUtc } from "./text.js";

/** Renders the graph as a DOT digraph: nodes filled by status, parent → child edges, a title label. */
export function renderDot(graph: CheckpointGraph): string {
  const ids = nodeIds(graph);
  const title = `${graph.title}\n${graph.counts.checkpoints} checkpoints, generated ${graph.generatedAt.toISOString()}`;
  const lines = [
    "digraph checkpoints {",
    "  rankdir=LR;",
    `  graph [label=${quote(title)}, labelloc=t, fontname="DejaVu Sans", fontsize=16];`,
    '  node [shape=box, style="rounded,filled", fontname="DejaVu Sans", fontsize=11];',
    `  edge [color="${MARK_COLORS.edge}"];`,
  ];
  for (const node of graph.nodes) lines.push(`  ${ids.get(node.id)} [${attributes(node).join(", ")}];`);
  for (const edge of graph.edges) {
    const removed = graph.nodes.find((n) => n.id === edge.from)?.kind === "removed";
    lines.push(`  ${ids.get(edge.from)} -> ${ids.get(edge.to)}${removed ? " [style=dashed]" : ""};`);
  }
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

function attributes(node: GraphNode): string[] {
  if (node.kind === "removed") {
    return [
      `label=${quote(`parent removed\n${node.checkpointId}`)}`,
      'style="rounded,dashed"',
      `color="${MARK_COLORS.removed}"`,
      `fontcolor="${MARK_COLORS.removed}"`,
    ];
  }
  if (node.kind === "corrupt") {
    return [
      `label=${quote(`⚠ unreadable entry\n${node.location}\n${fitText(node.reason, 400, 11)}`)}`,
      `fillcolor="${STATUS_COLORS.corrupt}"`,
      `fontcolor="${STATUS_TEXT_COLORS.corrupt}"`,
      `tooltip=${quote(node.reason)}`,
    ];
  }
  const text = [
    node.stageName,
    `#${node.sequence} · ${statusLabel(node.status)}`,
    formatUtc(node.timestamp),
    formatBytes(node.dataSize),
  ];
  if (node.resumed) text.push(`↻ resumed ×${node.resumeCount}`);
  if (node.failed) text.push(`✗ ${fitText(node.errorMessage ?? "failed", 300, 11)}`);
  if (node.quarantined) text.push("⊘ quarantined");
  else if (node.valid === false) text.push("⚠ invalid");
  const attrs = [
    `label=${quote(text.join("\n"))}`,
    `fillcolor="${STATUS_COLORS[node.status]}"`,
    `fontcolor="${STATUS_TEXT_COLORS[node.status]}"`,
    `tooltip=${quote(node.checkpointId)}`,
  ];
  if (node.valid === false) {
    attrs.push('style="rounded,filled,dashed"', `color="${MARK_COLORS.invalid}"`, "penwidth=3");
  }
  return attrs;
}

/**
 * A DOT double-quoted string: each line cleaned, backslashes and quotes escaped, lines joined
 * with `\n` (centred lines in Graphviz).
 */
export function quote(text: string): string {
  const lines = text.split("\n").map((line) => cleanText(line).replace(/\\/g, "\\\\").replace(/"/g, '\\"'));
  return `"${lines.join("\\n")}"`;
}
