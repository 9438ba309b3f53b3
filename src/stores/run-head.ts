/** The run head record as the SQL stores keep it: columns of the run's row in the runs table. */
import type { RunHead } from "./types.js";

/**
 * The head record of a runs-table row (`last_sequence`, `last_checkpoint_id`, `last_checksum`,
 * `pruned_through`, `pruned_at`); undefined without a row or without a last checkpoint.
 */
export function headOfRow(row: Record<string, unknown> | undefined): RunHead | undefined {
  if (row === undefined || row.last_checkpoint_id === null || row.last_checkpoint_id === undefined) {
    return undefined;
  }
  const head: RunHead = {
    sequence: Number(row.last_sequence),
    checkpointId: String(row.last_checkpoint_id),
    checksum: String(row.last_checksum),
  };
  if (row.pruned_through !== null && row.pruned_through !== undefined) {
    head.pruned = { throughSequence: Number(row.pruned_through), at: String(row.pruned_at) };
  }
  return head;
}
