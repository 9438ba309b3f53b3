/**
 * The PostgreSQL store's whole-run import: one transaction that locks the run's row, checks the
 * run, empties and re-heads it when replacing, and inserts every output and checkpoint. Nothing
 * is visible to other sessions before COMMIT; a killed client's transaction is rolled back.
 */
import { CheckpointConflictError, InvalidArgumentError } from "../../core/errors.js";
import { sha256 } from "../../core/record.js";
import { PIPELINE_COMPLETE_STAGE } from "../../core/types.js";
import type { ImportedCheckpoint, ImportRunOptions } from "../types.js";
import { inTransaction } from "./driver.js";
import { type ChangeRow, changeParams } from "./feed-sql.js";
import type { TableNames } from "./migrations.js";
import { type PgWriter, queryableBody } from "./put.js";
import { COLUMNS, type Statement } from "./queries.js";
import { isoOf } from "./rows.js";

// Named by their text, which holds the table names: stores on other tables get other names.
const named = (text: string): Statement => ({ name: `cairn_import_${sha256(text).slice(0, 16)}`, text });

function importStatements(tables: TableNames) {
  const { checkpoints: c, outputs: o, runs: r } = tables;
  return {
    // The run's name before the import, for the `deleted` change of a replaced run.
    lockName: named(`SELECT pipeline_name FROM ${r} WHERE pipeline_id = $1::text FOR UPDATE`),
    held: named(
      `SELECT 1 FROM ${c} WHERE pipeline_id = $1::text UNION ALL SELECT 1 FROM ${o} WHERE pipeline_id = $1::text LIMIT 1`,
    ),
    // The replaced run's row becomes the new run's, as its first write would have made it.
    resetRun: named(
      `UPDATE ${r} SET pipeline_name = $2::text, created_at = $3::timestamptz, finished = false,
       last_sequence = NULL, last_checkpoint_id = NULL, last_checksum = NULL WHERE pipeline_id = $1::text`,
    ),
  };
}

/** Stores a whole run atomically; see the file's comment and `CheckpointStore.importRun`. */
export async function importRun(
  db: PgWriter,
  tables: TableNames,
  pipelineId: string,
  checkpoints: readonly ImportedCheckpoint[],
  options: ImportRunOptions,
): Promise<void> {
  for (const { record } of checkpoints) {
    const m = record.metadata;
    if (isoOf(m.timestamp) !== m.timestamp) {
      throw new InvalidArgumentError(
        `checkpoint ${m.checkpoint_id}: timestamp ${JSON.stringify(m.timestamp)} is not in ` +
          "the form 2024-01-01T12:00:00.000Z, the only form this store gives back unchanged",
      );
    }
  }
  const first = (checkpoints[0] as ImportedCheckpoint).record.metadata;
  const q = importStatements(tables);
  await db.call(() =>
    inTransaction(db.pool, async (client) => {
      // Every writer of the run locks this row first, so none is half-way through it.
      const created = await db.run(client, db.sql.ensureRun, [
        pipelineId,
        first.pipeline_name,
        first.timestamp,
      ]);
      const locked = await db.run(client, q.lockName, [pipelineId]);
      // A row this transaction created names the new run, not the one replaced.
      const oldName = created.rowCount === 1 ? "" : String(locked.rows[0]?.pipeline_name ?? "");
      const changes: ChangeRow[] = [];
      const { rows } = await db.run(client, q.held, [pipelineId]);
      if (rows.length > 0) {
        if (!options.replace)
          throw new CheckpointConflictError(pipelineId, `Run ${pipelineId} already exists in the store`);
        // The key record goes with the old run; a run with only a key is new, and keeps it.
        await db.run(client, db.sql.deleteRunKey, [pipelineId]);
        await db.run(client, db.sql.deleteRunCheckpoints, [pipelineId]);
        await db.run(client, db.sql.deleteRunOutputs, [pipelineId]);
        changes.push({
          type: "deleted",
          pipelineId,
          pipelineName: oldName,
          checkpointId: null,
          sequence: null,
        });
      }
      if (options.runKey !== undefined) await db.run(client, db.sql.setRunKey, [pipelineId, options.runKey]);
      await db.run(client, q.resetRun, [pipelineId, first.pipeline_name, first.timestamp]);
      const stored = new Set<string>();
      for (const { outputs } of checkpoints) {
        for (const output of outputs) {
          if (stored.has(output.hash)) continue;
          stored.add(output.hash);
          await db.run(client, db.sql.insertOutput, [pipelineId, output.hash, output.body]);
        }
      }
      for (const { record } of checkpoints) {
        const values: unknown[] = COLUMNS.map((column) => record.metadata[column]);
        values.push(record.body, queryableBody(record.body));
        const inserted = await db.run(client, db.sql.insertCheckpoint, values);
        // Another run holds the id: thrown inside the transaction, so nothing is kept.
        if (inserted.rowCount === 0) throw new CheckpointConflictError(record.metadata.checkpoint_id);
        changes.push({
          type: "checkpoint",
          pipelineId,
          pipelineName: null,
          checkpointId: record.metadata.checkpoint_id,
          sequence: record.metadata.sequence,
        });
      }
      const finished = checkpoints.some((c) => c.record.metadata.stage_name === PIPELINE_COMPLETE_STAGE);
      await db.run(client, db.sql.refreshRun, [pipelineId, finished]);
      // Last: the feed's row lock is held from here to the commit only.
      await db.run(client, db.sql.feed.recordChanges, changeParams(changes, db.feedRetention));
    }),
  );
}
