/**
 * Checks shared by the fault-injection tests: after a fault, what a run holds is whole. Every
 * listed checkpoint parses and validates (checksum, outputs, link to its parent), and every
 * stored output is referenced by one of them.
 */
import { expect } from "vitest";
import { parseBody } from "../../src/core/formats.js";
import type { CheckpointManager } from "../../src/index.js";

/** Asserts the run is intact and returns its checkpoint ids, oldest first. */
export async function expectRunIntact(manager: CheckpointManager, pipelineId: string): Promise<string[]> {
  const store = await manager.getStore();
  const listing = await store.listCheckpoints(pipelineId);
  expect(listing.filter((e) => !e.ok)).toEqual([]);
  const ids = listing.flatMap((e) => (e.ok ? [e.metadata.checkpoint_id] : []));
  const referenced = new Set<string>();
  for (const [i, id] of ids.entries()) {
    const result = await manager.validateCheckpoint(id);
    expect(result, id).toMatchObject({ valid: true, problems: [] });
    const checkpoint = await manager.loadCheckpoint(id);
    // One chain: each checkpoint's parent is the one listed before it.
    expect(checkpoint.metadata.parentCheckpointId ?? null).toBe(i === 0 ? null : ids[i - 1]);
    for (const hash of await outputRefs(manager, id)) referenced.add(hash);
  }
  const stored = await store.listOutputHashes(pipelineId);
  expect(stored.filter((hash) => !referenced.has(hash))).toEqual([]);
  return ids;
}

/** The output hashes a checkpoint references. */
async function outputRefs(manager: CheckpointManager, checkpointId: string): Promise<string[]> {
  const record = await (await manager.getStore()).getCheckpoint(checkpointId);
  if (!record) throw new Error(`checkpoint ${checkpointId} is gone`);
  return Object.values(parseBody(record.metadata, record.body).output_refs);
}
