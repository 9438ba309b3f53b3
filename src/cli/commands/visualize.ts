/** `cairn visualize`: draws a run's checkpoint graph to a PNG, SVG, Mermaid or DOT file. */
import { resolve } from "node:path";
import type { Command } from "commander";
import { InvalidArgumentError } from "../../core/errors.js";
import {
  buildCheckpointGraph,
  buildStageGraph,
  formatFromPath,
  GRAPH_FORMATS,
  GRAPH_KINDS,
  type GraphKind,
  renderCheckpointGraph,
  renderStageGraph,
} from "../../debug/visualize/index.js";
import { writeFileDurably } from "../../util/atomic-file.js";
import { UsageError } from "../exit-codes.js";
import { printJson, printText, warn } from "../output.js";
import { examples } from "../runs.js";
import { storeHint } from "../store-args.js";
import { addStoreOptions, type StoreFlags, withReader } from "../store-options.js";
import { addThreadOptions, checkThreadFlags, type ThreadFlags } from "../thread-args.js";
import { visualizeThread } from "./visualize-thread.js";

interface VisualizeFlags extends StoreFlags, ThreadFlags {
  pipelineId?: string;
  output: string;
  validate: boolean;
  graph: string;
}

/** Registers `cairn visualize`. */
export function registerVisualize(program: Command): void {
  const command = program
    .command("visualize")
    .summary("Draw a run's checkpoint graph or stage graph (PNG, SVG, Mermaid, DOT)")
    .description(
      "Draw a run's checkpoints left to right, parent to child, coloured by status, with resumes, " +
        "failures, invalid and quarantined checkpoints and unreadable entries marked. The output file's " +
        `extension chooses the format: ${GRAPH_FORMATS.map((f) => `.${f}`).join(", ")}. With --graph stages, draw ` +
        "the pipeline's stages instead: their status in the newest checkpoint that verifies, and an edge from " +
        "each dependency to the stage that waits for it. With --thread, a LangGraph thread's checkpoint tree: " +
        "each namespace a cluster, forks as branches, pending writes as leaves, labelled with LangGraph's ids, " +
        "sources and steps.",
    )
    .option("--pipeline-id <id>", "the run to draw")
    .requiredOption("-o, --output <file>", "file to write: graph.png, graph.svg, graph.mmd or graph.dot")
    .option("--no-validate", "skip validating each checkpoint (faster; no invalid marks)")
    .option(
      "--graph <kind>",
      "what to draw: chain (the checkpoints, parent to child) or stages (the pipeline's stages by status, " +
        "dependency edges, from the newest checkpoint that verifies)",
      "chain",
    )
    .addHelpText(
      "after",
      examples(
        "cairn visualize --pipeline-id etl_20240101T000000000Z_abc234 --output graph.png",
        "cairn visualize --pipeline-id etl_20240101T000000000Z_abc234 --output graph.mmd --store sqlite:./cairn.db",
        "cairn visualize --pipeline-id etl_20240101T000000000Z_abc234 --output stages.svg --graph stages",
        "cairn visualize --thread support-42 --output tree.svg --store sqlite:./graph.db",
      ),
    );
  addThreadOptions(
    command,
    "draw its checkpoint tree: forks as branches, each namespace (subgraph) a cluster, pending writes as leaves",
  );
  addStoreOptions(command).action(async (flags: VisualizeFlags, self: Command) => {
    checkThreadFlags(flags);
    // A bad extension is a usage error found before the store is opened.
    const format = formatFromPath(flags.output);
    const kind = graphKind(flags.graph);
    const output = resolve(flags.output);
    if (flags.thread !== undefined) {
      if (kind !== "chain")
        throw new UsageError("--graph stages draws a pipeline's stages: a thread has none");
      if (flags.validate === false)
        throw new UsageError("--no-validate: a thread's tree is always drawn from verified records");
      const thread = flags.thread;
      return withReader(flags, (manager) => visualizeThread(manager, { ...flags, thread }, output, format));
    }
    if (flags.pipelineId === undefined)
      throw new UsageError("say what to draw: --pipeline-id <id>, or --thread <thread_id>");
    const pipelineId = flags.pipelineId;
    if (kind === "stages") {
      const stages = await withReader(flags, (manager) => buildStageGraph(manager, pipelineId));
      await writeFileDurably(output, await renderStageGraph(stages, format));
      if (flags.json) {
        printJson({
          pipelineId: stages.pipelineId,
          output,
          format,
          graph: kind,
          checkpointId: stages.checkpointId,
          nodes: stages.nodes.length,
          edges: stages.edges.length,
          dependenciesKnown: stages.dependenciesKnown,
        });
      } else {
        printText(
          `Wrote the stage graph of ${stages.pipelineId} to ${output} (${format}: ${stages.nodes.length} stages, ` +
            `${stages.edges.length} dependencies, statuses from checkpoint ${stages.checkpointId})`,
        );
      }
      return;
    }
    const graph = await withReader(flags, (manager) =>
      buildCheckpointGraph(manager, pipelineId, { validate: flags.validate }),
    );
    await writeFileDurably(output, await renderCheckpointGraph(graph, format));
    const { invalid, corrupt, quarantined } = graph.counts;
    if (flags.json) {
      printJson({
        pipelineId: graph.pipelineId,
        output,
        format,
        nodes: graph.nodes.length,
        edges: graph.edges.length,
        invalid,
        quarantined,
        corrupt,
      });
    } else {
      const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
      printText(
        `Wrote the checkpoint graph of ${graph.pipelineId} to ${output} (${format}: ` +
          `${plural(graph.nodes.length, "node")}, ${plural(graph.edges.length, "edge")})`,
      );
    }
    const handled = quarantined > 0 ? ` (${quarantined} quarantined)` : "";
    const problems = [
      invalid > 0 ? `${invalid} checkpoint${invalid === 1 ? " is" : "s are"} invalid${handled}` : "",
      corrupt > 0 ? `${corrupt} ${corrupt === 1 ? "entry is" : "entries are"} unreadable` : "",
    ].filter((p) => p !== "");
    if (problems.length > 0) {
      warn(
        `${problems.join(" and ")}; see cairn validate --pipeline-id ${graph.pipelineId}${storeHint(self)}`,
      );
    }
  });
}

function graphKind(value: string): GraphKind {
  if ((GRAPH_KINDS as readonly string[]).includes(value)) return value as GraphKind;
  throw new InvalidArgumentError(
    `Unknown --graph ${JSON.stringify(value)} (expected one of ${GRAPH_KINDS.join(", ")})`,
  );
}
