/**
 * `list`: a thread's checkpoints (or every thread's), newest LangGraph id first. Candidates come
 * from the runs' listings; each is read and verified before it is filtered, so a tampered record
 * fails the listing instead of being skipped.
 */
import { isDeepStrictEqual } from "node:util";
import type { CheckpointListOptions, CheckpointTuple } from "@langchain/langgraph-checkpoint";
import { CheckpointCorruptError } from "../core/errors.js";
import { mapLimit } from "../util/fs-util.js";
import { isThreadRun, threadPipelineName, threadRunId } from "./ids.js";
import { type CheckpointState, fromSerdeValue } from "./records.js";
import type { ReadRecord } from "./thread-store.js";
import { buildTuple, isDefaultSerde, type ReadThread } from "./tuple.js";

/** What to list: a thread (or all), a namespace (or all), and LangGraph's list options. */
export interface ListQuery extends CheckpointListOptions {
  threadId: string | undefined;
  ns: string | undefined;
}

/** The runs that may hold the query's checkpoints. */
async function runsOf(
  rt: ReadThread,
  threadId: string | undefined,
  ns: string | undefined,
): Promise<string[]> {
  const store = rt.threads.store;
  if (threadId === undefined) return (await store.listPipelineIds()).filter(isThreadRun);
  if (ns !== undefined) return [threadRunId(threadId, ns)];
  const runs = new Set([threadRunId(threadId)]);
  let cursor: string | undefined;
  do {
    const page = await store.listRuns({
      pipelineName: threadPipelineName(threadId),
      limit: 1000,
      ...(cursor ? { cursor } : {}),
    });
    for (const run of page.runs) runs.add(run.pipelineId);
    cursor = page.nextCursor;
  } while (cursor);
  return [...runs];
}

/** The tuples of a list query, newest first. */
export async function* listTuples(rt: ReadThread, q: ListQuery): AsyncGenerator<CheckpointTuple> {
  const store = rt.threads.store;
  const ids: string[] = [];
  // Pending-writes records by checkpoint, from the listings: no id is asked for that is absent.
  const writes = new Map<string, number>();
  for (const runId of await runsOf(rt, q.threadId, q.ns)) {
    for (const entry of await store.listCheckpoints(runId)) {
      if (!entry.ok) throw new CheckpointCorruptError(entry.corrupt.checkpointId, entry.corrupt.reason);
      const id = entry.metadata.checkpoint_id;
      const slot = /^(.*)\.w(\d+)$/.exec(id);
      if (entry.metadata.stage_name === "writes" && slot) {
        const [, checkpointId = "", n = "0"] = slot;
        writes.set(checkpointId, Math.max(writes.get(checkpointId) ?? 0, Number(n)));
      } else ids.push(id);
    }
  }
  const before = q.before?.configurable?.checkpoint_id as string | undefined;
  const records = await mapLimit(ids, (id) => rt.threads.read(id));
  const picked: ReadRecord<CheckpointState>[] = [];
  for (const r of records) {
    if (r?.state.kind !== "checkpoint") continue;
    const s = r.state;
    if (q.threadId !== undefined && s.thread_id !== q.threadId) continue;
    if (q.ns !== undefined && s.checkpoint_ns !== q.ns) continue;
    if (before !== undefined && !(s.checkpoint_id < before)) continue;
    if (q.filter && Object.keys(q.filter).length > 0) {
      const metadata = ((await fromSerdeValue(rt.serde, s.metadata, isDefaultSerde(rt))) ?? {}) as Record<
        string,
        unknown
      >;
      if (!Object.entries(q.filter).every(([k, v]) => isDeepStrictEqual(metadata[k], v))) continue;
    }
    picked.push(r as ReadRecord<CheckpointState>);
  }
  picked.sort((a, b) =>
    a.state.checkpoint_id < b.state.checkpoint_id
      ? 1
      : a.state.checkpoint_id > b.state.checkpoint_id
        ? -1
        : 0,
  );
  const limit = q.limit !== undefined && q.limit >= 0 ? q.limit : picked.length;
  for (const r of picked.slice(0, limit)) {
    const id = r.record.metadata.checkpoint_id;
    yield await buildTuple(rt, r, writes.get(id) ?? 0);
  }
}
