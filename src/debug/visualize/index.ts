/**
 * Checkpoint graphs: the model of a run's checkpoints ({@link buildCheckpointGraph}) and its
 * renderings as SVG, PNG, Mermaid and Graphviz DOT.
 */
import { extname } from "node:path";
import { InvalidArgumentError } from "../../core/errors.js";
import { renderDot } from "./dot.js";
import type { CheckpointGraph } from "./graph.js";
import { renderMermaid } from "./mermaid.js";
import { type PngOptions, renderPng } from "./png.js";
import type { StageGraph } from "./stage-graph.js";
import { renderStageDot, renderStageMermaid, renderStageSvg } from "./stage-render.js";
import { renderSvg } from "./svg.js";

export { renderDot } from "./dot.js";
export {
  type BuildGraphOptions,
  buildCheckpointGraph,
  type CheckpointGraph,
  type CheckpointGraphNode,
  type CorruptGraphNode,
  type GraphCounts,
  type GraphEdge,
  type GraphNode,
  type RemovedGraphNode,
} from "./graph.js";
export { renderMermaid } from "./mermaid.js";
export { MARK_COLORS, type NodeColorKey, STATUS_COLORS, STATUS_TEXT_COLORS } from "./palette.js";
export { fontFiles, type PngOptions, renderPng } from "./png.js";
export {
  buildStageGraph,
  type StageEdge,
  type StageGraph,
  type StageNode,
  type StageState,
  stageGraphOf,
} from "./stage-graph.js";
export {
  renderStageDot,
  renderStageMermaid,
  renderStageSvg,
  STAGE_COLORS,
  type StageColorKey,
  stageColor,
  stageLabel,
} from "./stage-render.js";
export { FONT_FAMILY, renderSvg } from "./svg.js";

/** What `cairn visualize` draws: the run's stage graph, or its checkpoint chain (the default). */
export const GRAPH_KINDS = ["chain", "stages"] as const;

/** One of {@link GRAPH_KINDS}. */
export type GraphKind = (typeof GRAPH_KINDS)[number];

/** Output formats of checkpoint graphs. */
export const GRAPH_FORMATS = ["svg", "png", "mmd", "dot"] as const;

/** One of {@link GRAPH_FORMATS}. */
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

const EXTENSIONS: Readonly<Record<string, GraphFormat>> = {
  ".svg": "svg",
  ".png": "png",
  ".mmd": "mmd",
  ".mermaid": "mmd",
  ".dot": "dot",
  ".gv": "dot",
};

/** Renders the graph: text for svg, mmd and dot, PNG bytes for png. */
export async function renderCheckpointGraph(
  graph: CheckpointGraph,
  format: GraphFormat,
  options: PngOptions = {},
): Promise<string | Buffer> {
  switch (format) {
    case "svg":
      return renderSvg(graph);
    case "png":
      return renderPng(renderSvg(graph), options);
    case "mmd":
      return renderMermaid(graph);
    case "dot":
      return renderDot(graph);
    default:
      throw new InvalidArgumentError(
        `Unknown graph format ${JSON.stringify(format)} (expected one of ${GRAPH_FORMATS.join(", ")})`,
      );
  }
}

/** Renders a stage graph: text for svg, mmd and dot, PNG bytes for png. */
export async function renderStageGraph(
  graph: StageGraph,
  format: GraphFormat,
  options: PngOptions = {},
): Promise<string | Buffer> {
  switch (format) {
    case "svg":
      return renderStageSvg(graph);
    case "png":
      return renderPng(renderStageSvg(graph), options);
    case "mmd":
      return renderStageMermaid(graph);
    case "dot":
      return renderStageDot(graph);
    default:
      throw new InvalidArgumentError(
        `Unknown graph format ${JSON.stringify(format)} (expected one of ${GRAPH_FORMATS.join(", ")})`,
      );
  }
}

/** The format an output path asks for, by its extension; anything else is `CAIRN_INVALID_ARGUMENT`. */
export function formatFromPath(path: string): GraphFormat {
  const format = EXTENSIONS[extname(path).toLowerCase()];
  if (format === undefined) {
    throw new InvalidArgumentError(
      `Cannot tell the graph format of ${JSON.stringify(path)}: use one of the extensions ${Object.keys(EXTENSIONS).join(", ")}`,
    );
  }
  return format;
}
