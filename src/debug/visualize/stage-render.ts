/**
 * Renderings of a run's stage graph ({@link StageGraph}): SVG laid out left to right with dagre
 * (and through it PNG), Mermaid and Graphviz DOT. Nodes are filled by stage state; an edge runs
 * from a dependency to the stage that needs it.
 */
import dagre from "@dagrejs/dagre";
import { quote } from "./dot.js";
import { escapeMermaid } from "./mermaid.js";
import { MARK_COLORS, STATUS_COLORS } from "./palette.js";
import type { StageGraph, StageNode } from "./stage-graph.js";
import { cleanText, escapeXml, fitText, fmt, formatUtc, textWidth } from "./text.js";

/** What a node's colour says: its state, or `ready` (pending with every dependency done). */
export type StageColorKey = "completed" | "failed" | "ready" | "pending";

/** Fill and text colour per stage colour key; the first two are the checkpoint graph's. */
export const STAGE_COLORS: Readonly<Record<StageColorKey, { fill: string; text: string }>> = {
  completed: { fill: STATUS_COLORS.completed, text: "#ffffff" },
  failed: { fill: STATUS_COLORS.failed, text: "#ffffff" },
  ready: { fill: "#bbdefb", text: "#0d47a1" },
  pending: { fill: "#eceff1", text: "#37474f" },
};

/** The colour key of a node. */
export function stageColor(node: StageNode): StageColorKey {
  return node.state === "pending" && node.ready ? "ready" : node.state;
}

const duration = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

/** The lines of a node's label: name, state (and duration), then the error of a failed stage. */
export function stageLabel(node: StageNode): string[] {
  const state = node.state === "pending" && node.ready ? "pending · ready" : node.state;
  const lines = [
    node.name,
    node.durationMs !== undefined ? `${state} · ${duration(node.durationMs)}` : state,
  ];
  if (node.errorMessage !== undefined) lines.push(`✗ ${fitText(node.errorMessage, 300, 11)}`);
  return lines;
}

function subtitle(graph: StageGraph): string {
  const done = graph.nodes.filter((n) => n.state === "completed").length;
  return (
    `${done}/${graph.nodes.length} stages completed, from checkpoint #${graph.sequence} ${graph.checkpointId}` +
    (graph.dependenciesKnown ? "" : " (no dependencies recorded: drawn as a linear chain)")
  );
}

/** Safe node ids `s1`, `s2`... in definition order, keyed by stage name. */
function stageIds(graph: StageGraph): Map<string, string> {
  return new Map(graph.nodes.map((n, i) => [n.name, `s${i + 1}`]));
}

/** A Mermaid comment's text: one line, no backticks (it may sit in a Markdown fence). */
const comment = (text: string) => cleanText(text).replace(/`/g, "'");

/** The stage graph as a Mermaid flowchart: a node per stage, dependency edges, a class per state. */
export function renderStageMermaid(graph: StageGraph): string {
  const ids = stageIds(graph);
  const lines = [
    "flowchart LR",
    `  %% Stage graph: ${comment(graph.title)}`,
    `  %% ${comment(subtitle(graph))}; generated ${graph.generatedAt.toISOString()}`,
  ];
  for (const node of graph.nodes) {
    lines.push(`  ${ids.get(node.name)}("${stageLabel(node).map(escapeMermaid).join("<br/>")}")`);
  }
  for (const edge of graph.edges) lines.push(`  ${ids.get(edge.from)} --> ${ids.get(edge.to)}`);
  const classes = new Map<StageColorKey, string[]>();
  for (const node of graph.nodes) {
    const key = stageColor(node);
    classes.set(key, [...(classes.get(key) ?? []), ids.get(node.name) ?? ""]);
  }
  for (const [key, c] of Object.entries(STAGE_COLORS)) {
    lines.push(`  classDef ${key} fill:${c.fill},stroke:${MARK_COLORS.outline},color:${c.text}`);
  }
  for (const [key, members] of classes) lines.push(`  class ${members.join(",")} ${key}`);
  return `${lines.join("\n")}\n`;
}

/** The stage graph as a DOT digraph, left to right: filled nodes, dependency → stage edges. */
export function renderStageDot(graph: StageGraph): string {
  const ids = stageIds(graph);
  const lines = [
    "digraph stages {",
    "  rankdir=LR;",
    `  graph [label=${quote(`${graph.title}\n${subtitle(graph)}`)}, labelloc=t, fontname="DejaVu Sans", fontsize=16];`,
    '  node [shape=box, style="rounded,filled", fontname="DejaVu Sans", fontsize=11];',
    `  edge [color="${MARK_COLORS.edge}"];`,
  ];
  for (const node of graph.nodes) {
    const c = STAGE_COLORS[stageColor(node)];
    lines.push(
      `  ${ids.get(node.name)} [label=${quote(stageLabel(node).join("\n"))}, fillcolor="${c.fill}", fontcolor="${c.text}"${node.agent ? `, tooltip=${quote(node.agent)}` : ""}];`,
    );
  }
  for (const edge of graph.edges) lines.push(`  ${ids.get(edge.from)} -> ${ids.get(edge.to)};`);
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

const MARGIN = 24;
const PAD_X = 12;
const PAD_Y = 10;
const NODE_MIN = 130;
const NODE_MAX = 260;
const LINE = 16;

/** The stage graph as a standalone SVG document: title, boxes by state, arrows, a legend. */
export function renderStageSvg(graph: StageGraph): string {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 50, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  const boxes = new Map<string, { lines: string[]; width: number; height: number }>();
  for (const node of graph.nodes) {
    const lines = stageLabel(node).map((l, i) =>
      fitText(l, NODE_MAX - 2 * PAD_X, i === 0 ? 14 : 12, i === 0),
    );
    const widest = Math.max(...lines.map((l, i) => textWidth(l, i === 0 ? 14 : 12, i === 0)));
    const box = {
      lines,
      width: Math.ceil(Math.min(NODE_MAX, Math.max(NODE_MIN, widest + 2 * PAD_X))),
      height: lines.length * LINE + 2 * PAD_Y + 3,
    };
    boxes.set(node.name, box);
    g.setNode(node.name, { width: box.width + 8, height: box.height + 8 });
  }
  for (const edge of graph.edges) g.setEdge(edge.from, edge.to);
  dagre.layout(g);
  const laid = g.graph() as { width?: number; height?: number };
  // dagre reports -Infinity for a graph without nodes (a LangGraph thread has no stages).
  const finite = (n: number | undefined) => (n !== undefined && Number.isFinite(n) ? n : 0);
  const size = { width: finite(laid.width), height: finite(laid.height) };
  const sub = subtitle(graph);
  const width = Math.ceil(
    Math.max(
      400,
      size.width + 2 * MARGIN,
      textWidth(graph.title, 18, true) + 2 * MARGIN,
      textWidth(`${sub} · generated ${formatUtc(graph.generatedAt)}`, 12) + 2 * MARGIN,
      legendWidth() + 2 * MARGIN,
    ),
  );
  const top = MARGIN + 56;
  const legendTop = top + size.height + 28;
  const height = legendTop + 20 + MARGIN;
  const dx = MARGIN + (width - 2 * MARGIN - size.width) / 2;
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, sans-serif">`,
    `<title>${escapeXml(`Stage graph: ${graph.title}`)}</title>`,
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="10" markerHeight="10" markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="${MARK_COLORS.edge}"/></marker></defs>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="${MARK_COLORS.background}"/>`,
    `<g class="title"><text x="${MARGIN}" y="${MARGIN + 18}" font-size="18" font-weight="bold" fill="${MARK_COLORS.text}">${escapeXml(graph.title)}</text>`,
    `<text x="${MARGIN}" y="${MARGIN + 40}" font-size="12" fill="${MARK_COLORS.muted}">${escapeXml(`${sub} · generated ${formatUtc(graph.generatedAt)}`)}</text></g>`,
    '<g class="edges">',
  ];
  for (const edge of graph.edges) {
    const points =
      (g.edge(edge.from, edge.to) as { points?: { x: number; y: number }[] } | undefined)?.points ?? [];
    if (points.length < 2) continue;
    const d = points.map((p, i) => `${i === 0 ? "M" : "L"}${fmt(p.x + dx)},${fmt(p.y + top)}`).join(" ");
    out.push(
      `<path class="edge" data-from="${escapeXml(edge.from)}" data-to="${escapeXml(edge.to)}" d="${d}" fill="none" stroke="${MARK_COLORS.edge}" stroke-width="1.6" marker-end="url(#arrow)"/>`,
    );
  }
  out.push("</g>", '<g class="nodes">');
  for (const node of graph.nodes) {
    const box = boxes.get(node.name);
    const centre = g.node(node.name) as { x: number; y: number } | undefined;
    if (!box || !centre) continue;
    const x = centre.x + dx - box.width / 2;
    const y = centre.y + top - box.height / 2;
    const key = stageColor(node);
    const c = STAGE_COLORS[key];
    const parts = [
      `<g class="node stage-${key}" data-stage="${escapeXml(node.name)}"><title>${escapeXml(node.agent ? `${node.name} (${node.agent})` : node.name)}</title>`,
      `<rect x="${fmt(x)}" y="${fmt(y)}" width="${box.width}" height="${box.height}" rx="8" ry="8" fill="${c.fill}" stroke="${MARK_COLORS.outline}" stroke-opacity="0.55"/>`,
    ];
    for (const [i, line] of box.lines.entries()) {
      const weight = i === 0 ? ' font-weight="bold"' : "";
      const baseline = y + PAD_Y + i * LINE + (i === 0 ? 13 : 15);
      parts.push(
        `<text x="${fmt(x + PAD_X)}" y="${fmt(baseline)}" font-size="${i === 0 ? 14 : 12}"${weight} fill="${c.text}">${escapeXml(line)}</text>`,
      );
    }
    parts.push("</g>");
    out.push(parts.join(""));
  }
  out.push("</g>", legend(MARGIN, legendTop), "</svg>");
  return `${out.join("\n")}\n`;
}

const LEGEND_LABELS: Readonly<Record<StageColorKey, string>> = {
  completed: "completed",
  failed: "failed",
  ready: "pending, ready (dependencies done)",
  pending: "pending",
};

function legendWidth(): number {
  return Object.values(LEGEND_LABELS).reduce((sum, label) => sum + 42 + textWidth(label, 12), 0);
}

function legend(x: number, y: number): string {
  const labels = LEGEND_LABELS;
  const parts = ['<g class="legend">'];
  let left = x;
  for (const [key, c] of Object.entries(STAGE_COLORS) as [StageColorKey, { fill: string }][]) {
    parts.push(
      `<rect x="${fmt(left)}" y="${fmt(y)}" width="14" height="14" rx="3" fill="${c.fill}" stroke="${MARK_COLORS.outline}" stroke-opacity="0.55"/>`,
      `<text x="${fmt(left + 20)}" y="${fmt(y + 11.5)}" font-size="12" fill="${MARK_COLORS.text}">${escapeXml(labels[key])}</text>`,
    );
    left += 20 + textWidth(labels[key], 12) + 22;
  }
  parts.push("</g>");
  return parts.join("");
}
