/**
 * Reading runs back: the newest readable checkpoint (the parent of the next one), the resume
 * point, what the store says of a run, and a summary of every run. Corrupt checkpoints are
 * skipped on the way, never returned.
 */
import { CheckpointCorruptError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import { type CheckpointRecord, parseBody, type StoredMetadata } from "../core/record.js";
import { PIPELINE_COMPLETE_STAGE, type PipelineSummary, RESUMABLE_STATUSES } from "../core/types.js";
import type { CheckpointStore } from "../stores/types.js";
import { summarizeRun } from "./statistics.js";
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

/** The newest checkpoint of a run whose metadata parses, with its body; the parent of the next one. */
export async function newestReadable(
  store: CheckpointStore,
  pipelineId: string,
): Promise<(StoredMetadata & { body: string }) | undefined> {
  try {
    const latest = await store.getLatestCheckpoint(pipelineId);
    return latest && { ...latest.metadata, body: latest.body };
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
  }
  const listing = await store.listCheckpoints(pipelineId);
  for (let i = listing.length - 1; i >= 0; i--) {
    const entry = listing[i];
    if (!entry?.ok) continue;
    try {
      const record = await store.getCheckpoint(entry.metadata.checkpoint_id);
      if (record) return { ...record.metadata, body: record.body };
    } catch (error) {
      if (!(error instanceof CheckpointCorruptError)) throw error;
    }
  }
  return undefined;
}

/** The run's newest checkpoint that verifies and is resumable; corrupt ones are skipped. */
export async function findResumePoint(
  openStore: OpenStore,
  pipelineId: string,
): Promise<VerifiedRecord | undefined> {
  assertValidName("pipelineId", pipelineId);
  const store = await openStore();
  // Fast path: the newest record is usually the resume point; one indexed read, no listing.
  let tried: string | undefined;
  try {
    const latest = await store.getLatestCheckpoint(pipelineId);
    if (!latest) return undefined;
    tried = latest.metadata.checkpoint_id;
    if (RESUMABLE_STATUSES.has(latest.metadata.status)) {
      const inspection = await inspectRecord(store, latest);
      if (inspection.verified) return inspection.verified;
    }
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
  }
  const listing = await store.listCheckpoints(pipelineId);
  for (let i = listing.length - 1; i >= 0; i--) {
    const entry = listing[i];
    if (!entry?.ok || entry.metadata.checkpoint_id === tried) continue;
    if (!RESUMABLE_STATUSES.has(entry.metadata.status)) continue;
    let record: CheckpointRecord | undefined;
    try {
      record = await store.getCheckpoint(entry.metadata.checkpoint_id);
    } catch (error) {
      if (error instanceof CheckpointCorruptError) continue;
      throw error;
    }
    if (!record) continue;
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
  const store = await openStore();
  let best: RunInfo | undefined;
  for (const pipelineId of await store.listPipelineIds()) {
    const info = await getRunInfo(openStore, pipelineId);
    if (!info || info.finished || info.pipelineName !== pipelineName || !info.lastTimestamp) continue;
    if (!best?.lastTimestamp || info.lastTimestamp > best.lastTimestamp) best = info;
  }
  return best?.pipelineId;
}

/** A summary of every run in the store. */
export async function summarizeRuns(store: CheckpointStore): Promise<PipelineSummary[]> {
  const summaries: PipelineSummary[] = [];
  for (const pipelineId of await store.listPipelineIds()) {
    const listing = await store.listCheckpoints(pipelineId);
    const latest = await newestReadable(store, pipelineId);
    let stages: { completed: number; pending: number } | undefined;
    try {
      const body = latest && parseBody(latest.checkpoint_id, latest.body);
      stages = body && { completed: body.completed_stages.length, pending: body.pending_stages.length };
    } catch (error) {
      if (!(error instanceof CheckpointCorruptError)) throw error;
    }
    summaries.push(summarizeRun(pipelineId, listing, stages));
  }
  return summaries;
}
