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
/** Space between two namespaces' clusters. */
const CLUSTER_GAP = 26;

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

interface Placed {
  /** Node centres, page coordinates. */
  nodes: Map<string, { x: number; y: number }>;
  /** Edge routes inside a cluster, page coordinates. */
  edges: Map<string, { x: number; y: number }[]>;
  clusters: { label: string; runId: string; x: number; y: number; width: number; height: number }[];
  width: number;
  height: number;
}

/**
 * Lays out each namespace on its own (dagre, left to right) and stacks the clusters top to
 * bottom, root graph first: a compound layout lets clusters overlap their labels, and a
 * namespace's tree reads best when it is not interleaved with another's.
 */
function layOut(graph: ThreadGraph, boxes: ReadonlyMap<string, Box>, left: number, top: number): Placed {
  const placed: Placed = { nodes: new Map(), edges: new Map(), clusters: [], width: 0, height: 0 };
  let y = top;
  for (const group of graph.groups) {
    const g = new dagre.graphlib.Graph({ multigraph: false });
    g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 40, marginx: 0, marginy: 0 });
    g.setDefaultEdgeLabel(() => ({}));
    const members = new Set<string>();
    for (const [id, box] of boxes) {
      if (box.node.group !== group.id) continue;
      members.add(id);
      g.setNode(id, { width: box.width + 8, height: box.height + 8 });
    }
    for (const e of graph.edges) {
      if (members.has(e.from) && members.has(e.to))
        g.setEdge(e.from, e.to, { weight: e.kind === "parent" ? 3 : 1 });
    }
    dagre.layout(g);
    const size = g.graph() as { width?: number; height?: number };
    const width = (size.width ?? 0) + 2 * CLUSTER_PAD;
    const height = (size.height ?? 0) + 2 * CLUSTER_PAD + CLUSTER_HEAD;
    const ox = left + CLUSTER_PAD;
    const oy = y + CLUSTER_HEAD + CLUSTER_PAD;
    for (const id of members) {
      const n = g.node(id) as { x: number; y: number } | undefined;
      if (n) placed.nodes.set(id, { x: n.x + ox, y: n.y + oy });
    }
    for (const e of graph.edges) {
      if (!(members.has(e.from) && members.has(e.to))) continue;
      const route = g.edge(e.from, e.to) as { points?: { x: number; y: number }[] } | undefined;
      const points = route?.points?.map((p) => ({ x: p.x + ox, y: p.y + oy }));
      if (points) placed.edges.set(`${e.from}\n${e.to}`, points);
    }
    placed.clusters.push({ label: group.label, runId: group.runId, x: left, y, width, height });
    placed.width = Math.max(placed.width, width);
    y += height + CLUSTER_GAP;
  }
  placed.height = Math.max(0, y - CLUSTER_GAP - top);
  return placed;
}

/**
 * A subgraph edge, routed around the nodes: down from the parent graph's checkpoint into the gap
 * above the subgraph's cluster, along it to the cluster's left margin, down, and into the
 * subgraph's first checkpoint from the left.
 */
function crossRoute(
  from: { x: number; y: number },
  fromBox: Box,
  to: { x: number; y: number },
  toBox: Box,
  cluster: { x: number; y: number },
) {
  const gapY = cluster.y - CLUSTER_GAP / 2;
  const laneX = cluster.x + CLUSTER_PAD / 2;
  const points = [
    [from.x, from.y + fromBox.height / 2],
    [from.x, gapY],
    [laneX, gapY],
    [laneX, to.y],
    [to.x - toBox.width / 2, to.y],
  ];
  return points.map(([x, y], i) => `${i === 0 ? "M" : "L"}${fmt(x as number)},${fmt(y as number)}`).join(" ");
}

/** Renders the thread graph as a standalone SVG document. */
export function renderThreadSvg(graph: ThreadGraph): string {
  const boxes = new Map(graph.nodes.map((n) => [n.id, boxFor(n)]));
  const counts = graph.counts;
  const subtitle = [
    `${counts.namespaces} namespace${counts.namespaces === 1 ? "" : "s"}`,
    `${counts.checkpoints} checkpoints`,
    `${counts.writes} writes records`,
    `${counts.forks} fork${counts.forks === 1 ? "" : "s"}`,
    `${counts.invalid} invalid`,
    `generated ${formatUtc(graph.generatedAt)}`,
  ].join(" · ");
  const layout = layOut(graph, boxes, MARGIN, MARGIN + 60);
  const key = legend(MARGIN, 0);
  const width = Math.ceil(
    Math.max(
      420,
      key.width + 2 * MARGIN,
      layout.width + 2 * MARGIN,
      textWidth(graph.title, 18, true) + 2 * MARGIN,
      textWidth(subtitle, 12) + 2 * MARGIN,
    ),
  );
  const legendTop = MARGIN + 60 + layout.height + 20;
  const height = Math.ceil(legendTop + 30 + MARGIN);
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
  for (const c of layout.clusters) {
    const name = fitText(`namespace ${c.label}`, c.width - 16, 12, true);
    out.push(
      `<g class="namespace"><title>${escapeXml(`run ${c.runId}`)}</title>` +
        `<rect x="${fmt(c.x)}" y="${fmt(c.y)}" width="${fmt(c.width)}" height="${fmt(c.height)}" rx="10" ry="10" fill="#f5f7f8" stroke="#90a4ae" stroke-dasharray="6 4"/>` +
        `<text x="${fmt(c.x + 8)}" y="${fmt(c.y + 16)}" font-size="12" font-weight="bold" fill="${MARK_COLORS.muted}">${escapeXml(name)}</text></g>`,
    );
  }
  out.push("</g>", '<g class="edges">');
  for (const e of graph.edges) {
    const dash =
      e.kind === "writes"
        ? ' stroke-dasharray="2 3"'
        : e.kind === "subgraph"
          ? ' stroke-dasharray="7 4"'
          : "";
    const marker = e.kind === "writes" ? "" : ' marker-end="url(#arrow)"';
    let d: string | undefined;
    const points = layout.edges.get(`${e.from}\n${e.to}`);
    if (points && points.length >= 2)
      d = points.map((p, i) => `${i === 0 ? "M" : "L"}${fmt(p.x)},${fmt(p.y)}`).join(" ");
    else {
      const [from, to] = [layout.nodes.get(e.from), layout.nodes.get(e.to)];
      const [fromBox, toBox] = [boxes.get(e.from), boxes.get(e.to)];
      const cluster = layout.clusters[graph.groups.findIndex((g) => g.id === toBox?.node.group)];
      if (from && to && fromBox && toBox && cluster) d = crossRoute(from, fromBox, to, toBox, cluster);
    }
    if (d)
      out.push(
        `<path class="edge ${e.kind}" d="${d}" fill="none" stroke="${MARK_COLORS.edge}" stroke-width="1.5"${dash}${marker}/>`,
      );
  }
  out.push("</g>", '<g class="nodes">');
  for (const [id, box] of boxes) {
    const n = layout.nodes.get(id);
    if (n) out.push(renderNode(box, n.x - box.width / 2, n.y - box.height / 2));
  }
  out.push("</g>", legend(MARGIN, legendTop).svg, "</svg>");
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

/** One row: a swatch per source, the writes leaf, and what the marks mean; its width too. */
function legend(x: number, top: number): { svg: string; width: number } {
  const items = [
    ...["input", "loop", "update", "fork"].map((s) => ({ label: s, color: THREAD_COLORS[s]?.fill ?? "" })),
    { label: "pending writes", color: THREAD_COLORS.writes?.fill ?? "" },
    { label: "★ latest  ⚠ invalid  ◌ encrypted  - - → subgraph run by a task", color: "" },
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
  return { svg: parts.join(""), width: cx - x };
}
