/**
 * The PostgreSQL store's `cairn repair` paths: reading and removing corrupt rows, and rebuilding
 * indexes. Admin-only code kept apart from the run/resume path so the store file stays short.
 */
import { CheckpointConflictError, CheckpointNotFoundError } from "../../core/errors.js";
import { metadataProblems } from "../../core/record.js";
import { renderRow } from "../raw-row.js";
import type { CorruptEntry } from "../types.js";
import { inTransaction } from "./driver.js";
import type { TableNames } from "./migrations.js";
import type { PgWriter } from "./put.js";
import { metadataOf, type Row } from "./rows.js";

function corruptRow(entry: CorruptEntry, row: Row | undefined): Row {
  if (row === undefined) {
    throw new CheckpointNotFoundError(
      entry.checkpointId ?? entry.location,
      `The corrupt entry ${entry.location} is no longer in the store`,
    );
  }
  return row;
}

/** The row of a corrupt entry, every column, as JSON. */
export async function readCorruptEntry(db: PgWriter, entry: CorruptEntry): Promise<string> {
  const { rows } = await db.call(() =>
    db.run(db.pool, db.sql.selectRawRow, [entry.pipelineId, entry.checkpointId ?? null]),
  );
  return renderRow(corruptRow(entry, rows[0]));
}

/** Deletes a corrupt entry's row (by checkpoint id and run), once sure it still does not parse. */
export async function removeCorruptEntry(db: PgWriter, entry: CorruptEntry): Promise<void> {
  await db.call(() =>
    inTransaction(db.pool, async (client) => {
      await db.run(client, db.sql.lockRun, [entry.pipelineId]);
      const args = [entry.pipelineId, entry.checkpointId ?? null];
      const row = corruptRow(entry, (await db.run(client, db.sql.lockRawRow, args)).rows[0]);
      // The same test a read applies: metadata that parses and a text body is a checkpoint.
      if (metadataProblems(metadataOf(row)).length === 0 && typeof row.body === "string") {
        throw new CheckpointConflictError(
          String(entry.checkpointId),
          `${entry.location} parses as a checkpoint now; it is not removed as a corrupt entry`,
        );
      }
      await db.run(client, db.sql.deleteRow, args);
      await db.run(client, db.sql.refreshRun, [entry.pipelineId, false]);
    }),
  );
}

/**
 * `REINDEX TABLE` of cairn's tables (their indexes cover every run, so `pipelineId` does not
 * narrow it), and the run's runs-index row recomputed from its checkpoints.
 */
export async function rebuildIndexes(
  db: PgWriter,
  tables: TableNames,
  pipelineId: string,
): Promise<string[]> {
  const done: string[] = [];
  for (const table of [tables.checkpoints, tables.outputs, tables.runs]) {
    // A utility statement: sent as plain text, never as a named prepared statement.
    await db.call(() => db.pool.query({ text: `REINDEX TABLE ${table}` }));
    done.push(`REINDEX TABLE ${table}: rebuilt the table's indexes (they cover every run)`);
  }
  const rebuilt = await db.call(() =>
    inTransaction(db.pool, async (client) => {
      await db.run(client, db.sql.deleteRunEntry, [pipelineId]);
      return (await db.run(client, db.sql.rebuildRun, [pipelineId])).rowCount;
    }),
  );
  done.push(
    rebuilt
      ? `runs index: recomputed the entry of ${pipelineId} from its checkpoints`
      : `runs index: ${pipelineId} has no checkpoints, so no entry`,
  );
  return done;
}
