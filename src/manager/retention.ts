/**
 * Retention: deleting old checkpoints by their own timestamps (never by file modification
 * time, which copies and restores change) and the outputs no remaining checkpoint references.
 */
import { CheckpointCorruptError, InvalidArgumentError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import { parseBody } from "../core/record.js";
import { PIPELINE_COMPLETE_STAGE } from "../core/types.js";
import type { CheckpointStore, ListedCheckpoint } from "../stores/types.js";

/** Options of `autoCleanup`. */
export interface CleanupOptions {
  /** Checkpoints whose timestamp is older than this many days are deleted. */
  retentionDays: number;
  /** Only report what would be deleted. */
  dryRun?: boolean;
  /** Limit the cleanup to one run. */
  pipelineId?: string;
  /** Called as the cleanup advances: `done` of `total` runs examined. */
  onProgress?: (done: number, total: number) => void;
}

/** What a cleanup removed (or, with `dryRun`, would remove). */
export interface CleanupReport {
  dryRun: boolean;
  /** Checkpoints older than the cutoff. */
  cutoff: Date;
  deletedCheckpoints: { pipelineId: string; checkpointId: string; timestamp: Date }[];
  /** Outputs no remaining checkpoint references. */
  deletedOutputs: number;
  /** Runs left with nothing stored, removed entirely. */
  removedRuns: string[];
  /** Runs whose outputs were kept because a remaining checkpoint could not be read. */
  skippedOutputCleanup: string[];
}

const DAY_MS = 86_400_000;

/** Hashes referenced by the checkpoints that remain; undefined when one cannot be read. */
async function referencedOutputs(
  store: CheckpointStore,
  remaining: readonly ListedCheckpoint[],
): Promise<Set<string> | undefined> {
  const referenced = new Set<string>();
  for (const entry of remaining) {
    if (!entry.ok) return undefined;
    try {
      const record = await store.getCheckpoint(entry.metadata.checkpoint_id);
      if (!record) continue;
      for (const hash of Object.values(parseBody(entry.metadata.checkpoint_id, record.body).output_refs)) {
        referenced.add(hash);
      }
    } catch (error) {
      // An unreadable checkpoint may still be repaired; keep every output it could need.
      if (error instanceof CheckpointCorruptError) return undefined;
      throw error;
    }
  }
  return referenced;
}

/** Deletes checkpoints older than the retention period, then unreferenced outputs. */
export async function cleanupOldCheckpoints(
  store: CheckpointStore,
  options: CleanupOptions,
  now: Date,
): Promise<CleanupReport> {
  const days = options?.retentionDays;
  if (typeof days !== "number" || !Number.isFinite(days) || days < 0) {
    throw new InvalidArgumentError(`retentionDays must be a non-negative number, got ${String(days)}`);
  }
  const dryRun = options.dryRun ?? false;
  const cutoff = new Date(now.getTime() - days * DAY_MS);
  const report: CleanupReport = {
    dryRun,
    cutoff,
    deletedCheckpoints: [],
    deletedOutputs: 0,
    removedRuns: [],
    skippedOutputCleanup: [],
  };
  const runs =
    options.pipelineId !== undefined
      ? [assertValidName("pipelineId", options.pipelineId)]
      : await store.listPipelineIds();
  for (const [i, pipelineId] of runs.entries()) {
    options.onProgress?.(i, runs.length);
    const listing = await store.listCheckpoints(pipelineId);
    const old = listing.filter((e) => e.ok && Date.parse(e.metadata.timestamp) < cutoff.getTime());
    if (old.length === 0) continue;
    const ids = old.map((e) => (e.ok ? e.metadata.checkpoint_id : ""));
    for (const e of old) {
      if (e.ok) {
        report.deletedCheckpoints.push({
          pipelineId,
          checkpointId: e.metadata.checkpoint_id,
          timestamp: new Date(e.metadata.timestamp),
        });
      }
    }
    const remaining = listing.filter((e) => !old.includes(e));
    if (remaining.length === 0) {
      report.removedRuns.push(pipelineId);
      if (!dryRun) await store.deleteRun(pipelineId);
      continue;
    }
    const referenced = await referencedOutputs(store, remaining);
    if (!referenced) {
      report.skippedOutputCleanup.push(pipelineId);
      if (!dryRun) await store.deleteCheckpoints(pipelineId, ids);
      continue;
    }
    const unreferenced = (await store.listOutputHashes(pipelineId)).filter((h) => !referenced.has(h));
    report.deletedOutputs += unreferenced.length;
    if (dryRun) continue;
    // Checkpoints first: if the process dies between the two deletes, outputs are only orphaned.
    await store.deleteCheckpoints(pipelineId, ids);
    if (unreferenced.length > 0) await store.deleteOutputs(pipelineId, unreferenced);
  }
  options.onProgress?.(runs.length, runs.length);
  return report;
}

/** What deleting whole runs did, run by run: nothing is left out or folded into a count. */
export interface RunCleanupReport {
  /** Runs deleted, with how many checkpoints each had. */
  deleted: { pipelineId: string; checkpoints: number }[];
  /** Runs kept, and why (an unfinished run without `force`). */
  refused: { pipelineId: string; reason: string }[];
  /** Runs with no checkpoint in the store; nothing was done for them. */
  missing: string[];
}

/** Why an unfinished run is kept; also the text the CLI prints. */
export const UNFINISHED_REASON =
  "the run has not finished; its checkpoints are how it resumes (force deletes it anyway)";

/** Deletes whole runs; unfinished runs only when `force` is set. Reports each run's outcome. */
export async function cleanupRuns(
  store: CheckpointStore,
  pipelineIds: readonly string[],
  force: boolean,
): Promise<RunCleanupReport> {
  const report: RunCleanupReport = { deleted: [], refused: [], missing: [] };
  for (const pipelineId of new Set(pipelineIds)) {
    const listing = await store.listCheckpoints(pipelineId);
    if (listing.length === 0) {
      report.missing.push(pipelineId);
      continue;
    }
    const finished = listing.some((e) => e.ok && e.metadata.stage_name === PIPELINE_COMPLETE_STAGE);
    if (!finished && !force) {
      report.refused.push({ pipelineId, reason: UNFINISHED_REASON });
      continue;
    }
    await store.deleteRun(pipelineId);
    report.deleted.push({ pipelineId, checkpoints: listing.length });
  }
  return report;
}
