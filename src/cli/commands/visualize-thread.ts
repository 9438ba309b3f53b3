/** `cairn visualize --thread`: a LangGraph thread's checkpoint tree to SVG, PNG, Mermaid or DOT. */
import { findThreadRun, readThread, readThreadRun, type ThreadView } from "../../debug/thread.js";
import type { GraphFormat } from "../../debug/visualize/index.js";
import { renderPng } from "../../debug/visualize/png.js";
import { buildThreadGraph, type ThreadGraph } from "../../debug/visualize/thread-graph.js";
import { renderThreadDot, renderThreadMermaid } from "../../debug/visualize/thread-render.js";
import { renderThreadSvg } from "../../debug/visualize/thread-svg.js";
import type { CheckpointManager } from "../../index.js";
import { threadPipelineName } from "../../langgraph/ids.js";
import { writeFileDurably } from "../../util/atomic-file.js";
import { printJson, printText, warn } from "../output.js";
import type { ThreadFlags } from "../thread-args.js";

/** Renders the thread graph in `format`: text for svg, mmd and dot, PNG bytes for png. */
export async function renderThreadGraph(graph: ThreadGraph, format: GraphFormat): Promise<string | Buffer> {
  switch (format) {
    case "png":
      return renderPng(renderThreadSvg(graph));
    case "mmd":
      return renderThreadMermaid(graph);
    case "dot":
      return renderThreadDot(graph);
    default:
      return renderThreadSvg(graph);
  }
}

/** Reads the thread (or one namespace of it), draws it to `output` and says what it drew. */
export async function visualizeThread(
  manager: CheckpointManager,
  flags: ThreadFlags & { thread: string; json?: boolean },
  output: string,
  format: GraphFormat,
): Promise<void> {
  const { thread } = flags;
  let view: ThreadView;
  if (flags.namespace === undefined) view = await readThread(manager, thread);
  else {
    const { threadId: _, ...ns } = await readThreadRun(
      manager,
      await findThreadRun(manager, thread, flags.namespace),
    );
    view = { threadId: thread, pipelineName: threadPipelineName(thread), namespaces: [ns] };
  }
  const graph = buildThreadGraph(view);
  await writeFileDurably(output, await renderThreadGraph(graph, format));
  const { checkpoints, writes, forks, invalid, namespaces } = graph.counts;
  if (flags.json) {
    printJson({ threadId: thread, output, format, namespaces, checkpoints, writes, forks, invalid });
  } else {
    printText(
      `Wrote the checkpoint tree of LangGraph thread ${JSON.stringify(thread)} to ${output} (${format}: ` +
        `${namespaces} namespace${namespaces === 1 ? "" : "s"}, ${checkpoints} checkpoints, ${writes} writes records, ` +
        `${forks} fork${forks === 1 ? "" : "s"})`,
    );
  }
  if (invalid > 0)
    warn(`${invalid} record${invalid === 1 ? " is" : "s are"} invalid; see cairn validate --thread`);
}
