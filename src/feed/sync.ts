/**
 * The full compare of runs (the replicator's first phase, and its answer to a trimmed feed): each
 * run's listing in the source against the target's. A run the target lacks is imported whole in
 * one atomic step; otherwise the missing checkpoints are copied oldest first, differing status
 * fields copied, and what the source no longer holds deleted, except on a target that is ahead.
 */
import { CheckpointConflictError, CheckpointNotFoundError } from "../core/errors.js";
import type { StatusPatch, StoredMetadata } from "../core/record.js";
import { listedParents, OutputMemo, type ParentLookup, storeParents } from "../manager/check.js";
import type { CheckpointStore, ImportedCheckpoint, ListedCheckpoint, RunHead } from "../stores/types.js";
import { type Replication, settleLimit } from "./context.js";
import { putCopy, type SourceReader } from "./copy.js";

/** Most checkpoints (and stored bytes) a run's first copy imports in one step; the rest are put one by one. */
const IMPORT_MAX_CHECKPOINTS = 1000;
const IMPORT_MAX_BYTES = 64 * 1024 * 1024;

/** Runs compared at the same time (each run's own work stays in order). */
const SYNC_CONCURRENCY = 16;

/**
 * Compares every run (or the filtered ones): `done`, `aborted` when the signal stopped it before
 * the end, `refused` when the source holds no run while the target does (nothing was deleted).
 */
export async function syncAll(r: Replication): Promise<"done" | "aborted" | "refused"> {
  r.report.syncs++;
  r.enter("sync");
  const { ids, sourceEmpty } = await runIds(r);
  if (sourceEmpty && !r.options.keepDeleted) {
    // A mistyped or wrong source (an empty redis prefix is no error) would otherwise empty the
    // replica. Real deletions still arrive through the feed; a full sync never deletes them all.
    r.problem(
      {
        kind: "empty-source",
        message: `the source ${r.source.location} holds no run${filtered(r)} while the target holds some: nothing was deleted on the target (a wrong source?)`,
      },
      "empty-source",
    );
    r.runsTotal = 0;
    r.progress(true);
    return "refused";
  }
  r.runsTotal = ids.length;
  r.runsDone = 0;
  r.progress(true);
  await settleLimit(ids, SYNC_CONCURRENCY, async (pipelineId) => {
    if (r.aborted) return;
    await syncRun(r, pipelineId);
    if (r.aborted) return;
    r.runsDone++;
    r.progress();
  });
  if (r.aborted) return "aborted";
  r.progress(true);
  return "done";
}

/** How the filters narrow the runs, for messages. */
function filtered(r: Replication): string {
  const { pipelineId, name } = r.options;
  if (pipelineId !== undefined) return ` ${pipelineId}`;
  return name !== undefined ? ` of pipeline ${name}` : "";
}

/**
 * The runs to compare: the filtered run, the runs of the named pipeline, or every run, on both
 * sides. `sourceEmpty`: the source holds none of them (not even a run head) and the target some.
 */
async function runIds(r: Replication): Promise<{ ids: string[]; sourceEmpty: boolean }> {
  const { pipelineId, name } = r.options;
  if (pipelineId !== undefined) {
    const [source, head, target] = await Promise.all([
      r.source.listCheckpoints(pipelineId),
      r.source.getRunHead(pipelineId),
      r.target.listCheckpoints(pipelineId),
    ]);
    return { ids: [pipelineId], sourceEmpty: source.length === 0 && head === undefined && target.length > 0 };
  }
  const [source, target] =
    name !== undefined
      ? await Promise.all([namedRuns(r.source, name), namedRuns(r.target, name)])
      : await Promise.all([r.source.listPipelineIds(), r.target.listPipelineIds()]);
  return {
    ids: [...new Set([...source, ...target])].sort(),
    sourceEmpty: source.length === 0 && target.length > 0,
  };
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
  let targetHolds = targetListing.length > 0;
  if (targetHigh > sourceHigh) {
    if (!isOldIncarnation(r, inSource, inTarget)) {
      r.diverged(
        pipelineId,
        `the target's run ${pipelineId} has a checkpoint of sequence ${targetHigh}, beyond the source's ${sourceHigh} (written on the replica, as after a failover); left as it is`,
      );
      return;
    }
    // The source deleted the run and wrote it again under the same id (a deletion the feed no
    // longer holds): the replica's run is the old one, and goes as the source's did.
    await target.deleteRun(pipelineId);
    r.forgetRun(pipelineId);
    r.report.runsDeleted++;
    inTarget = [];
    targetHolds = false;
  }
  const reader = r.newReader();
  if (!targetHolds && inSource.length > 0) {
    const imported = await importFirst(r, reader, pipelineId, sourceListing);
    if (r.aborted) return;
    if (imported) inTarget = parsed(await target.listCheckpoints(pipelineId));
  }
  if (!(await r.syncRunKey(pipelineId, inTarget.length > 0))) return;
  await copyMissing(r, reader, pipelineId, sourceListing, inTarget);
  if (r.aborted) return;
  await deleteGone(r, pipelineId, sourceListing, inTarget, head);
}

/**
 * True when the target's run shares no checkpoint with the source's run of the same id: the
 * source's is a new run under an old id, not the history the replica went on from after a
 * failover (which starts with checkpoints both hold). Never with `keepDeleted`: the old run stays.
 */
function isOldIncarnation(
  r: Replication,
  inSource: readonly StoredMetadata[],
  inTarget: readonly StoredMetadata[],
): boolean {
  if (r.options.keepDeleted || inSource.length === 0) return false;
  const ids = new Set(inSource.map((m) => m.checkpoint_id));
  return !inTarget.some((m) => ids.has(m.checkpoint_id));
}

/**
 * The fast path of a run the target lacks: its checkpoints verified, then stored with the run's
 * key record in one `importRun` (up to a bounded size; the rest go one by one). False when nothing
 * was imported: all corrupt, or the target holds something of the run after all (a conflict).
 */
async function importFirst(
  r: Replication,
  reader: SourceReader,
  pipelineId: string,
  listing: readonly ListedCheckpoint[],
): Promise<boolean> {
  const ids = parsed(listing).map((m) => m.checkpoint_id);
  const parents = listedParents(listing, storeParents(r.source));
  return (await importNew(r, reader, pipelineId, ids, parents, new OutputMemo())).imported;
}

/**
 * Verifies checkpoints `ids` of a run the target holds nothing of, in order, and stores those that
 * pass in one `importRun` with the run's key record, stopping at a bounded size. `handled` is how
 * many of `ids` it dealt with (imported, reported corrupt, or gone); `imported` is false when
 * nothing was stored (then the caller copies them one by one: a conflict means the target holds
 * something of the run after all).
 */
export async function importNew(
  r: Replication,
  reader: SourceReader,
  pipelineId: string,
  ids: readonly string[],
  parents: ParentLookup,
  memo: OutputMemo,
): Promise<{ handled: number; imported: boolean; highest: number }> {
  reader.reset();
  const items: ImportedCheckpoint[] = [];
  const has = new Set<string>();
  let bytes = 0;
  let handled = 0;
  for (const id of ids) {
    if (r.aborted) return { handled: 0, imported: false, highest: 0 };
    if (items.length >= IMPORT_MAX_CHECKPOINTS || bytes >= IMPORT_MAX_BYTES) break;
    handled++;
    const checked = await reader.verify(id, parents, memo);
    if (checked.kind === "corrupt") r.corrupt(pipelineId, id, checked.problems);
    if (checked.kind !== "ok") continue;
    const outputs = await reader.missingOutputs(checked.copy, has);
    if (!outputs) continue;
    for (const o of outputs) {
      has.add(o.hash);
      bytes += o.body.length;
    }
    bytes += checked.copy.record.body.length;
    items.push({ record: checked.copy.record, outputs });
    reader.forget(checked.copy.refs);
    r.progress();
  }
  if (items.length === 0) return { handled: 0, imported: false, highest: 0 };
  const runKey = await r.source.getRunKey?.(pipelineId);
  try {
    await r.target.importRun(pipelineId, items, {
      replace: false,
      ...(runKey !== undefined ? { runKey } : {}),
    });
  } catch (error) {
    if (error instanceof CheckpointConflictError) return { handled: 0, imported: false, highest: 0 };
    throw error;
  }
  r.report.checkpointsCopied += items.length;
  r.report.outputsCopied += has.size;
  r.progress();
  return { handled, imported: true, highest: highest(items.map((i) => i.record.metadata)) };
}

/** Copies the checkpoints the target lacks, oldest first, and status fields that differ. */
async function copyMissing(
  r: Replication,
  reader: SourceReader,
  pipelineId: string,
  sourceListing: readonly ListedCheckpoint[],
  inTarget: readonly StoredMetadata[],
): Promise<void> {
  const there = new Map(inTarget.map((m) => [m.checkpoint_id, m]));
  const parents = listedParents(sourceListing, storeParents(r.source));
  const memo = new OutputMemo();
  reader.reset();
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
    const checked = await reader.verify(id, parents, memo);
    if (checked.kind === "corrupt") r.corrupt(pipelineId, id, checked.problems);
    if (checked.kind !== "ok") continue;
    has ??= await r.targetOutputs(pipelineId, true);
    const outputs = await reader.missingOutputs(checked.copy, has);
    if (!outputs) continue;
    const { outcome } = await putCopy(r.target, checked.copy, outputs);
    if (outcome === "copied") {
      for (const o of outputs) has.add(o.hash);
      r.report.checkpointsCopied++;
      r.report.outputsCopied += outputs.length;
    } else if (outcome === "diverged") {
      r.diverged(pipelineId, `checkpoint ${id} is held differently on the target; left as it is`, id);
    }
    reader.forget(checked.copy.refs);
    r.progress();
  }
}

/**
 * Deletes the target's checkpoints the source no longer holds (unless `keepDeleted`); those the
 * source's retention removed are deleted as retention, so the target's head records it too. A
 * checkpoint the source holds but cannot parse is not gone: the replica's copy may be the only
 * good one left (and with a corrupt entry of unknown id in the source, nothing is deleted).
 */
async function deleteGone(
  r: Replication,
  pipelineId: string,
  sourceListing: readonly ListedCheckpoint[],
  inTarget: readonly StoredMetadata[],
  head: RunHead | undefined,
): Promise<void> {
  if (r.options.keepDeleted) return;
  const kept = new Set<string>();
  for (const entry of sourceListing) {
    const id = entry.ok ? entry.metadata.checkpoint_id : entry.corrupt.checkpointId;
    if (id === undefined) return;
    kept.add(id);
  }
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
