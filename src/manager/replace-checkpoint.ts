/**
 * Replacing one stored checkpoint (`import --overwrite` of a single-checkpoint export) without
 * ever deleting it first: the run is rebuilt with the new version in place of the old and
 * published with the store's atomic `importRun` (replace), under the run's lease, so a kill at
 * any moment leaves either the old run or the new one, and a live runner is fenced, not forked.
 *
 * The rest of the run is carried as stored, beneath the at-rest layer: an encrypted run keeps
 * its data key (its key record goes along) and its records are neither opened nor sealed again.
 */
import { CheckpointConflictError } from "../core/errors.js";
import { type CheckpointRecord, compareStored, type OutputRecord } from "../core/record.js";
import type { CheckpointStore, ImportedCheckpoint } from "../stores/types.js";
import { inUseReason, LEASE_LOST_REASON, newCleanupOwner, withCleanupLease } from "./cleanup-lease.js";
import { rawStore } from "./sealed-transfer.js";

/**
 * Replaces the stored checkpoint of `record`'s id, which must belong to the same run, with
 * `record` and its `outputs`, given as they are to be stored (see `storedForm`); every other
 * checkpoint and output of the run is kept as stored.
 * `CheckpointConflictError` when the run is being executed, holds entries that cannot be read
 * (repair them first: a rebuild would drop them), or the id belongs to another run.
 */
export async function replaceCheckpoint(
  store: CheckpointStore,
  record: CheckpointRecord,
  outputs: readonly OutputRecord[],
): Promise<void> {
  const pipelineId = record.metadata.pipeline_id;
  const id = record.metadata.checkpoint_id;
  const raw = rawStore(store);
  const outcome = await withCleanupLease(store, pipelineId, newCleanupOwner(), async (lease) => {
    const listing = await raw.listCheckpoints(pipelineId);
    const unreadable = listing.filter((e) => !e.ok).length;
    if (unreadable > 0) {
      throw new CheckpointConflictError(
        id,
        `Run ${pipelineId} holds ${unreadable} unreadable entr${unreadable === 1 ? "y" : "ies"}; replacing ${id} would drop them, so nothing was changed; run cairn repair first`,
      );
    }
    const kept: CheckpointRecord[] = [];
    let found = false;
    for (const entry of listing) {
      if (!entry.ok) continue;
      if (entry.metadata.checkpoint_id === id) {
        found = true;
        continue;
      }
      const stored = await raw.getCheckpoint(entry.metadata.checkpoint_id);
      // Deleted since the listing: it is no longer part of the run.
      if (stored) kept.push(stored);
    }
    if (!found) {
      throw new CheckpointConflictError(
        id,
        `Checkpoint ${id} exists in the store but not in run ${pipelineId}; nothing was changed`,
      );
    }
    // Outputs no checkpoint references any more are kept too: replacing one checkpoint changes nothing else.
    const hashes = await raw.listOutputHashes(pipelineId);
    const stored = await raw.getOutputs(pipelineId, hashes);
    const fresh = new Set(outputs.map((o) => o.hash));
    const carried: OutputRecord[] = [...stored]
      .filter(([hash]) => !fresh.has(hash))
      .map(([hash, body]) => ({ hash, body }));
    const records = [...kept, record].sort((a, b) => compareStored(a.metadata, b.metadata));
    const checkpoints: ImportedCheckpoint[] = records.map((r, i) => ({
      record: r,
      outputs: [...(r === record ? outputs : []), ...(i === 0 ? carried : [])],
    }));
    // Read last, so a key record re-wrapped meanwhile (rekey) is the one kept.
    const runKey = await raw.getRunKey?.(pipelineId);
    if (!(await lease.keep())) {
      throw new CheckpointConflictError(
        id,
        `Run ${pipelineId}: ${LEASE_LOST_REASON}; checkpoint ${id} was not replaced`,
      );
    }
    await raw.importRun(pipelineId, checkpoints, {
      replace: true,
      ...(runKey !== undefined ? { runKey } : {}),
    });
  });
  if (outcome.held) {
    throw new CheckpointConflictError(
      id,
      `Run ${pipelineId} is ${inUseReason(outcome.holder)}; checkpoint ${id} was not replaced`,
    );
  }
}
