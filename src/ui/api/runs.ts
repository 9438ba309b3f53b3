/**
 * The runs page: one page of runs, each summarized. With a pipeline name the runs-by-name index
 * answers (newest first); without one the store's sorted run ids are paged by id. Only the runs
 * shown are summarized, plus, with a status filter, a bounded scan ({@link MAX_SCAN} runs per
 * request) whose cursor continues where it stopped: a store of 100,000 runs is never read whole.
 */
import { CheckpointCorruptError, InvalidArgumentError } from "../../core/errors.js";
import { assertValidName } from "../../core/ids.js";
import { isEnvelope } from "../../core/sealed.js";
import { PIPELINE_COMPLETE_STAGE, type RunSummaryStatus } from "../../core/types.js";
import { threadsOf } from "../../debug/thread-of-run.js";
import { readRunSummary } from "../../manager/runs.js";
import type { CheckpointStore } from "../../stores/types.js";
import { type ApiContext, boundedInt, decodeCursor, encodeCursor, iso } from "./context.js";

/** One run in the table. */
export interface RunRow {
  pipelineId: string;
  pipelineName: string;
  status: RunSummaryStatus;
  finished: boolean;
  stagesDone: number;
  stagesTotal: number;
  checkpoints: number;
  corrupt: number;
  /** The newest checkpoint's `data_size`: its body and the outputs of every stage it holds. */
  sizeBytes: number;
  lastUpdate: string | null;
  firstTimestamp: string | null;
  resumeCount: number;
  /** The newest record is encrypted under a key the console was not given. */
  encrypted: boolean;
  /** For a LangGraph thread run: its thread and namespace (unknown ones left out). */
  thread?: { threadId: string; namespace: string };
}

/** The query of {@link listRunsPage}, as the page sends it. */
export interface RunsQuery {
  name?: string;
  status?: string;
  sort?: string;
  limit?: number | string;
  cursor?: string;
}

/** One page of runs. */
export interface RunsPage {
  runs: RunRow[];
  /** Pass back as `cursor` for the next page; absent on the last one. */
  nextCursor?: string;
  /** Runs looked at to answer this request (the page, plus those a status filter passed over). */
  scanned: number;
  /** `index`: the runs-by-name index; `ids`: the store's sorted run ids. */
  mode: "index" | "ids";
}

/** Most runs summarized for one request with a status filter. */
export const MAX_SCAN = 500;

/** Run statuses the filter accepts. */
export const RUN_STATUSES: readonly RunSummaryStatus[] = [
  "completed",
  "in_progress",
  "paused",
  "failed",
  "resumed",
  "expired",
];

const SORTS = ["id", "-id", "created"] as const;

/** One run's row; undefined when the store no longer holds anything of it. */
export async function runRow(ctx: ApiContext, pipelineId: string): Promise<RunRow | undefined> {
  const store = await ctx.manager.getStore();
  const read = await readRunSummary(store, pipelineId);
  if (!read) return undefined;
  const s = read.summary;
  let size = 0;
  for (let i = read.listing.length - 1; i >= 0; i--) {
    const entry = read.listing[i];
    if (entry?.ok) {
      size = entry.metadata.data_size;
      break;
    }
  }
  const row: RunRow = {
    pipelineId,
    pipelineName: s.pipelineName,
    status: s.status,
    finished: s.finished,
    stagesDone: s.completedStages,
    stagesTotal: s.totalStages,
    checkpoints: s.checkpointCount,
    corrupt: s.corruptCount,
    sizeBytes: size,
    lastUpdate: iso(s.lastTimestamp),
    firstTimestamp: iso(s.firstTimestamp),
    resumeCount: s.resumeCount,
    encrypted: read.latestBody !== undefined && isEnvelope(read.latestBody),
  };
  const thread = (await threadsOf(ctx.manager, [s])).get(pipelineId);
  if (thread) row.thread = thread;
  return row;
}

/**
 * False when the run's newest record alone shows its summary cannot have `status`, so a status
 * filter skips it after one read instead of a full summary (listing, newest record, lease).
 * True whenever in doubt: that record unreadable, or a run that may have finished earlier.
 */
async function mayHaveStatus(store: CheckpointStore, pipelineId: string, status: string): Promise<boolean> {
  let latest: Awaited<ReturnType<CheckpointStore["getLatestCheckpoint"]>>;
  try {
    latest = await store.getLatestCheckpoint(pipelineId);
  } catch (error) {
    if (error instanceof CheckpointCorruptError) return true;
    throw error;
  }
  if (!latest) return true;
  const m = latest.metadata;
  // A run whose newest record is pipeline_complete is completed; one with another newest record
  // is completed only if it wrote pipeline_complete before (rare, but the listing must say).
  if (m.stage_name === PIPELINE_COMPLETE_STAGE) return status === "completed";
  if (status === "completed") return true;
  if (status === "failed" || status === "expired") return m.status === status;
  // paused / in_progress: unfinished with a newest record that is neither failed nor expired.
  return m.status !== "failed" && m.status !== "expired";
}

/** One page of runs; see the module comment. Bad names, statuses, sorts or cursors are 4xx errors. */
export async function listRunsPage(ctx: ApiContext, q: RunsQuery = {}): Promise<RunsPage> {
  const name = q.name === undefined || q.name === "" ? undefined : assertValidName("name", q.name);
  const status = q.status === undefined || q.status === "" ? undefined : q.status;
  if (status !== undefined && !RUN_STATUSES.includes(status as RunSummaryStatus)) {
    throw new InvalidArgumentError(`status must be one of ${RUN_STATUSES.join(", ")}`);
  }
  const sort = q.sort === undefined || q.sort === "" ? undefined : q.sort;
  if (sort !== undefined && !(SORTS as readonly string[]).includes(sort)) {
    throw new InvalidArgumentError(`sort must be one of ${SORTS.join(", ")}`);
  }
  const limit = boundedInt("limit", q.limit, 1, 200, 50);
  const cursor = q.cursor === undefined || q.cursor === "" ? undefined : decodeCursor(q.cursor);
  return name !== undefined
    ? byName(ctx, name, status, limit, cursor)
    : byIds(ctx, sort === "-id" ? "-id" : "id", status, limit, cursor);
}

/** The runs-by-name index, newest first, a chunk at a time so the cursor is exact. */
async function byName(
  ctx: ApiContext,
  name: string,
  status: string | undefined,
  limit: number,
  cursor: Record<string, unknown> | undefined,
): Promise<RunsPage> {
  let storeCursor: string | undefined;
  if (cursor) {
    if (cursor.m !== "index" || cursor.n !== name || cursor.s !== (status ?? null)) {
      throw new InvalidArgumentError("cursor belongs to another query");
    }
    if (typeof cursor.c !== "string")
      throw new InvalidArgumentError("cursor is not one this console gave out");
    storeCursor = cursor.c;
  }
  const store = await ctx.manager.getStore();
  // Only a completed run has finished; every other status is among the unfinished ones.
  const unfinished = status !== undefined && status !== "completed";
  const runs: RunRow[] = [];
  let scanned = 0;
  let more = true;
  while (runs.length < limit && scanned < MAX_SCAN && more) {
    // Never more than the rows still wanted: a chunk is consumed whole, so its cursor is exact.
    const chunk = Math.min(limit - runs.length, MAX_SCAN - scanned);
    const page = await store.listRuns({
      pipelineName: name,
      limit: chunk,
      ...(unfinished ? { unfinished } : {}),
      ...(storeCursor !== undefined ? { cursor: storeCursor } : {}),
    });
    for (const entry of page.runs) {
      scanned++;
      if (status !== undefined && !(await mayHaveStatus(store, entry.pipelineId, status))) continue;
      const row = await runRow(ctx, entry.pipelineId);
      if (row && (status === undefined || row.status === status)) runs.push(row);
    }
    storeCursor = page.nextCursor;
    more = storeCursor !== undefined && page.runs.length > 0;
  }
  return {
    runs,
    ...(more && storeCursor !== undefined
      ? { nextCursor: encodeCursor({ m: "index", n: name, s: status ?? null, c: storeCursor }) }
      : {}),
    scanned,
    mode: "index",
  };
}

/** The store's run ids, sorted, paged after the last id seen. */
async function byIds(
  ctx: ApiContext,
  sort: "id" | "-id",
  status: string | undefined,
  limit: number,
  cursor: Record<string, unknown> | undefined,
): Promise<RunsPage> {
  let after: string | undefined;
  if (cursor) {
    if (cursor.m !== "ids" || cursor.o !== sort || cursor.s !== (status ?? null)) {
      throw new InvalidArgumentError("cursor belongs to another query");
    }
    if (typeof cursor.a !== "string")
      throw new InvalidArgumentError("cursor is not one this console gave out");
    after = assertValidName("cursor", cursor.a);
  }
  const store = await ctx.manager.getStore();
  const ids = sortedIds(await store.listPipelineIds());
  const descending = sort === "-id";
  // Where the page starts: after the cursor's id, found by binary search in the sorted ids.
  let position: number;
  if (after === undefined) position = descending ? ids.length - 1 : 0;
  else {
    const i = lowerBound(ids, after);
    position = descending ? i - 1 : ids[i] === after ? i + 1 : i;
  }
  const step = descending ? -1 : 1;
  const runs: RunRow[] = [];
  let scanned = 0;
  let last: string | undefined;
  while (position >= 0 && position < ids.length && runs.length < limit && scanned < MAX_SCAN) {
    const id = ids[position] as string;
    position += step;
    scanned++;
    last = id;
    if (status !== undefined && !(await mayHaveStatus(store, id, status))) continue;
    const row = await runRow(ctx, id);
    if (row && (status === undefined || row.status === status)) runs.push(row);
  }
  const more = position >= 0 && position < ids.length;
  return {
    runs,
    ...(more && last !== undefined
      ? { nextCursor: encodeCursor({ m: "ids", o: sort, s: status ?? null, a: last }) }
      : {}),
    scanned,
    mode: "ids",
  };
}

/** The ids in code-unit order, sorted only when the store's order is another. */
function sortedIds(ids: string[]): string[] {
  for (let i = 1; i < ids.length; i++) {
    if ((ids[i - 1] as string) > (ids[i] as string))
      return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
  return ids;
}

/** The first index whose id is not below `id`. */
function lowerBound(ids: readonly string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ids[mid] as string) < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
