/**
 * The PostgreSQL store's deletions, each one transaction with its feed changes: checkpoints of a
 * run (with retention's tombstone), and whole runs.
 */
import type { DeleteCheckpointsOptions } from "../types.js";
import { inTransaction } from "./driver.js";
import { type ChangeRow, changeParams } from "./feed-sql.js";
import type { PgWriter } from "./put.js";

/** Deletes the listed checkpoints of a run, one `deleted` change each; returns how many existed. */
export async function deleteCheckpoints(
  db: PgWriter,
  pipelineId: string,
  checkpointIds: readonly string[],
  options: DeleteCheckpointsOptions,
): Promise<number> {
  if (checkpointIds.length === 0) return 0;
  return db.call(() =>
    inTransaction(db.pool, async (client) => {
      // Locked first, as writers do. The head stays: a deletion is never a rewind, and
      // retention's is recorded as a tombstone in the same transaction.
      await db.run(client, db.sql.lockRun, [pipelineId]);
      // The `deleted` changes are recorded by the same statement.
      const { rows } = await db.run(client, db.sql.feed.deleteCheckpoints, [
        pipelineId,
        [...checkpointIds],
        db.feedRetention,
      ]);
      if (options.retention && rows.length > 0) {
        // The run's row is locked already: this waits for nothing while the feed's row is held.
        const through = Math.max(...rows.map((r) => Number(r.sequence)));
        await db.run(client, db.sql.markPruned, [pipelineId, through, new Date().toISOString()]);
      }
      return rows.length;
    }),
  );
}

/**
 * Deletes the run's key record first, then every checkpoint row (corrupt ones included) and
 * output, in one transaction, with one `deleted` change when anything was stored. Old row
 * versions stay in the table files until VACUUM.
 */
export async function deleteRun(db: PgWriter, pipelineId: string): Promise<void> {
  // The lease row stays: a new runner of the same id must still get a larger token.
  await db.call(() =>
    inTransaction(db.pool, async (client) => {
      // The runs row first: the lock writers take, so none is half-way through the run.
      const entry = await db.run(client, db.sql.deleteRunEntry, [pipelineId]);
      await db.run(client, db.sql.deleteRunKey, [pipelineId]);
      const checkpoints = await db.run(client, db.sql.deleteRunCheckpoints, [pipelineId]);
      const outputs = await db.run(client, db.sql.deleteRunOutputs, [pipelineId]);
      // A key record alone is not a stored run (see getRunKey), so its deletion is no change.
      if (entry.rowCount === 0 && !checkpoints.rowCount && !outputs.rowCount) return;
      const name = entry.rows[0]?.pipeline_name;
      const change: ChangeRow = {
        type: "deleted",
        pipelineId,
        pipelineName: typeof name === "string" ? name : "",
        checkpointId: null,
        sequence: null,
      };
      // Last: the feed's row lock is held from here to the commit only.
      await db.run(client, db.sql.feed.recordChanges, changeParams([change], db.feedRetention));
    }),
  );
}
