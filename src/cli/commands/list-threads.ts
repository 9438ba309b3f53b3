/**
 * The LangGraph side of `cairn list`: thread runs named by their thread and namespace rather than
 * only their opaque run ids, a thread's namespaces (`--thread`), and one namespace's checkpoint
 * tree (`--thread --namespace`).
 */

import { shellQuote } from "../../debug/recommendations.js";
import { findThreadRun, langgraphState, readThread, readThreadRun } from "../../debug/thread.js";
import {
  NAMESPACE_HEADERS,
  namespaceJson,
  namespaceLabel,
  namespaceRows,
  renderThreadTree,
} from "../../debug/thread-text.js";
import type { CheckpointManager, PipelineSummary } from "../../index.js";
import { isThreadRun } from "../../langgraph/ids.js";
import { formatTable, formatTime, printJson, printText } from "../output.js";

/** The thread and namespace a thread run belongs to, read from its newest record's state. */
export interface ThreadOfRun {
  threadId: string;
  namespace: string;
}

/**
 * The thread of each thread run among `runs`, by run id; null for a run whose newest record
 * cannot be read (it does not verify, or is encrypted without the key): `cairn validate` says why.
 */
export async function threadsOf(
  manager: CheckpointManager,
  runs: readonly PipelineSummary[],
): Promise<Map<string, ThreadOfRun | null>> {
  const threads = new Map<string, ThreadOfRun | null>();
  for (const run of runs) {
    if (!isThreadRun(run.pipelineId) || run.latestCheckpointId === undefined) continue;
    let found: ThreadOfRun | null = null;
    try {
      const lg = langgraphState((await manager.loadCheckpoint(run.latestCheckpointId)).stateData);
      if (typeof lg?.thread_id === "string" && typeof lg.checkpoint_ns === "string")
        found = { threadId: lg.thread_id, namespace: lg.checkpoint_ns };
    } catch {
      // Shown as unknown; the listing is not the place to fail on one run's damage.
    }
    threads.set(run.pipelineId, found);
  }
  return threads;
}

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
