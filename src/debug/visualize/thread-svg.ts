/**
 * A thread's checkpoint tree as SVG, laid out left to right by dagre as a compound graph: each
 * namespace is a cluster (a dashed box with its name), each checkpoint a box coloured by its
 * LangGraph source, forks are plain branching edges, and pending writes small grey leaves.
 * Sized for DejaVu Sans like the run graph, so the PNG (resvg) looks the same.
 */
import dagre from "@dagrejs/dagre";
import { MARK_COLORS } from "./palette.js";
import { FONT_FAMILY } from "./svg.js";
import { escapeXml, fitText, fmt, formatUtc, textWidth } from "./text.js";
import type { ThreadGraph, ThreadGraphNode } from "./thread-graph.js";
import { THREAD_COLORS, threadColor, threadMarks } from "./thread-render.js";

const MARGIN = 24;
const PAD_X = 10;
const PAD_Y = 8;
/** Room above a cluster's nodes for its name. */
const CLUSTER_HEAD = 22;
const CLUSTER_PAD = 12;

interface Box {
  node: ThreadGraphNode;
  lines: { text: string; size: number; bold: boolean }[];
  width: number;
  height: number;
}

function boxFor(node: ThreadGraphNode): Box {
  const small = node.kind === "writes";
  const lines = [...node.lines, ...threadMarks(node)].map((text, i) => ({
    text: fitText(text, small ? 220 : 200, small ? 10 : i === 0 ? 13 : 11, !small && i === 0),
    size: small ? 10 : i === 0 ? 13 : 11,
    bold: !small && i === 0,
  }));
  const widest = Math.max(...lines.map((l) => textWidth(l.text, l.size, l.bold)));
  return {
    node,
    lines,
    width: Math.ceil(Math.max(small ? 60 : 110, widest + 2 * PAD_X)),
    height: Math.ceil(lines.reduce((sum, l) => sum + l.size + 4, 0) + 2 * (small ? PAD_Y / 2 : PAD_Y)),
  };
}

/** Renders the thread graph as a standalone SVG document. */
export function renderThreadSvg(graph: ThreadGraph): string {
  const boxes = new Map(graph.nodes.map((n) => [n.id, boxFor(n)]));
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: 22, ranksep: 40, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const group of graph.groups) g.setNode(group.id, {});
  for (const [id, box] of boxes) {
    g.setNode(id, { width: box.width + 8, height: box.height + 8 });
    g.setParent(id, box.node.group);
  }
  // A subgraph edge crosses clusters; it orders them but weighs little.
  for (const e of graph.edges) g.setEdge(e.from, e.to, { weight: e.kind === "parent" ? 3 : 1 });
  dagre.layout(g);
  const label = g.graph() as { width?: number; height?: number };
  const counts = graph.counts;
  const subtitle = [
    `${counts.namespaces} namespace${counts.namespaces === 1 ? "" : "s"}`,
    `${counts.checkpoints} checkpoints`,
    `${counts.writes} writes records`,
    `${counts.forks} fork${counts.forks === 1 ? "" : "s"}`,
    `${counts.invalid} invalid`,
    `generated ${formatUtc(graph.generatedAt)}`,
  ].join(" · ");
  const graphTop = MARGIN + 56 + CLUSTER_HEAD;
  const innerWidth = (label.width ?? 0) + 2 * CLUSTER_PAD;
  const width = Math.ceil(
    Math.max(
      420,
      innerWidth + 2 * MARGIN,
      textWidth(graph.title, 18, true) + 2 * MARGIN,
      textWidth(subtitle, 12) + 2 * MARGIN,
    ),
  );
  const legendTop = graphTop + (label.height ?? 0) + CLUSTER_PAD + 24;
  const height = Math.ceil(legendTop + 30 + MARGIN);
  const dx = MARGIN + CLUSTER_PAD + (width - 2 * MARGIN - innerWidth) / 2;
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT_FAMILY}">`,
    `<title>${escapeXml(`Checkpoint tree: ${graph.title}`)}</title>`,
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="${MARK_COLORS.edge}"/></marker></defs>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="${MARK_COLORS.background}"/>`,
    `<g class="title"><text x="${MARGIN}" y="${MARGIN + 18}" font-size="18" font-weight="bold" fill="${MARK_COLORS.text}">${escapeXml(graph.title)}</text>`,
    `<text x="${MARGIN}" y="${MARGIN + 40}" font-size="12" fill="${MARK_COLORS.muted}">${escapeXml(subtitle)}</text></g>`,
    '<g class="namespaces">',
  ];
  for (const group of graph.groups) {
    const c = g.node(group.id) as { x: number; y: number; width: number; height: number } | undefined;
    if (!c) continue;
    const x = c.x - c.width / 2 - CLUSTER_PAD + dx;
    const y = c.y - c.height / 2 - CLUSTER_PAD - CLUSTER_HEAD + graphTop;
    const name = fitText(`namespace ${group.label}`, c.width + 2 * CLUSTER_PAD - 12, 12, true);
    out.push(
      `<g class="namespace"><title>${escapeXml(`run ${group.runId}`)}</title>` +
        `<rect x="${fmt(x)}" y="${fmt(y)}" width="${fmt(c.width + 2 * CLUSTER_PAD)}" height="${fmt(c.height + 2 * CLUSTER_PAD + CLUSTER_HEAD)}" rx="10" ry="10" fill="#f5f7f8" stroke="#90a4ae" stroke-dasharray="6 4"/>` +
        `<text x="${fmt(x + 8)}" y="${fmt(y + 16)}" font-size="12" font-weight="bold" fill="${MARK_COLORS.muted}">${escapeXml(name)}</text></g>`,
    );
  }
  out.push("</g>", '<g class="edges">');
  for (const e of graph.edges) {
    const points =
      (g.edge(e.from, e.to) as { points?: { x: number; y: number }[] } | undefined)?.points ?? [];
    if (points.length < 2) continue;
    const d = points.map((p, i) => `${i === 0 ? "M" : "L"}${fmt(p.x + dx)},${fmt(p.y + graphTop)}`).join(" ");
    const dash =
      e.kind === "writes"
        ? ' stroke-dasharray="2 3"'
        : e.kind === "subgraph"
          ? ' stroke-dasharray="7 4"'
          : "";
    const marker = e.kind === "writes" ? "" : ' marker-end="url(#arrow)"';
    out.push(
      `<path class="edge ${e.kind}" d="${d}" fill="none" stroke="${MARK_COLORS.edge}" stroke-width="1.5"${dash}${marker}/>`,
    );
  }
  out.push("</g>", '<g class="nodes">');
  for (const [id, box] of boxes) {
    const n = g.node(id) as { x: number; y: number } | undefined;
    if (n) out.push(renderNode(box, n.x + dx - box.width / 2, n.y + graphTop - box.height / 2));
  }
  out.push("</g>", legend(MARGIN, legendTop), "</svg>");
  return `${out.join("\n")}\n`;
}

function renderNode(box: Box, x: number, y: number): string {
  const { node } = box;
  const color = threadColor(node);
  const classes = [
    `node ${node.kind}`,
    `source-${node.source}`,
    node.latest ? "latest" : "",
    node.check,
  ].filter(Boolean);
  const stroke = node.latest
    ? `stroke="${MARK_COLORS.outline}" stroke-width="3"`
    : `stroke="${MARK_COLORS.outline}" stroke-opacity="0.5"`;
  const parts = [
    `<g class="${classes.join(" ")}"><title>${escapeXml(node.tooltip)}</title>`,
    `<rect x="${fmt(x)}" y="${fmt(y)}" width="${box.width}" height="${box.height}" rx="${node.kind === "writes" ? 3 : 7}" fill="${color.fill}" ${stroke}/>`,
  ];
  if (node.check === "invalid") {
    parts.push(
      `<rect x="${fmt(x - 4)}" y="${fmt(y - 4)}" width="${box.width + 8}" height="${box.height + 8}" rx="10" fill="none" stroke="${MARK_COLORS.invalid}" stroke-width="3" stroke-dasharray="8 4"/>`,
    );
  }
  let top = y + (node.kind === "writes" ? PAD_Y / 2 : PAD_Y);
  for (const line of box.lines) {
    top += line.size + 4;
    parts.push(
      `<text x="${fmt(x + PAD_X)}" y="${fmt(top - 4)}" font-size="${line.size}"${line.bold ? ' font-weight="bold"' : ""} fill="${color.text}">${escapeXml(line.text)}</text>`,
    );
  }
  parts.push("</g>");
  return parts.join("");
}

/** One row: a swatch per source, the writes leaf, and what the marks mean. */
function legend(x: number, top: number): string {
  const items = [
    ...["input", "loop", "update", "fork"].map((s) => ({ label: s, color: THREAD_COLORS[s]?.fill ?? "" })),
    { label: "pending writes", color: THREAD_COLORS.writes?.fill ?? "" },
    { label: "★ latest  ⑂ fork  ⚠ invalid  ◌ encrypted", color: "" },
  ];
  const parts = [
    `<g class="legend"><text x="${x}" y="${top + 15}" font-size="12" font-weight="bold" fill="${MARK_COLORS.text}">Legend</text>`,
  ];
  let cx = x + 62;
  for (const item of items) {
    if (item.color) {
      parts.push(
        `<rect x="${fmt(cx)}" y="${top + 4}" width="16" height="13" rx="3" fill="${item.color}" stroke="${MARK_COLORS.outline}" stroke-opacity="0.5"/>`,
      );
      cx += 22;
    }
    parts.push(
      `<text x="${fmt(cx)}" y="${top + 15}" font-size="12" fill="${MARK_COLORS.text}">${escapeXml(item.label)}</text>`,
    );
    cx += textWidth(item.label, 12) + 18;
  }
  parts.push("</g>");
  return parts.join("");
}
