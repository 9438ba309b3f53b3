/**
 * The PostgreSQL store's run key records (`<prefix>run_keys`, one row per run). Compare-and-set
 * is one statement: two sessions inserting the same run serialize on the primary key (the second
 * does nothing), and an UPDATE re-checks `record = expected` on the row version it locks, so two
 * racing replacements never both win. A deleted row stays in the table's pages as a dead tuple
 * until VACUUM reclaims it (see the README, "Secure deletion").
 */
import { writeOnPool } from "./driver.js";
import type { TableNames } from "./migrations.js";
import type { PgWriter } from "./put.js";
import type { Statement } from "./queries.js";

/** The key record statements, named by `statement` as the store's others. */
export function buildKeyStatements(tables: TableNames, statement: (op: string, text: string) => Statement) {
  const k = tables.runKeys;
  return {
    selectRunKey: statement("select_run_key", `SELECT record FROM ${k} WHERE pipeline_id = $1::text`),
    createRunKey: statement(
      "create_run_key",
      `INSERT INTO ${k} (pipeline_id, record) VALUES ($1::text, $2::text) ON CONFLICT (pipeline_id) DO NOTHING`,
    ),
    replaceRunKey: statement(
      "replace_run_key",
      `UPDATE ${k} SET record = $2::text WHERE pipeline_id = $1::text AND record = $3::text`,
    ),
    setRunKey: statement(
      "set_run_key",
      `INSERT INTO ${k} (pipeline_id, record) VALUES ($1::text, $2::text)
       ON CONFLICT (pipeline_id) DO UPDATE SET record = EXCLUDED.record`,
    ),
    deleteRunKey: statement("delete_run_key", `DELETE FROM ${k} WHERE pipeline_id = $1::text`),
  };
}

/** The run's key record; undefined when it has none. */
export async function getRunKey(db: PgWriter, pipelineId: string): Promise<string | undefined> {
  const { rows } = await db.call(() => db.run(db.pool, db.sql.selectRunKey, [pipelineId]));
  const record = rows[0]?.record;
  return record === undefined || record === null ? undefined : String(record);
}

/** Sets the key record if the stored one is still `expected`; one statement, so atomic. */
export async function putRunKey(
  db: PgWriter,
  pipelineId: string,
  record: string,
  expected: string | undefined,
): Promise<boolean> {
  const once = { query: (query: Parameters<typeof writeOnPool>[1]) => writeOnPool(db.pool, query) };
  const { rowCount } = await db.call(() =>
    expected === undefined
      ? db.run(once, db.sql.createRunKey, [pipelineId, record])
      : db.run(once, db.sql.replaceRunKey, [pipelineId, record, expected]),
  );
  return rowCount === 1;
}
