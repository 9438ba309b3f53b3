/**
 * Retention: deleting old checkpoints by their own timestamps (never by file modification
 * time, which copies and restores change) and the outputs no remaining checkpoint references.
 */
import { CheckpointCorruptError, InvalidArgumentError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import { assertSupportedFormat } from "../core/record.js";
import { PIPELINE_COMPLETE_STAGE } from "../core/types.js";
import { isThreadRun } from "../langgraph/ids.js";
import type { CheckpointStore, ListedCheckpoint } from "../stores/types.js";
import { readOutline } from "../transforms/envelope.js";
import {
  inUseReason,
  LEASE_LOST_REASON,
  type LeaseHandle,
  newCleanupOwner,
  withCleanupLease,
} from "./cleanup-lease.js";

/** Options of `autoCleanup`. */
export interface CleanupOptions {
  /** Checkpoints whose timestamp is older than this many days are deleted. */
  retentionDays: number;
  /** Only report what would be deleted (each run's lease is still taken a moment, to tell a run in use). */
  dryRun?: boolean;
  /** Limit the cleanup to one run. */
  pipelineId?: string;
  /**
   * Leave runs that have not finished alone (reported in `skipped`): their checkpoints are how
   * they resume. `cairn cleanup` sets it unless `--force`, the rule of `cleanupPipelines`; the
   * default (false) trims every run, as before.
   */
  skipUnfinished?: boolean;
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
  /** Runs left untouched, and why: unfinished (with `skipUnfinished`), in use by a runner (its lease is held), or written to meanwhile. */
  skipped: { pipelineId: string; reason: string }[];
  /** Unfinished runs this cleanup trimmed or removed (none with `skipUnfinished`). */
  unfinishedRuns: string[];
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
      for (const hash of Object.values(readOutline(record.metadata, record.body).output_refs)) {
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

/** Why retention left part of a LangGraph thread alone. */
export const THREAD_REASON =
  "a LangGraph thread is removed whole, once every checkpoint of it is older than the cutoff";

/** Passes at a run whose newest checkpoint keeps moving before retention leaves it for next time. */
const PASSES = 3;

/** Why retention left a run alone because writers kept adding checkpoints to it. */
export const BUSY_REASON = "checkpoints kept being written to the run during the cleanup; try again later";

/**
 * The run's newest checkpoint, as an identity to compare: a write to the run changes it. When the
 * newest entry cannot be read, the whole listing stands for it.
 */
async function tipOf(store: CheckpointStore, pipelineId: string): Promise<string> {
  try {
    return (await store.getLatestCheckpoint(pipelineId))?.metadata.checkpoint_id ?? "";
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    const listing = await store.listCheckpoints(pipelineId);
    return JSON.stringify(listing.map((e) => (e.ok ? e.metadata.checkpoint_id : e.corrupt.location)));
  }
}

const idOf = (e: ListedCheckpoint) => (e.ok ? e.metadata.checkpoint_id : undefined);

/** An id for every listing entry, an unparseable one named by its location: a listing's identity. */
export const listingId = (e: ListedCheckpoint) =>
  e.ok ? e.metadata.checkpoint_id : `unreadable:${e.corrupt.location}`;

/** Why a previewed run is kept: what it holds is no longer what the preview showed. */
export const CHANGED_REASON = "the run changed since the cleanup preview; nothing of it was deleted";

/**
 * Refuses a run holding a checkpoint a newer cairn wrote (`FormatTooNewError`): that cairn owns
 * the run now, so nothing of it is deleted, and no lease is taken (which would touch the store).
 */
function refuseNewer(listing: readonly ListedCheckpoint[]): void {
  for (const entry of listing) if (entry.ok) assertSupportedFormat(entry.metadata);
}

/**
 * One run's retention, under the cleanup's lease on it. A mark and sweep that never deletes an
 * output a checkpoint needs: the candidate outputs are listed before the checkpoints (an output
 * stored later is never a candidate), the newest checkpoint is kept unless the whole run goes
 * (a checkpoint written later chains to it and reuses its outputs), and the newest checkpoint is
 * read again right before each deletion: if it moved, the pass starts over.
 */
async function trimRun(
  store: CheckpointStore,
  pipelineId: string,
  cutoff: number,
  lease: LeaseHandle,
  report: CleanupReport,
  skipUnfinished: boolean,
  only: ReadonlySet<string> | undefined,
): Promise<void> {
  for (let pass = 1; pass <= PASSES; pass++) {
    const tip = await tipOf(store, pipelineId);
    const candidates = await store.listOutputHashes(pipelineId);
    const listing = await store.listCheckpoints(pipelineId);
    refuseNewer(listing);
    // Read under the lease, as cleanupRuns does: no runner can finish the run meanwhile.
    const finished = isFinished(listing);
    if (!finished && skipUnfinished) {
      report.skipped.push({ pipelineId, reason: UNFINISHED_REASON });
      return;
    }
    const newest = new Set([
      tip,
      listing.length > 0 ? idOf(listing[listing.length - 1] as ListedCheckpoint) : "",
    ]);
    const isOld = (e: ListedCheckpoint) => e.ok && Date.parse(e.metadata.timestamp) < cutoff;
    // `only` (a confirmed preview) narrows the cleanup: nothing outside it goes, whatever changed.
    const allowed = (e: ListedCheckpoint) => only === undefined || only.has(idOf(e) ?? "");
    const wholeRun = listing.length > 0 && listing.every((e) => isOld(e) && allowed(e));
    const old = listing.filter((e) => isOld(e) && allowed(e) && (wholeRun || !newest.has(idOf(e) ?? "")));
    if (old.length === 0) return;
    // A LangGraph thread's checkpoints are a tree whose records need their ancestors (channel maps,
    // values stored once): a thread goes whole, once all of it is older than the cutoff.
    if (isThreadRun(pipelineId) && !wholeRun) {
      report.skipped.push({ pipelineId, reason: THREAD_REASON });
      return;
    }
    const remaining = listing.filter((e) => !old.includes(e));
    const referenced = wholeRun ? new Set<string>() : await referencedOutputs(store, remaining);
    if (!(await lease.keep())) {
      report.skipped.push({ pipelineId, reason: LEASE_LOST_REASON });
      return;
    }
    if ((await tipOf(store, pipelineId)) !== tip) continue;
    for (const e of old) {
      if (e.ok) {
        report.deletedCheckpoints.push({
          pipelineId,
          checkpointId: e.metadata.checkpoint_id,
          timestamp: new Date(e.metadata.timestamp),
        });
      }
    }
    if (!finished) report.unfinishedRuns.push(pipelineId);
    if (wholeRun) {
      report.removedRuns.push(pipelineId);
      if (!report.dryRun) await store.deleteRun(pipelineId);
      return;
    }
    if (!referenced) report.skippedOutputCleanup.push(pipelineId);
    const unreferenced = referenced ? candidates.filter((h) => !referenced.has(h)) : [];
    report.deletedOutputs += unreferenced.length;
    if (report.dryRun) return;
    // Checkpoints first: if the process dies between the two deletes, outputs are only orphaned.
    await store.deleteCheckpoints(pipelineId, old.map(idOf) as string[], { retention: true });
    if (unreferenced.length === 0) return;
    // A checkpoint written since may reuse a candidate: leave the outputs to the next cleanup.
    if (!(await lease.keep()) || (await tipOf(store, pipelineId)) !== tip) {
      report.deletedOutputs -= unreferenced.length;
      return;
    }
    await store.deleteOutputs(pipelineId, unreferenced);
    return;
  }
  report.skipped.push({ pipelineId, reason: BUSY_REASON });
}

/**
 * Deletes checkpoints older than the retention period, then unreferenced outputs. A run whose
 * lease another runner holds (it is being executed) is skipped and reported; every other run is
 * trimmed while this cleanup holds its lease. With `only`, no checkpoint outside it is deleted
 * (the console executes a previewed cleanup so: what goes is at most what was shown).
 */
export async function cleanupOldCheckpoints(
  store: CheckpointStore,
  options: CleanupOptions,
  now: Date,
  only?: ReadonlySet<string>,
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
    skipped: [],
    unfinishedRuns: [],
  };
  const runs =
    options.pipelineId !== undefined
      ? [assertValidName("pipelineId", options.pipelineId)]
      : await store.listPipelineIds();
  const owner = newCleanupOwner();
  for (const [i, pipelineId] of runs.entries()) {
    options.onProgress?.(i, runs.length);
    // A run with nothing old is left alone without taking its lease.
    const listing = await store.listCheckpoints(pipelineId);
    refuseNewer(listing);
    if (!listing.some((e) => e.ok && Date.parse(e.metadata.timestamp) < cutoff.getTime())) continue;
    const outcome = await withCleanupLease(store, pipelineId, owner, (lease) =>
      trimRun(store, pipelineId, cutoff.getTime(), lease, report, options.skipUnfinished ?? false, only),
    );
    if (outcome.held) report.skipped.push({ pipelineId, reason: inUseReason(outcome.holder) });
  }
  options.onProgress?.(runs.length, runs.length);
  return report;
}

/** What deleting whole runs did, run by run: nothing is left out or folded into a count. */
export interface RunCleanupReport {
  /** True when nothing was deleted: `deleted` lists what would have been. */
  dryRun: boolean;
  /** Runs deleted, with how many checkpoints each had and whether it had finished. */
  deleted: { pipelineId: string; checkpoints: number; finished: boolean }[];
  /** Runs kept, and why: unfinished (without `force`), or in use by a runner holding its lease. */
  refused: { pipelineId: string; reason: string }[];
  /** Runs with no checkpoint in the store; nothing was done for them. */
  missing: string[];
}

/** Why an unfinished run is kept; also the text the CLI prints. */
export const UNFINISHED_REASON =
  "the run has not finished; its checkpoints are how it resumes (force deletes it anyway)";

/** A run has finished once it wrote its `pipeline_complete` checkpoint. */
const isFinished = (listing: readonly ListedCheckpoint[]) =>
  listing.some((e) => e.ok && e.metadata.stage_name === PIPELINE_COMPLETE_STAGE);

/**
 * Deletes whole runs; unfinished runs only when `force` is set. A run whose lease another runner
 * holds (it is being executed) is refused even with `force`; every other run is deleted while
 * this cleanup holds its lease, so a runner that comes back is fenced rather than writing into a
 * run being deleted. Reports each run's outcome; with `dryRun`, what it would be. With
 * `expected` (a confirmed preview: each run's entries by {@link listingId}), a run whose listing
 * under the lease is not exactly that is refused ({@link CHANGED_REASON}).
 */
export async function cleanupRuns(
  store: CheckpointStore,
  pipelineIds: readonly string[],
  force: boolean,
  dryRun = false,
  expected?: ReadonlyMap<string, ReadonlySet<string>>,
): Promise<RunCleanupReport> {
  const report: RunCleanupReport = { dryRun, deleted: [], refused: [], missing: [] };
  const owner = newCleanupOwner();
  for (const pipelineId of new Set(pipelineIds)) {
    // A run with nothing stored gets no lease record either. One whose checkpoints are gone but
    // whose head record remains (lost history) is deleted like any unfinished run, to start anew.
    const before = await store.listCheckpoints(pipelineId);
    refuseNewer(before);
    const empty = before.length === 0;
    if (empty && (await store.getRunHead(pipelineId)) === undefined) {
      report.missing.push(pipelineId);
      continue;
    }
    const outcome = await withCleanupLease(store, pipelineId, owner, async (lease) => {
      // Read under the lease: no runner can add a checkpoint (or finish the run) meanwhile.
      const listing = await store.listCheckpoints(pipelineId);
      refuseNewer(listing);
      const finished = isFinished(listing);
      if (!finished && !force) return UNFINISHED_REASON;
      const want = expected?.get(pipelineId);
      if (
        expected &&
        (!want || listing.length !== want.size || !listing.every((e) => want.has(listingId(e))))
      )
        return CHANGED_REASON;
      if (!(await lease.keep())) return LEASE_LOST_REASON;
      if (!dryRun) await store.deleteRun(pipelineId);
      report.deleted.push({ pipelineId, checkpoints: listing.length, finished });
      return undefined;
    });
    const reason = outcome.held ? inUseReason(outcome.holder) : outcome.value;
    if (reason !== undefined) report.refused.push({ pipelineId, reason });
  }
  return report;
}

/**
 * {@link cleanupRuns} for a manager (`cleanupPipelines`): unless a dry run, each run deleted or
 * found missing is passed to `forget`, so the manager stops treating it as written to.
 */
export async function cleanupRunsForgetting(
  store: CheckpointStore,
  pipelineIds: readonly string[],
  options: { force?: boolean; dryRun?: boolean },
  forget: (pipelineId: string) => void,
): Promise<RunCleanupReport> {
  const report = await cleanupRuns(store, pipelineIds, options.force ?? false, options.dryRun ?? false);
  if (report.dryRun) return report;
  // A run deleted here is no lost history: writing to it again starts it anew.
  for (const run of report.deleted) forget(run.pipelineId);
  // Nothing of it is stored (a store that lost it): asked to delete it, the manager forgets it too.
  for (const pipelineId of report.missing) forget(pipelineId);
  return report;
}
