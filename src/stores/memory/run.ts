/** One run of the memory store, and the small helpers the store applies to its records. */
import { CheckpointNotFoundError } from "../../core/errors.js";
import { type CheckpointRecord, compareStored } from "../../core/record.js";
import type { CorruptEntry } from "../types.js";

/** A run's checkpoints and outputs as the memory store holds them. */
export interface Run {
  checkpoints: Map<string, CheckpointRecord>;
  outputs: Map<string, string>;
  /** Id of the newest checkpoint, kept on write so resume never scans the history. */
  latestId: string | undefined;
}

/** A copy of a record, so a caller mutating it cannot change what was checkpointed. */
export const copy = (record: CheckpointRecord): CheckpointRecord => ({
  metadata: { ...record.metadata },
  body: record.body,
});

/** The id of the run's newest checkpoint, by a scan: only after the newest one was deleted. */
export function newestId(run: Run): string | undefined {
  let latest: CheckpointRecord | undefined;
  for (const record of run.checkpoints.values()) {
    if (!latest || compareStored(record.metadata, latest.metadata) > 0) latest = record;
  }
  return latest?.metadata.checkpoint_id;
}

/** The error for a corrupt entry the memory store does not hold. */
export const notHeld = (entry: CorruptEntry) =>
  new CheckpointNotFoundError(
    entry.checkpointId ?? entry.location,
    `The memory store holds no corrupt entry ${JSON.stringify(entry.location)}`,
  );
