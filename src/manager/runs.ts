/**
 * Reading runs back: the newest readable checkpoint (the parent of the next one), the resume
 * point, what the store says of a run, and a summary of every run. Corrupt checkpoints are
 * skipped on the way, never returned.
 */
import { CheckpointCorruptError, KeyMissingError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import type { CheckpointRecord, StoredMetadata } from "../core/record.js";
import { PIPELINE_COMPLETE_STAGE, type PipelineSummary, RESUMABLE_STATUSES } from "../core/types.js";
import type { CheckpointStore, ListedCheckpoint } from "../stores/types.js";
import { readOutline } from "../transforms/envelope.js";
import { summarizeLiveRun } from "./statistics.js";
import { inspectRecord, type VerifiedRecord } from "./verify.js";

/** What the store says of one run. */
export interface RunInfo {
  pipelineId: string;
  /** Undefined when no checkpoint of the run can be read. */
  pipelineName: string | undefined;
  /** True once the run wrote its `pipeline_complete` checkpoint. */
  finished: boolean;
  lastTimestamp: Date | undefined;
}

/**
 * Opens the manager's store. Taken as a function, not a store, so arguments are checked before
 * the store is opened, and each lookup opens it as the manager's own methods do.
 */
export type OpenStore = () => Promise<CheckpointStore>;

/**
 * The run's checkpoints that the store can read and `wanted` accepts, newest first: the newest by
 * one indexed read, the rest from the listing only when the caller asks for more. A record the
 * store cannot parse is passed over, never returned.
 */
async function* newestFirst(
  store: CheckpointStore,
  pipelineId: string,
  wanted: (metadata: StoredMetadata) => boolean = () => true,
): AsyncGenerator<CheckpointRecord> {
  let tried: string | undefined;
  try {
    const latest = await store.getLatestCheckpoint(pipelineId);
    if (!latest) return;
    tried = latest.metadata.checkpoint_id;
    if (wanted(latest.metadata)) yield latest;
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
  }
  const listing = await store.listCheckpoints(pipelineId);
  for (let i = listing.length - 1; i >= 0; i--) {
    const entry = listing[i];
    if (!entry?.ok || entry.metadata.checkpoint_id === tried || !wanted(entry.metadata)) continue;
    let record: CheckpointRecord | undefined;
    try {
      record = await store.getCheckpoint(entry.metadata.checkpoint_id);
    } catch (error) {
      if (error instanceof CheckpointCorruptError) continue;
      throw error;
    }
    if (record) yield record;
  }
}

/** The newest checkpoint of a run whose metadata parses, with its body; the parent of the next one. */
export async function newestReadable(
  store: CheckpointStore,
  pipelineId: string,
): Promise<(StoredMetadata & { body: string }) | undefined> {
  for await (const record of newestFirst(store, pipelineId)) return { ...record.metadata, body: record.body };
  return undefined;
}

/** The run's newest checkpoint that verifies and is resumable; corrupt ones are skipped. */
export async function findResumePoint(
  openStore: OpenStore,
  pipelineId: string,
): Promise<VerifiedRecord | undefined> {
  assertValidName("pipelineId", pipelineId);
  const store = await openStore();
  // Usually the newest record is the resume point: one indexed read, no listing.
  for await (const record of newestFirst(store, pipelineId, (m) => RESUMABLE_STATUSES.has(m.status))) {
    const inspection = await inspectRecord(store, record);
    if (inspection.verified) return inspection.verified;
  }
  return undefined;
}

/**
 * What the store says of a run: whether it exists, whose it is, and whether it finished.
 * Reads the newest checkpoint only (falling back to the listing when that one is unreadable).
 */
export async function getRunInfo(openStore: OpenStore, pipelineId: string): Promise<RunInfo | undefined> {
  assertValidName("pipelineId", pipelineId);
  const store = await openStore();
  const latest = await newestReadable(store, pipelineId);
  if (!latest) {
    const listing = await store.listCheckpoints(pipelineId);
    return listing.length > 0
      ? { pipelineId, pipelineName: undefined, finished: false, lastTimestamp: undefined }
      : undefined;
  }
  return {
    pipelineId,
    pipelineName: latest.pipeline_name,
    finished: latest.stage_name === PIPELINE_COMPLETE_STAGE,
    lastTimestamp: new Date(latest.timestamp),
  };
}

/** The newest run of a pipeline that has not finished, for auto-resume; undefined when none. */
export async function findUnfinishedRun(
  openStore: OpenStore,
  pipelineName: string,
): Promise<string | undefined> {
  assertValidName("pipelineName", pipelineName);
  const store = await openStore();
  // The index answers newest first; an entry whose run lost its checkpoints, or whose newest
  // readable checkpoint says it finished (an index rebuilt from older data), is passed over.
  let cursor: string | undefined;
  do {
    const page = await store.listRuns({
      pipelineName,
      unfinished: true,
      limit: 20,
      ...(cursor ? { cursor } : {}),
    });
    for (const run of page.runs) {
      const info = await getRunInfo(openStore, run.pipelineId);
      if (info && !info.finished && (info.pipelineName ?? pipelineName) === pipelineName)
        return run.pipelineId;
    }
    cursor = page.nextCursor;
  } while (cursor);
  return undefined;
}

/** A run's summary with what it was made from: the listing and the newest readable record's body. */
export interface RunSummaryRead {
  summary: PipelineSummary;
  listing: ListedCheckpoint[];
  /** The newest readable record's body as read (still an envelope when sealed without its key). */
  latestBody: string | undefined;
}

/**
 * {@link summarizeOneRun} with its listing and newest body, for callers that show more of the
 * run (size, whether it is sealed) without reading it again; `listing` when already read.
 */
export async function readRunSummary(
  store: CheckpointStore,
  pipelineId: string,
  listing?: ListedCheckpoint[],
): Promise<RunSummaryRead | undefined> {
  const listed = listing ?? (await store.listCheckpoints(pipelineId));
  if (listed.length === 0) return undefined;
  const latest = await newestReadable(store, pipelineId);
  let stages: { completed: number; pending: number } | undefined;
  try {
    const body = latest && readOutline(latest, latest.body);
    stages = body && { completed: body.completed_stages.length, pending: body.pending_stages.length };
  } catch (error) {
    // Unknown stage counts, not a failed summary: damage, or a sealed body without a clear outline.
    if (!(error instanceof CheckpointCorruptError) && !(error instanceof KeyMissingError)) throw error;
  }
  const summary = await summarizeLiveRun(store, pipelineId, listed, stages);
  return { summary, listing: listed, latestBody: latest?.body };
}

/** The summary of one run; undefined when the store holds nothing of it. */
export async function summarizeOneRun(
  store: CheckpointStore,
  pipelineId: string,
): Promise<PipelineSummary | undefined> {
  return (await readRunSummary(store, pipelineId))?.summary;
}

/** A summary of every run in the store. */
export async function summarizeRuns(store: CheckpointStore): Promise<PipelineSummary[]> {
  const summaries: PipelineSummary[] = [];
  for (const pipelineId of await store.listPipelineIds()) {
    const summary = await summarizeOneRun(store, pipelineId);
    if (summary) summaries.push(summary);
  }
  return summaries;
}

/** Options of `listRuns`. */
export interface ListRunsOptions {
  /** Only runs that have not finished. */
  unfinished?: boolean;
  /** Page size, 1 to 1,000 (default 20). */
  limit?: number;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
}

/** A page of run summaries, newest first. */
export interface RunSummaryPage {
  runs: PipelineSummary[];
  /** Pass as `cursor` for the next page; absent on the last one. */
  nextCursor?: string;
}

/** One page of a pipeline's runs, newest first, from the store's runs-by-name index. */
export async function listRunsByName(
  store: CheckpointStore,
  pipelineName: string,
  options: ListRunsOptions,
): Promise<RunSummaryPage> {
  assertValidName("pipelineName", pipelineName);
  const page = await store.listRuns({
    pipelineName,
    limit: options.limit ?? 20,
    ...(options.unfinished !== undefined ? { unfinished: options.unfinished } : {}),
    ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
  });
  const runs: PipelineSummary[] = [];
  for (const run of page.runs) {
    // A run whose checkpoints are all gone (retention) is left out, as listPipelines does.
    const summary = await summarizeOneRun(store, run.pipelineId);
    if (summary) runs.push(summary);
  }
  return { runs, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
}
