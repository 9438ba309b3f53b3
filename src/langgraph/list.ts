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

/** A checkpoint of a listing, with the LangGraph id its cairn id holds when it holds one. */
interface Candidate {
  id: string;
  /** The LangGraph id, when the cairn id holds it as is (uuid6 ids are): ordered without a read. */
  lgId: string | undefined;
}

/** A cairn id's part after its run id: a hashed LangGraph id looks like this (see ids.ts). */
const HASHED = /^h[0-9a-f]{24}$/;

const newestFirst = (a: string, b: string) => (a < b ? 1 : a > b ? -1 : 0);

/**
 * The tuples of a list query, newest first. Checkpoints whose cairn id holds their LangGraph id
 * are ordered from the listing and read lazily, a window at a time, until `limit` tuples passed
 * `before` and `filter`; only the others (hashed ids) are read up front to be placed.
 */
export async function* listTuples(rt: ReadThread, q: ListQuery): AsyncGenerator<CheckpointTuple> {
  const store = rt.threads.store;
  const candidates: Candidate[] = [];
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
        continue;
      }
      const part = id.startsWith(`${runId}.`) ? id.slice(runId.length + 1) : undefined;
      candidates.push({ id, lgId: part === undefined || HASHED.test(part) ? undefined : part });
    }
  }
  const before = q.before?.configurable?.checkpoint_id as string | undefined;
  const keep = async (r: ReadRecord | undefined): Promise<boolean> => {
    if (r?.state.kind !== "checkpoint") return false;
    const s = r.state;
    if (q.threadId !== undefined && s.thread_id !== q.threadId) return false;
    if (q.ns !== undefined && s.checkpoint_ns !== q.ns) return false;
    if (before !== undefined && !(s.checkpoint_id < before)) return false;
    if (!q.filter || Object.keys(q.filter).length === 0) return true;
    const metadata = ((await fromSerdeValue(rt.serde, s.metadata, isDefaultSerde(rt))) ?? {}) as Record<
      string,
      unknown
    >;
    return Object.entries(q.filter).every(([k, v]) => isDeepStrictEqual(metadata[k], v));
  };
  // Hashed ids: read now, each then placed by its LangGraph id.
  const placed: ReadRecord<CheckpointState>[] = [];
  const unordered = candidates.filter((c) => c.lgId === undefined).map((c) => c.id);
  for (const r of await mapLimit(unordered, (id) => rt.threads.read(id)))
    if (r && (await keep(r))) placed.push(r as ReadRecord<CheckpointState>);
  placed.sort((a, b) => newestFirst(a.state.checkpoint_id, b.state.checkpoint_id));
  const ordered = candidates
    .filter((c): c is Candidate & { lgId: string } => c.lgId !== undefined)
    .filter((c) => before === undefined || c.lgId < before)
    .sort((a, b) => newestFirst(a.lgId, b.lgId));

  let left = q.limit !== undefined && q.limit >= 0 ? q.limit : Number.POSITIVE_INFINITY;
  const emit = (r: ReadRecord<CheckpointState>) =>
    buildTuple(rt, r, writes.get(r.record.metadata.checkpoint_id) ?? 0);
  const WINDOW = 16;
  for (let i = 0; left > 0 && (i < ordered.length || placed.length > 0); ) {
    const window = ordered.slice(i, i + WINDOW);
    i += window.length;
    const read = await mapLimit(window, (c) => rt.threads.read(c.id));
    for (const r of read) {
      if (left <= 0) break;
      if (!(await keep(r))) continue;
      const next = r as ReadRecord<CheckpointState>;
      // Hashed ones newer than this one come first.
      while (
        left > 0 &&
        placed.length > 0 &&
        (placed[0] as ReadRecord<CheckpointState>).state.checkpoint_id > next.state.checkpoint_id
      ) {
        left--;
        yield await emit(placed.shift() as ReadRecord<CheckpointState>);
      }
      if (left <= 0) break;
      left--;
      yield await emit(next);
    }
    if (i >= ordered.length)
      while (left > 0 && placed.length > 0) {
        left--;
        yield await emit(placed.shift() as ReadRecord<CheckpointState>);
      }
  }
}
