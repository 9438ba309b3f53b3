/**
 * The full compare of runs (the replicator's first phase, and its answer to a trimmed feed): each
 * run's listing in the source against the target's. A run the target lacks is imported whole in
 * one atomic step; otherwise the missing checkpoints are copied oldest first, differing status
 * fields copied, and what the source no longer holds deleted, except on a target that is ahead.
 */
import { CheckpointConflictError, CheckpointNotFoundError } from "../core/errors.js";
import type { StatusPatch, StoredMetadata } from "../core/record.js";
import { listedParents, OutputMemo, storeParents } from "../manager/check.js";
import type { CheckpointStore, ImportedCheckpoint, ListedCheckpoint, RunHead } from "../stores/types.js";
import type { Replication } from "./context.js";
import { putCopy } from "./copy.js";

/** Most checkpoints (and stored bytes) a run's first copy imports in one step; the rest are put one by one. */
const IMPORT_MAX_CHECKPOINTS = 1000;
const IMPORT_MAX_BYTES = 64 * 1024 * 1024;

/** Compares every run (or the filtered ones); false when the signal stopped it before the end. */
export async function syncAll(r: Replication): Promise<boolean> {
  r.report.syncs++;
  r.enter("sync");
  const ids = await runIds(r);
  r.runsTotal = ids.length;
  r.runsDone = 0;
  r.progress(true);
  for (const pipelineId of ids) {
    if (r.aborted) return false;
    await syncRun(r, pipelineId);
    if (r.aborted) return false;
    r.runsDone++;
    r.progress();
  }
  r.progress(true);
  return true;
}

/** The runs to compare: the filtered run, the runs of the named pipeline, or every run, on both sides. */
async function runIds(r: Replication): Promise<string[]> {
  const { pipelineId, name } = r.options;
  if (pipelineId !== undefined) return [pipelineId];
  const [source, target] =
    name !== undefined
      ? await Promise.all([namedRuns(r.source, name), namedRuns(r.target, name)])
      : await Promise.all([r.source.listPipelineIds(), r.target.listPipelineIds()]);
  return [...new Set([...source, ...target])].sort();
}

async function namedRuns(store: CheckpointStore, pipelineName: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listRuns({ pipelineName, limit: 1000, ...(cursor ? { cursor } : {}) });
    ids.push(...page.runs.map((run) => run.pipelineId));
    cursor = page.nextCursor;
  } while (cursor);
  return ids;
}

const parsed = (listing: readonly ListedCheckpoint[]): StoredMetadata[] =>
  listing.flatMap((entry) => (entry.ok ? [entry.metadata] : []));

const highest = (metadata: readonly StoredMetadata[]) => Math.max(0, ...metadata.map((m) => m.sequence));

/** The mutable fields of a checkpoint, as a patch. */
export const statusPatch = (m: StoredMetadata): StatusPatch => ({
  status: m.status,
  error_message: m.error_message,
  resume_count: m.resume_count,
});

/** True when the mutable fields differ. */
export const statusDiffers = (a: StoredMetadata, b: StoredMetadata): boolean =>
  a.status !== b.status || a.error_message !== b.error_message || a.resume_count !== b.resume_count;

/** Copies `from`'s status fields onto the target's checkpoint; false when it is gone. */
export async function copyStatus(r: Replication, from: StoredMetadata): Promise<boolean> {
  try {
    await r.target.updateCheckpoint(from.checkpoint_id, statusPatch(from));
  } catch (error) {
    // Deleted on the target in between: its deletion or copy comes with a later change or sync.
    if (error instanceof CheckpointNotFoundError) return false;
    throw error;
  }
  r.report.statusesCopied++;
  return true;
}

/** Brings one run of the target in step with the source, as the module comment says. */
export async function syncRun(r: Replication, pipelineId: string): Promise<void> {
  const { source, target } = r;
  const [sourceListing, targetListing, head] = await Promise.all([
    source.listCheckpoints(pipelineId),
    target.listCheckpoints(pipelineId),
    source.getRunHead(pipelineId),
  ]);
  const inSource = parsed(sourceListing);
  let inTarget = parsed(targetListing);
  if (!r.wants(pipelineId, inSource[0]?.pipeline_name ?? inTarget[0]?.pipeline_name)) return;
  for (const entry of sourceListing) {
    if (entry.ok) continue;
    const { corrupt } = entry;
    r.corrupt(pipelineId, corrupt.checkpointId, [
      { kind: "unreadable", message: `${corrupt.location}: ${corrupt.reason}` },
    ]);
  }
  if (sourceListing.length === 0 && targetListing.length === 0) return;
  if (sourceListing.length === 0 && head === undefined) {
    // The source holds nothing of the run, not even its head record: deleted there (deleteRun).
    if (!r.options.keepDeleted) {
      await target.deleteRun(pipelineId);
      r.forgetRun(pipelineId);
      r.report.runsDeleted++;
    }
    return;
  }
  const sourceHigh = Math.max(highest(inSource), head?.sequence ?? 0);
  const targetHigh = highest(inTarget);
  if (targetHigh > sourceHigh) {
    r.diverged(
      pipelineId,
      `the target's run ${pipelineId} has a checkpoint of sequence ${targetHigh}, beyond the source's ${sourceHigh} (written on the replica, as after a failover); left as it is`,
    );
    return;
  }
  if (targetListing.length === 0 && inSource.length > 0) {
    const imported = await importFirst(r, pipelineId, sourceListing);
    if (r.aborted) return;
    if (imported) inTarget = parsed(await target.listCheckpoints(pipelineId));
  }
  if (!(await r.syncRunKey(pipelineId, inTarget.length > 0))) return;
  await copyMissing(r, pipelineId, sourceListing, inTarget);
  if (r.aborted) return;
  await deleteGone(r, pipelineId, inSource, inTarget, head);
}

/**
 * The fast path of a run the target lacks: its checkpoints verified, then stored with the run's
 * key record in one `importRun` (up to a bounded size; the rest go one by one). False when nothing
 * was imported: all corrupt, or the target holds something of the run after all (a conflict).
 */
async function importFirst(
  r: Replication,
  pipelineId: string,
  listing: readonly ListedCheckpoint[],
): Promise<boolean> {
  const parents = listedParents(listing, storeParents(r.source));
  const memo = new OutputMemo();
  r.reader.reset();
  const items: ImportedCheckpoint[] = [];
  const has = new Set<string>();
  let bytes = 0;
  for (const m of parsed(listing)) {
    if (r.aborted) return false;
    if (items.length >= IMPORT_MAX_CHECKPOINTS || bytes >= IMPORT_MAX_BYTES) break;
    const checked = await r.reader.verify(m.checkpoint_id, parents, memo);
    if (checked.kind === "corrupt") r.corrupt(pipelineId, m.checkpoint_id, checked.problems);
    if (checked.kind !== "ok") continue;
    const outputs = await r.reader.missingOutputs(checked.copy, has);
    if (!outputs) continue;
    for (const o of outputs) {
      has.add(o.hash);
      bytes += o.body.length;
    }
    bytes += checked.copy.record.body.length;
    items.push({ record: checked.copy.record, outputs });
    r.reader.forget(checked.copy.refs);
    r.progress();
  }
  if (items.length === 0) return false;
  const runKey = await r.source.getRunKey?.(pipelineId);
  try {
    await r.target.importRun(pipelineId, items, {
      replace: false,
      ...(runKey !== undefined ? { runKey } : {}),
    });
  } catch (error) {
    // Something of the run is on the target (outputs, a checkpoint id): copied one by one instead.
    if (error instanceof CheckpointConflictError) return false;
    throw error;
  }
  r.report.checkpointsCopied += items.length;
  r.report.outputsCopied += has.size;
  r.progress();
  return true;
}

/** Copies the checkpoints the target lacks, oldest first, and status fields that differ. */
async function copyMissing(
  r: Replication,
  pipelineId: string,
  sourceListing: readonly ListedCheckpoint[],
  inTarget: readonly StoredMetadata[],
): Promise<void> {
  const there = new Map(inTarget.map((m) => [m.checkpoint_id, m]));
  const parents = listedParents(sourceListing, storeParents(r.source));
  const memo = new OutputMemo();
  r.reader.reset();
  let has: Set<string> | undefined;
  for (const m of parsed(sourceListing)) {
    if (r.aborted) return;
    const id = m.checkpoint_id;
    const existing = there.get(id);
    if (existing) {
      if (existing.checksum !== m.checksum)
        r.diverged(pipelineId, `checkpoint ${id} has another checksum on the target; left as it is`, id);
      else if (statusDiffers(existing, m)) await copyStatus(r, m);
      continue;
    }
    const checked = await r.reader.verify(id, parents, memo);
    if (checked.kind === "corrupt") r.corrupt(pipelineId, id, checked.problems);
    if (checked.kind !== "ok") continue;
    has ??= await r.targetOutputs(pipelineId, true);
    const outputs = await r.reader.missingOutputs(checked.copy, has);
    if (!outputs) continue;
    const outcome = await putCopy(r.target, checked.copy, outputs);
    if (outcome === "copied") {
      for (const o of outputs) has.add(o.hash);
      r.report.checkpointsCopied++;
      r.report.outputsCopied += outputs.length;
    } else if (outcome === "diverged") {
      r.diverged(pipelineId, `checkpoint ${id} is held differently on the target; left as it is`, id);
    }
    r.reader.forget(checked.copy.refs);
    r.progress();
  }
}

/**
 * Deletes the target's checkpoints the source no longer holds (unless `keepDeleted`); those the
 * source's retention removed are deleted as retention, so the target's head records it too.
 */
async function deleteGone(
  r: Replication,
  pipelineId: string,
  inSource: readonly StoredMetadata[],
  inTarget: readonly StoredMetadata[],
  head: RunHead | undefined,
): Promise<void> {
  if (r.options.keepDeleted) return;
  const kept = new Set(inSource.map((m) => m.checkpoint_id));
  const gone = inTarget.filter((m) => !kept.has(m.checkpoint_id));
  if (gone.length === 0) return;
  const pruned = head?.pruned?.throughSequence ?? 0;
  const byRetention = gone.filter((m) => m.sequence <= pruned).map((m) => m.checkpoint_id);
  const other = gone.filter((m) => m.sequence > pruned).map((m) => m.checkpoint_id);
  if (byRetention.length > 0)
    r.report.checkpointsDeleted += await r.target.deleteCheckpoints(pipelineId, byRetention, {
      retention: true,
    });
  if (other.length > 0) r.report.checkpointsDeleted += await r.target.deleteCheckpoints(pipelineId, other);
  r.progress();
}
