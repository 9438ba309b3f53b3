/**
 * Applying one change of the source's feed to the target, idempotently: after a kill the
 * replicator applies again every change after its saved cursor, some of which it had applied.
 * Each apply reads the current state of both stores rather than trusting the change's details,
 * so applying a change late (after later ones happened) or twice converges all the same.
 */
import { CheckpointCorruptError } from "../core/errors.js";
import type { StoredMetadata } from "../core/record.js";
import { storeParents } from "../manager/check.js";
import type { StoreChange } from "../stores/types.js";
import type { Replication } from "./context.js";
import { putCopy, targetMetadata } from "./copy.js";
import { copyStatus, statusDiffers } from "./sync.js";

/** Applies one change (a change of a run the filters leave out is skipped). */
export async function applyChange(r: Replication, change: StoreChange): Promise<void> {
  // pipelineName is "" for a run the store held nothing of: only the id filter applies.
  if (!r.wants(change.pipelineId, change.pipelineName || undefined)) return;
  const { pipelineId, checkpointId } = change;
  if (checkpointId === undefined) {
    if (change.type === "deleted") await deleteRun(r, pipelineId);
    return;
  }
  if (change.type === "deleted") await deleteCheckpoint(r, pipelineId, checkpointId, change.sequence);
  else await copyCheckpoint(r, pipelineId, checkpointId);
}

/** The source's metadata of a checkpoint; undefined when gone; null (reported) when unparseable. */
async function sourceMetadata(
  r: Replication,
  pipelineId: string,
  checkpointId: string,
): Promise<StoredMetadata | null | undefined> {
  try {
    return (await r.source.getCheckpoint(checkpointId))?.metadata;
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    r.corrupt(pipelineId, checkpointId, [{ kind: "unreadable", message: error.message }]);
    return null;
  }
}

/**
 * True (reported) when the target's run is ahead of the source's: its head has a higher sequence
 * than the source's head, so it holds checkpoints written on the replica (after a failover).
 * Otherwise whether the target holds anything of the run (a head record).
 */
async function targetAhead(r: Replication, pipelineId: string): Promise<{ ahead: boolean; held: boolean }> {
  const [source, target] = await Promise.all([
    r.source.getRunHead(pipelineId),
    r.target.getRunHead(pipelineId),
  ]);
  if (target === undefined || target.sequence <= (source?.sequence ?? 0))
    return { ahead: false, held: target !== undefined };
  r.diverged(
    pipelineId,
    `the target's run ${pipelineId} is at sequence ${target.sequence}, beyond the source's ${source?.sequence ?? 0} (written on the replica, as after a failover); left as it is`,
  );
  return { ahead: true, held: true };
}

/**
 * A checkpoint written or its status changed: present on the target with the same checksum, its
 * status fields are made the source's; absent, it is copied, verified, with the outputs the target
 * lacks; present with another checksum, the run has diverged and is left as it is.
 */
async function copyCheckpoint(r: Replication, pipelineId: string, checkpointId: string): Promise<void> {
  const there = await targetMetadata(r.target, checkpointId);
  if (there === null) {
    r.diverged(
      pipelineId,
      `checkpoint ${checkpointId} is unreadable on the target; left as it is`,
      checkpointId,
    );
    return;
  }
  if (there) {
    const source = await sourceMetadata(r, pipelineId, checkpointId);
    // Deleted since: its deletion is a later change.
    if (!source) return;
    if (source.checksum !== there.checksum)
      r.diverged(
        pipelineId,
        `checkpoint ${checkpointId} has another checksum on the target; left as it is`,
        checkpointId,
      );
    else if (statusDiffers(there, source)) await copyStatus(r, source);
    return;
  }
  r.reader.reset();
  const checked = await r.reader.verify(checkpointId, storeParents(r.source), r.memoFor(pipelineId));
  if (checked.kind === "corrupt") r.corrupt(pipelineId, checkpointId, checked.problems);
  if (checked.kind !== "ok") return;
  const { ahead, held } = await targetAhead(r, pipelineId);
  if (ahead || !(await r.syncRunKey(pipelineId, held))) return;
  const has = await r.targetOutputs(pipelineId);
  const outputs = await r.reader.missingOutputs(checked.copy, has);
  if (!outputs) return;
  const outcome = await putCopy(r.target, checked.copy, outputs);
  r.reader.reset();
  if (outcome === "diverged") {
    r.diverged(
      pipelineId,
      `checkpoint ${checkpointId} is held differently on the target; left as it is`,
      checkpointId,
    );
    return;
  }
  if (outcome !== "copied") return;
  for (const o of outputs) has.add(o.hash);
  r.report.checkpointsCopied++;
  r.report.outputsCopied += outputs.length;
}

/**
 * A checkpoint deleted: deleted on the target too (as retention when the source's head says its
 * retention removed it), unless `keepDeleted` or the target's run is ahead.
 */
async function deleteCheckpoint(
  r: Replication,
  pipelineId: string,
  checkpointId: string,
  sequence: number | undefined,
): Promise<void> {
  if (r.options.keepDeleted) return;
  if ((await targetAhead(r, pipelineId)).ahead) return;
  const head = await r.source.getRunHead(pipelineId);
  const retention = sequence !== undefined && sequence <= (head?.pruned?.throughSequence ?? 0);
  r.report.checkpointsDeleted += await r.target.deleteCheckpoints(
    pipelineId,
    [checkpointId],
    retention ? { retention: true } : undefined,
  );
}

/** A run deleted: deleted on the target too, unless `keepDeleted`. */
async function deleteRun(r: Replication, pipelineId: string): Promise<void> {
  if (r.options.keepDeleted) return;
  const had =
    (await r.target.getRunHead(pipelineId)) !== undefined ||
    (await r.target.listCheckpoints(pipelineId)).length > 0;
  await r.target.deleteRun(pipelineId);
  r.forgetRun(pipelineId);
  if (had) r.report.runsDeleted++;
}
