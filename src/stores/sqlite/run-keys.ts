/**
 * The SQLite store's run key records (`<prefix>run_keys`, one row per run): compare-and-set in
 * one statement each (SQLite runs it under the database's write lock, so two processes never
 * both win), and the WAL truncation that follows a destroyed key.
 */
import type { TableNames } from "./migrations.js";
import type { SqliteDatabase } from "./sqlite-store.js";

/** Prepares the key record statements of one store; after the migrations. */
export function prepareRunKeys(db: SqliteDatabase, tables: TableNames) {
  const k = tables.runKeys;
  const select = db.prepare(`SELECT record FROM ${k} WHERE pipeline_id = ?`);
  const create = db.prepare(`INSERT INTO ${k} (pipeline_id, record) VALUES (?, ?) ON CONFLICT DO NOTHING`);
  // `=` on TEXT compares the bytes: the record must be exactly the expected one.
  const replace = db.prepare(`UPDATE ${k} SET record = ? WHERE pipeline_id = ? AND record = ?`);
  const set = db.prepare(
    `INSERT INTO ${k} (pipeline_id, record) VALUES (?, ?)
     ON CONFLICT (pipeline_id) DO UPDATE SET record = excluded.record`,
  );
  return {
    get(pipelineId: string): string | undefined {
      const row = select.get(pipelineId) as { record: unknown } | undefined;
      return row === undefined ? undefined : String(row.record);
    },
    put(pipelineId: string, record: string, expected: string | undefined): boolean {
      const result =
        expected === undefined ? create.run(pipelineId, record) : replace.run(record, pipelineId, expected);
      return result.changes === 1;
    },
    /** Sets the record whatever it was; for `importRun`, inside its transaction. */
    set(pipelineId: string, record: string): void {
      set.run(pipelineId, record);
    },
  };
}

/** The prepared key record statements of one store. */
export type RunKeys = ReturnType<typeof prepareRunKeys>;

/**
 * After a key record was deleted: copies the WAL into the database file and truncates the WAL,
 * so the frames that still hold the old record leave the file. Best effort: a reader holding an
 * old snapshot blocks it, which SQLite reports as `busy` (not an error; the next truncation
 * succeeds). The busy handler is off meanwhile, so a long reader never stalls this thread.
 * Errors are thrown.
 */
export function truncateWal(db: SqliteDatabase): void {
  if (db.memory) return;
  const timeout = db.prepare("PRAGMA busy_timeout").get() as { timeout?: unknown } | undefined;
  db.exec("PRAGMA busy_timeout = 0");
  try {
    db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get();
  } finally {
    db.exec(`PRAGMA busy_timeout = ${Number(timeout?.timeout ?? 0)}`);
  }
}
