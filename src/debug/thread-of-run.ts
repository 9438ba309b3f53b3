/**
 * The LangGraph thread and namespace a thread run belongs to, read from its newest record's state:
 * `cairn list` and the console name thread runs by them rather than only by their opaque run ids.
 */

import type { PipelineSummary } from "../core/types.js";
import { isThreadRun } from "../langgraph/ids.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import { langgraphState } from "./thread.js";

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
  runs: readonly Pick<PipelineSummary, "pipelineId" | "latestCheckpointId">[],
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
