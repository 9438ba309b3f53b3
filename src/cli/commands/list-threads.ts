/**
 * The LangGraph side of `cairn list`: thread runs named by their thread and namespace rather than
 * only their opaque run ids, a thread's namespaces (`--thread`), and one namespace's checkpoint
 * tree (`--thread --namespace`).
 */

import { shellQuote } from "../../debug/recommendations.js";
import { findThreadRun, readThread, readThreadRun } from "../../debug/thread.js";
import type { ThreadOfRun } from "../../debug/thread-of-run.js";
import {
  NAMESPACE_HEADERS,
  namespaceJson,
  namespaceLabel,
  namespaceRows,
  renderThreadTree,
} from "../../debug/thread-text.js";
import type { CheckpointManager, PipelineSummary } from "../../index.js";
import { formatTable, formatTime, printJson, printText } from "../output.js";

/** The table of thread runs `cairn list` prints after the pipeline runs. */
export function threadTable(
  runs: readonly PipelineSummary[],
  threads: Map<string, ThreadOfRun | null>,
): string {
  const rows = runs.map((r) => {
    const t = threads.get(r.pipelineId);
    return [
      t ? JSON.stringify(t.threadId) : "?",
      t ? namespaceLabel(t.namespace) : "?",
      r.pipelineId,
      r.corruptCount > 0 ? `${r.checkpointCount} (+${r.corruptCount} unreadable)` : String(r.checkpointCount),
      formatTime(r.lastTimestamp),
    ];
  });
  return formatTable(["THREAD", "NAMESPACE", "RUN ID", "RECORDS", "LAST UPDATE"], rows, [
    "left",
    "left",
    "left",
    "right",
  ]);
}

/** `cairn list --thread T [--namespace NS]`: the thread's namespaces, or one namespace's tree. */
export async function listThread(
  manager: CheckpointManager,
  flags: { thread: string; namespace?: string; json?: boolean },
  hint: string,
): Promise<void> {
  const { thread } = flags;
  if (flags.namespace !== undefined) {
    const runId = await findThreadRun(manager, thread, flags.namespace);
    const { threadId: _, ...ns } = await readThreadRun(manager, runId);
    if (flags.json) return printJson(namespaceJson(thread, ns));
    return printText(renderThreadTree(thread, ns));
  }
  const view = await readThread(manager, thread);
  if (flags.json) {
    return printJson({
      threadId: thread,
      pipelineName: view.pipelineName,
      namespaces: view.namespaces.map((ns) => namespaceJson(thread, ns)),
    });
  }
  printText(`Thread ${JSON.stringify(thread)} (pipeline name ${view.pipelineName}):`);
  printText(
    formatTable(NAMESPACE_HEADERS, namespaceRows(view.namespaces), [
      "left",
      "left",
      "right",
      "right",
      "right",
      "right",
    ]),
  );
  printText(
    `A namespace's checkpoint tree: cairn list --thread ${shellQuote(thread)} --namespace <ns>${hint}` +
      ' (--namespace "" for the root graph)',
  );
}
