/**
 * The checkpoint graph as SVG: laid out left to right with dagre, one rounded box per
 * checkpoint filled with its status colour, parent → child arrows, a title and a legend. The
 * text is sized for DejaVu Sans, the font the PNG renderer embeds.
 */
import dagre from "@dagrejs/dagre";
import { formatBytes } from "../../manager/chain-text.js";
import type { CheckpointGraph, GraphNode } from "./graph.js";
import { renderLegend } from "./legend.js";
import { MARK_COLORS, STATUS_COLORS, STATUS_TEXT_COLORS, statusLabel } from "./palette.js";
import { escapeXml, fitText, fmt, formatUtc, textWidth, wrapText } from "./text.js";

/** Font family of every text element. */
export const FONT_FAMILY = "DejaVu Sans, sans-serif";

const MARGIN = 24;
const MIN_WIDTH = 400;
const PAD_X = 12;
const PAD_Y = 10;
const NODE_MIN = 170;
const NODE_MAX = 270;
/** Room around each box for the invalid ring and the arrow heads. */
const HALO = 7;
const HEAD = { size: 14, height: 19 };
const BODY = { size: 12, height: 16 };
const SMALL = { size: 11, height: 15 };

interface Line {
  text: string;
  size: number;
  height: number;
  bold?: boolean;
  /** Drawn on the failure band at the bottom of the box. */
  band?: boolean;
  /** Extra space above the line. */
  gap?: number;
}

interface Box {
  node: GraphNode;
  lines: Line[];
  width: number;
  height: number;
  fill: string;
  text: string;
  dashed: boolean;
  invalid: boolean;
  /** Tooltip: full id and what is wrong. */
  tooltip: string;
}

/** Renders the graph as a standalone SVG document. */
export function renderSvg(graph: CheckpointGraph): string {
  const boxes = new Map(graph.nodes.map((node) => [node.id, boxFor(node)]));
  const layout = layOut(graph, boxes);
  const counts = graph.counts;
  const title = graph.title;
  const subtitle = [
    `${counts.checkpoints} checkpoint${counts.checkpoints === 1 ? "" : "s"}`,
    `${counts.resumed} resumed`,
    `${counts.failed} failed`,
    graph.validated ? `${counts.invalid} invalid (${counts.quarantined} quarantined)` : "not validated",
    `${counts.corrupt} unreadable`,
    `generated ${formatUtc(graph.generatedAt)}`,
  ].join(" · ");
  const width = Math.ceil(
    Math.max(
      MIN_WIDTH,
      layout.width + 2 * MARGIN,
      textWidth(title, 18, true) + 2 * MARGIN,
      textWidth(subtitle, 12) + 2 * MARGIN,
    ),
  );
  const graphTop = MARGIN + 56;
  const legend = renderLegend(MARGIN, graphTop + layout.height + 28, width - 2 * MARGIN);
  const height = Math.ceil(legend.bottom + MARGIN);
  const dx = MARGIN + (width - 2 * MARGIN - layout.width) / 2;

  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT_FAMILY}">`,
    `<title>${escapeXml(`Checkpoint graph: ${title}`)}</title>`,
    "<defs>",
    `<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="10" markerHeight="10" markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="${MARK_COLORS.edge}"/></marker>`,
    `<marker id="arrow-removed" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="10" markerHeight="10" markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="${MARK_COLORS.removed}"/></marker>`,
    "</defs>",
    `<rect x="0" y="0" width="${width}" height="${height}" fill="${MARK_COLORS.background}"/>`,
    `<g class="title"><text x="${MARGIN}" y="${MARGIN + 18}" font-size="18" font-weight="bold" fill="${MARK_COLORS.text}">${escapeXml(title)}</text>`,
    `<text x="${MARGIN}" y="${MARGIN + 40}" font-size="12" fill="${MARK_COLORS.muted}">${escapeXml(subtitle)}</text></g>`,
    '<g class="edges">',
  ];
  for (const edge of graph.edges) {
    const points = layout.edges.get(`${edge.from}\n${edge.to}`) ?? [];
    if (points.length < 2) continue;
    const d = points.map((p, i) => `${i === 0 ? "M" : "L"}${fmt(p.x + dx)},${fmt(p.y + graphTop)}`).join(" ");
    const removed = boxes.get(edge.from)?.node.kind === "removed";
    out.push(
      `<path d="${d}" fill="none" stroke="${removed ? MARK_COLORS.removed : MARK_COLORS.edge}" stroke-width="1.6"${removed ? ' stroke-dasharray="5 4"' : ""} marker-end="url(#${removed ? "arrow-removed" : "arrow"})"/>`,
    );
  }
  out.push("</g>", '<g class="nodes">');
  for (const [id, box] of boxes) {
    const centre = layout.nodes.get(id);
    if (centre) out.push(renderBox(box, centre.x + dx - box.width / 2, centre.y + graphTop - box.height / 2));
  }
  out.push("</g>", legend.svg, "</svg>");
  return `${out.join("\n")}\n`;
}

/** The lines and colours of one node, sized to its text. */
function boxFor(node: GraphNode): Box {
  const inner = NODE_MAX - 2 * PAD_X;
  const line = (text: string, style: { size: number; height: number }, bold = false): Line => ({
    text: fitText(text, inner, style.size, bold),
    ...style,
    bold,
  });
  let lines: Line[];
  let fill: string;
  let text: string;
  let tooltip: string;
  if (node.kind === "removed") {
    lines = [
      line("parent removed", BODY, true),
      { text: fitText(node.checkpointId, 180, SMALL.size), ...SMALL },
    ];
    fill = MARK_COLORS.background;
    text = MARK_COLORS.removed;
    tooltip = `${node.checkpointId}: no longer in the store`;
  } else if (node.kind === "corrupt") {
    const where = node.location.split(/[\\/]/).pop() ?? node.location;
    lines = [
      line("⚠ unreadable entry", HEAD, true),
      line(where, BODY),
      ...wrapText(node.reason, inner, SMALL.size, 2).map((t) => ({ text: t, ...SMALL })),
    ];
    fill = STATUS_COLORS.corrupt;
    text = STATUS_TEXT_COLORS.corrupt;
    tooltip = `${node.location}: ${node.reason}`;
  } else {
    lines = [
      line(node.stageName, HEAD, true),
      line(`#${node.sequence} · ${statusLabel(node.status)}`, BODY),
      line(formatUtc(node.timestamp), BODY),
      line(formatBytes(node.dataSize), BODY),
    ];
    if (node.resumed) {
      lines.push(line(`↻ resumed${node.resumeCount > 0 ? ` ×${node.resumeCount}` : ""}`, BODY, true));
    }
    if (node.valid === false || node.quarantined) {
      const kinds = [...new Set(node.problems.map((p) => p.kind.replace(/_/g, " ")))].join(", ");
      const what = node.quarantined ? "⊘ quarantined" : "⚠ invalid";
      lines.push(line(`${what}${kinds ? `: ${kinds}` : ""}`, BODY, true));
    }
    if (node.failed) {
      const message = `✗ ${node.errorMessage ?? "failed"}`;
      const wrapped = wrapText(message, inner, SMALL.size, 2);
      lines.push(...wrapped.map((t, i) => ({ text: t, ...SMALL, band: true, gap: i === 0 ? 5 : 0 })));
    }
    fill = STATUS_COLORS[node.status];
    text = STATUS_TEXT_COLORS[node.status];
    tooltip = [node.checkpointId, ...node.problems.map((p) => `${p.kind}: ${p.message}`)].join("\n");
  }
  const widest = Math.max(...lines.map((l) => textWidth(l.text, l.size, l.bold)));
  const min = node.kind === "removed" ? 120 : NODE_MIN;
  return {
    node,
    lines,
    width: Math.ceil(Math.min(NODE_MAX, Math.max(min, widest + 2 * PAD_X))),
    height: Math.ceil(lines.reduce((sum, l) => sum + (l.gap ?? 0) + l.height, 0) + 2 * PAD_Y),
    fill,
    text,
    dashed: node.kind === "removed",
    invalid: node.kind === "checkpoint" && node.valid === false,
    tooltip,
  };
}

interface Layout {
  width: number;
  height: number;
  nodes: Map<string, { x: number; y: number }>;
  edges: Map<string, { x: number; y: number }[]>;
}

/** Positions nodes and routes edges left to right. */
function layOut(graph: CheckpointGraph, boxes: ReadonlyMap<string, Box>): Layout {
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: 28, ranksep: 46, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const [id, box] of boxes)
    g.setNode(id, { width: box.width + 2 * HALO, height: box.height + 2 * HALO });
  for (const edge of graph.edges) g.setEdge(edge.from, edge.to, { weight: 2 });
  // An unreadable entry has no parent link; place it after the entry listed before it.
  let previous: string | undefined;
  for (const node of graph.nodes) {
    if (node.kind === "removed") continue;
    const linked = graph.edges.some((e) => e.to === node.id);
    if (node.kind === "corrupt" && !linked && previous !== undefined && !g.hasEdge(previous, node.id)) {
      g.setEdge(previous, node.id, { weight: 1 });
    }
    previous = node.id;
  }
  dagre.layout(g);
  const label = g.graph() as { width?: number; height?: number };
  const nodes = new Map<string, { x: number; y: number }>();
  for (const id of boxes.keys()) {
    const n = g.node(id) as { x: number; y: number } | undefined;
    if (n) nodes.set(id, { x: n.x, y: n.y });
  }
  const edges = new Map<string, { x: number; y: number }[]>();
  for (const edge of graph.edges) {
    const e = g.edge(edge.from, edge.to) as { points?: { x: number; y: number }[] } | undefined;
    edges.set(`${edge.from}\n${edge.to}`, e?.points ?? []);
  }
  return { width: label.width ?? 0, height: label.height ?? 0, nodes, edges };
}

/** One node: its box, the invalid ring, the text lines and a tooltip. */
function renderBox(box: Box, x: number, y: number): string {
  const kind = box.node.kind === "checkpoint" ? `status-${box.node.status}` : box.node.kind;
  const parts = [
    `<g class="node ${kind}${box.invalid ? " invalid" : ""}"><title>${escapeXml(box.tooltip)}</title>`,
    `<rect x="${fmt(x)}" y="${fmt(y)}" width="${box.width}" height="${box.height}" rx="8" ry="8" fill="${box.fill}" stroke="${box.dashed ? MARK_COLORS.removed : MARK_COLORS.outline}" stroke-width="${box.dashed ? 1.5 : 1}"${box.dashed ? ' stroke-dasharray="5 4"' : ' stroke-opacity="0.55"'}/>`,
  ];
  if (box.invalid) {
    parts.push(
      `<rect x="${fmt(x - 4)}" y="${fmt(y - 4)}" width="${box.width + 8}" height="${box.height + 8}" rx="11" ry="11" fill="none" stroke="${MARK_COLORS.invalid}" stroke-width="4" stroke-dasharray="10 5"/>`,
    );
  }
  let top = y + PAD_Y;
  let banded = false;
  for (const line of box.lines) {
    if (line.band && !banded) {
      // The failure band: from this line to the bottom of the box, bottom corners rounded.
      banded = true;
      const r = 8;
      const h = y + box.height - top;
      parts.push(
        `<path class="failure" d="M${fmt(x)},${fmt(top)} h${box.width} v${fmt(h - r)} a${r},${r} 0 0 1 -${r},${r} h-${box.width - 2 * r} a${r},${r} 0 0 1 -${r},-${r} z" fill="${MARK_COLORS.failure}"/>`,
      );
    }
    top += line.gap ?? 0;
    // Centred in its line: DejaVu Sans capitals are about 0.73 em tall.
    const baseline = top + line.height / 2 + line.size * 0.36;
    const weight = line.bold ? ' font-weight="bold"' : "";
    const color = line.band ? MARK_COLORS.failureText : box.text;
    parts.push(
      `<text x="${fmt(x + PAD_X)}" y="${fmt(baseline)}" font-size="${line.size}"${weight} fill="${color}">${escapeXml(line.text)}</text>`,
    );
    top += line.height;
  }
  parts.push("</g>");
  return parts.join("");
}
