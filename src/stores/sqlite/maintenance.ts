/**
 * Maintenance of the SQLite store for `cairn repair`: a corrupt row read raw and removed, and
 * the tables' indexes rebuilt. Rare admin paths, so their statements are prepared per call.
 */
import { CheckpointConflictError, CheckpointNotFoundError } from "../../core/errors.js";
import { metadataProblems } from "../../core/record.js";
import { renderRow } from "../raw-row.js";
import type { CorruptEntry } from "../types.js";
import type { TableNames } from "./migrations.js";
import type { SqliteDatabase, SqliteStatement } from "./sqlite-store.js";

type Row = Record<string, unknown>;

function selectRow(db: SqliteDatabase, tables: TableNames, entry: CorruptEntry): Row {
  const row =
    entry.checkpointId === undefined
      ? undefined
      : (db
          .prepare(`SELECT * FROM ${tables.checkpoints} WHERE pipeline_id = ? AND checkpoint_id = ?`)
          .safeIntegers(false)
          .get(entry.pipelineId, entry.checkpointId) as Row | undefined);
  if (!row) {
    throw new CheckpointNotFoundError(
      entry.checkpointId ?? entry.location,
      `The corrupt entry ${entry.location} is no longer in the store`,
    );
  }
  return row;
}

/** The row of a corrupt entry as JSON. */
export function readCorruptRow(db: SqliteDatabase, tables: TableNames, entry: CorruptEntry): string {
  return renderRow(selectRow(db, tables, entry));
}

/**
 * Deletes the row of a corrupt entry, in one immediate transaction with the check that it is
 * still corrupt and with `refreshHead` (the run's head moves if the row was its newest).
 */
export function removeCorruptRow(
  db: SqliteDatabase,
  tables: TableNames,
  entry: CorruptEntry,
  refreshHead: SqliteStatement,
): void {
  db.transaction(() => {
    const { body, ...metadata } = selectRow(db, tables, entry);
    // The same test a read applies: metadata that parses and a body that is text is a checkpoint.
    if (metadataProblems(metadata).length === 0 && (typeof body === "string" || Buffer.isBuffer(body))) {
      throw new CheckpointConflictError(
        String(entry.checkpointId),
        `${entry.location} parses as a checkpoint now; it is not removed as a corrupt entry`,
      );
    }
    db.prepare(`DELETE FROM ${tables.checkpoints} WHERE pipeline_id = ? AND checkpoint_id = ?`).run(
      entry.pipelineId,
      entry.checkpointId,
    );
    refreshHead.run({ run: entry.pipelineId });
  }).immediate();
}

/** Rebuilds every index of cairn's checkpoint and output tables (for all runs: SQLite indexes are per table). */
export function reindexTables(db: SqliteDatabase, tables: TableNames): string[] {
  const done: string[] = [];
  for (const table of [tables.checkpoints, tables.outputs, tables.runs]) {
    db.exec(`REINDEX ${table}`);
    done.push(`REINDEX ${table}: rebuilt the table's indexes (they cover every run)`);
  }
  return done;
}
