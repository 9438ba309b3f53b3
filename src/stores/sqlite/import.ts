/**
 * The SQLite store's whole-run import: one IMMEDIATE transaction that checks the run, deletes
 * the old one when replacing, and puts every checkpoint as `putCheckpoint` would (the runs row
 * and head included). A kill at any point leaves the transaction uncommitted: no trace.
 */
import { CheckpointConflictError } from "../../core/errors.js";
import type { ImportedCheckpoint, ImportRunOptions } from "../types.js";
import type { TableNames } from "./migrations.js";
import type { SqliteDatabase } from "./sqlite-store.js";
import type { Prepared } from "./statements.js";

/** Builds the import transaction of one store. */
export function prepareImport(db: SqliteDatabase, tables: TableNames, prepared: Prepared) {
  const { checkpoints: c, outputs: o } = tables;
  const held = db.prepare(
    `SELECT 1 FROM ${c} WHERE pipeline_id = ? UNION ALL SELECT 1 FROM ${o} WHERE pipeline_id = ? LIMIT 1`,
  );
  const { transactions, keys } = prepared;
  const importRun = db.transaction(
    (pipelineId: string, checkpoints: readonly ImportedCheckpoint[], options: ImportRunOptions) => {
      let replaced = false; // a key record was destroyed or replaced
      if (held.get(pipelineId, pipelineId) !== undefined) {
        if (!options.replace)
          throw new CheckpointConflictError(pipelineId, `Run ${pipelineId} already exists in the store`);
        // The lease row is another table: the run's fencing token survives. The key record
        // goes with the old run; a run with only a key is new, and keeps it.
        replaced = transactions.deleteRun(pipelineId);
      }
      if (options.runKey !== undefined) {
        // A key record of a run that held only that is replaced: its old bytes are destroyed too.
        if (keys.get(pipelineId) !== undefined) replaced = true;
        keys.set(pipelineId, options.runKey);
      }
      // Nested transactions are savepoints; an id another run holds fails the insert, and the
      // error rolls back the whole import, the delete above included.
      for (const { record, outputs } of checkpoints) transactions.put(record, outputs, undefined, undefined);
      return replaced;
    },
  );
  /** Imports the run; true when a key record was destroyed or replaced (the WAL still holds it). */
  return (
    pipelineId: string,
    checkpoints: readonly ImportedCheckpoint[],
    options: ImportRunOptions,
  ): boolean => importRun.immediate(pipelineId, checkpoints, options);
}
