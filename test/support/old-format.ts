/**
 * Runs as cairn of record format 1 wrote them, for the upgrade tests: a run written by today's
 * code is rewritten in place (the store's atomic whole-run import, through the manager's at-rest
 * layer, so an encrypted run stays sealed under its own key) with every record in format 1: the
 * body without the fields format 2 added, `format_version` 1, and checksums recomputed by the
 * format-1 rule down the chain.
 */
import { canonicalJson } from "../../src/core/codec.js";
import { FORMAT_V1 } from "../../src/core/formats.js";
import type { CheckpointRecord } from "../../src/core/record.js";
import type { CheckpointManager } from "../../src/index.js";
import type { ImportedCheckpoint } from "../../src/stores/types.js";

/** The body fields format 2 added to format 1. */
const V2_FIELDS = ["output_migrations", "output_versions", "pipeline_version"];

/**
 * Rewrites every record of the run in format 1. `corruptTip`: the newest record then carries a
 * checksum its content does not hash to, so it fails verification.
 */
export async function rewriteAsFormat1(
  manager: CheckpointManager,
  pipelineId: string,
  options: { corruptTip?: boolean } = {},
): Promise<CheckpointRecord[]> {
  const store = await manager.getStore();
  const listing = await store.listCheckpoints(pipelineId);
  const hashes = await store.listOutputHashes(pipelineId);
  const outputs = await store.getOutputs(pipelineId, hashes);
  const records: CheckpointRecord[] = [];
  let parent: CheckpointRecord | undefined;
  for (const [i, entry] of listing.entries()) {
    if (!entry.ok) throw new Error(`run ${pipelineId} has an unreadable entry`);
    const stored = await store.getCheckpoint(entry.metadata.checkpoint_id);
    if (!stored) throw new Error(`checkpoint ${entry.metadata.checkpoint_id} vanished`);
    const fields = JSON.parse(stored.body) as Record<string, unknown>;
    for (const field of V2_FIELDS) delete fields[field];
    const body = canonicalJson(fields);
    const metadata = {
      ...stored.metadata,
      format_version: 1,
      parent_checksum: parent ? parent.metadata.checksum : stored.metadata.parent_checksum,
    };
    metadata.checksum = FORMAT_V1.checksum(metadata, body);
    // A checksum its content does not hash to: the record fails verification.
    if (options.corruptTip && i === listing.length - 1) metadata.checksum = "0".repeat(64);
    const record = { metadata, body };
    records.push(record);
    parent = record;
  }
  const all = [...outputs].map(([hash, body]) => ({ hash, body }));
  const checkpoints: ImportedCheckpoint[] = records.map((record, i) => ({
    record,
    outputs: i === 0 ? all : [],
  }));
  await store.importRun(pipelineId, checkpoints, { replace: true });
  return records;
}
