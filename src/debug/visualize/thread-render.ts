/**
 * A thread's checkpoint tree as Mermaid (`flowchart LR`, a `subgraph` per namespace) and Graphviz
 * DOT (a `cluster` per namespace); colours are the SVG's ({@link THREAD_COLORS}).
 */
import { quote } from "./dot.js";
import { escapeMermaid } from "./mermaid.js";
import { MARK_COLORS } from "./palette.js";
import type { ThreadGraph, ThreadGraphNode } from "./thread-graph.js";

/** Fill and text colour of a checkpoint by its LangGraph source, and of writes leaves. */
export const THREAD_COLORS: Readonly<Record<string, { fill: string; text: string }>> = {
  input: { fill: "#1565c0", text: "#ffffff" },
  loop: { fill: "#2e7d32", text: "#ffffff" },
  update: { fill: "#f9a825", text: "#212121" },
  fork: { fill: "#6a1b9a", text: "#ffffff" },
  other: { fill: "#546e7a", text: "#ffffff" },
  writes: { fill: "#eceff1", text: "#263238" },
  sealed: { fill: "#bdbdbd", text: "#212121" },
};

/** The colours of a node: by check first (encrypted: grey), then by source. */
export function threadColor(node: ThreadGraphNode): { fill: string; text: string } {
  if (node.kind === "checkpoint" && node.check === "sealed")
    return THREAD_COLORS.sealed as { fill: string; text: string };
  return (THREAD_COLORS[node.source] ?? THREAD_COLORS.other) as { fill: string; text: string };
}

/** Extra text lines of a node: latest, fork, problems. */
export function threadMarks(node: ThreadGraphNode): string[] {
  const marks: string[] = [];
  if (node.latest) marks.push("★ latest");
  if (node.fork) marks.push("fork");
  if (node.check === "invalid") marks.push("⚠ invalid");
  if (node.check === "sealed") marks.push("◌ not verified");
  return marks;
}

function ids(graph: ThreadGraph): Map<string, string> {
  return new Map(graph.nodes.map((n, i) => [n.id, `n${i + 1}`]));
}

/** Renders the thread graph as a Mermaid flowchart. */
export function renderThreadMermaid(graph: ThreadGraph): string {
  const key = ids(graph);
  const lines = [
    "flowchart LR",
    `  %% ${escapeMermaid(graph.title)}: ${graph.counts.checkpoints} checkpoints, ${graph.counts.writes} writes records, generated ${graph.generatedAt.toISOString()}`,
  ];
  for (const group of graph.groups) {
    lines.push(`  subgraph ${group.id} ["${escapeMermaid(`namespace ${group.label}`)}"]`);
    for (const node of graph.nodes.filter((n) => n.group === group.id)) {
      const text = [...node.lines, ...threadMarks(node)].map(escapeMermaid).join("<br/>");
      lines.push(
        node.kind === "writes"
          ? `    ${key.get(node.id)}[/"${text}"/]`
          : `    ${key.get(node.id)}("${text}")`,
      );
    }
    lines.push("  end");
  }
  for (const edge of graph.edges) {
    const arrow = edge.kind === "parent" ? "-->" : edge.kind === "writes" ? "---" : "-.->";
    lines.push(`  ${key.get(edge.from)} ${arrow} ${key.get(edge.to)}`);
  }
  for (const [name, c] of Object.entries(THREAD_COLORS)) {
    lines.push(`  classDef ${name} fill:${c.fill},stroke:${MARK_COLORS.outline},color:${c.text}`);
  }
  lines.push(
    `  classDef invalid stroke:${MARK_COLORS.invalid},stroke-width:4px,stroke-dasharray:8 4`,
    "  classDef latest stroke-width:4px",
  );
  const classes = new Map<string, string[]>();
  const add = (cls: string, id: string) => classes.set(cls, [...(classes.get(cls) ?? []), id]);
  for (const node of graph.nodes) {
    const id = key.get(node.id) as string;
    const color = threadColor(node);
    add(Object.entries(THREAD_COLORS).find(([, c]) => c === color)?.[0] ?? "other", id);
    if (node.check === "invalid") add("invalid", id);
    if (node.latest) add("latest", id);
  }
  for (const [cls, members] of classes) lines.push(`  class ${members.join(",")} ${cls}`);
  return `${lines.join("\n")}\n`;
}

/** Renders the thread graph as a DOT digraph, one cluster per namespace. */
export function renderThreadDot(graph: ThreadGraph): string {
  const key = ids(graph);
  const title = `${graph.title}\n${graph.counts.checkpoints} checkpoints, ${graph.counts.writes} writes records, generated ${graph.generatedAt.toISOString()}`;
  const lines = [
    "digraph thread {",
    "  rankdir=LR;",
    `  graph [label=${quote(title)}, labelloc=t, fontname="DejaVu Sans", fontsize=16];`,
    '  node [shape=box, style="rounded,filled", fontname="DejaVu Sans", fontsize=11];',
    `  edge [color="${MARK_COLORS.edge}"];`,
  ];
  for (const [i, group] of graph.groups.entries()) {
    lines.push(
      `  subgraph cluster_${i} {`,
      `    label=${quote(`namespace ${group.label}\nrun ${group.runId}`)};`,
      '    style="rounded,dashed"; color="#90a4ae"; fontsize=12;',
    );
    for (const node of graph.nodes.filter((n) => n.group === group.id)) {
      const c = threadColor(node);
      const attrs = [
        `label=${quote([...node.lines, ...threadMarks(node)].join("\n"))}`,
        `fillcolor="${c.fill}"`,
        `fontcolor="${c.text}"`,
        `tooltip=${quote(node.tooltip)}`,
      ];
      if (node.kind === "writes") attrs.push("shape=note", "fontsize=9", 'style="filled"');
      if (node.check === "invalid")
        attrs.push('style="rounded,filled,dashed"', `color="${MARK_COLORS.invalid}"`, "penwidth=3");
      else if (node.latest) attrs.push("penwidth=3");
      lines.push(`    ${key.get(node.id)} [${attrs.join(", ")}];`);
    }
    lines.push("  }");
  }
  for (const edge of graph.edges) {
    const style =
      edge.kind === "writes"
        ? " [arrowhead=none, style=dotted]"
        : edge.kind === "subgraph"
          ? ' [style=dashed, label="subgraph"]'
          : "";
    lines.push(`  ${key.get(edge.from)} -> ${key.get(edge.to)}${style};`);
  }
  lines.push("}");
  return `${lines.join("\n")}\n`;
}
