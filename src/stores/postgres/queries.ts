/**
 * Every SQL statement of the PostgreSQL store, for one schema and table prefix. Each is a named
 * prepared statement: pg parses and plans it once per connection, then only binds values.
 */
import { type StoredMetadata, sha256 } from "../../core/record.js";
import { buildFeedStatements, feedCtes } from "./feed-sql.js";
import type { TableNames } from "./migrations.js";
import { buildKeyStatements } from "./run-keys.js";
import { buildRunStatements } from "./runs.js";

/** A statement's name and text; values are bound per call. */
export interface Statement {
  name: string;
  text: string;
}

// A Record over every key makes the compiler reject a metadata field this store forgets. The
// value is the SQL type each parameter is cast to (INSERT ... SELECT does not infer them).
const FIELD_TYPES: Record<keyof StoredMetadata, string> = {
  checkpoint_id: "text",
  pipeline_id: "text",
  pipeline_name: "text",
  stage_name: "text",
  stage_index: "integer",
  sequence: "integer",
  timestamp: "timestamptz",
  status: "text",
  checksum: "text",
  data_size: "bigint",
  error_message: "text",
  resume_count: "integer",
  parent_checkpoint_id: "text",
  parent_checksum: "text",
  format_version: "integer",
};

/** How a write checks the run's tip: not at all, that the run has none, or that it is an id. */
export type TipMode = "any" | "none" | "id";
const TIP_MODES: readonly TipMode[] = ["any", "none", "id"];

/** The metadata columns, in parameter order. */
export const COLUMNS = Object.keys(FIELD_TYPES) as (keyof StoredMetadata)[];

/** The statements for one schema and prefix. */
export function buildStatements(tables: TableNames, schema: string, prefix: string) {
  const { checkpoints: c, outputs: o, leases: l, runs: r } = tables;
  // Named per schema and prefix: stores on different tables may share a caller's pool, and a
  // connection refuses a second statement with the same name and other text.
  const tag = sha256(`${schema}.${prefix}`).slice(0, 12);
  const statement = (op: string, text: string): Statement => ({ name: `cairn_${tag}_${op}`, text });
  const columns = COLUMNS.join(", ");
  const params = COLUMNS.map((f, i) => `$${i + 1}::${FIELD_TYPES[f]}`).join(", ");
  const body = `$${COLUMNS.length + 1}::text`;
  const queryable = `$${COLUMNS.length + 2}::boolean`;
  const n = COLUMNS.length + 2;
  const param = (field: keyof StoredMetadata) => `$${COLUMNS.indexOf(field) + 1}::${FIELD_TYPES[field]}`;
  const runParam = param("pipeline_id");
  const complete = `(${param("stage_name")} = 'pipeline_complete')`;
  const newestOf = (run: string) =>
    `FROM ${c} WHERE pipeline_id = ${run} ORDER BY sequence DESC, timestamp DESC, checkpoint_id DESC LIMIT 1`;
  /**
   * A checkpoint with at most one new output as ONE statement: one round trip, atomic on its own.
   * Its first step locks and moves the run's row (`run`): the tip check is that row's head, which
   * every write moves under the row lock, so a concurrent writer blocks on the row and the check
   * is re-evaluated on the row it committed (a plain check of the checkpoints table would see
   * the statement's snapshot, taken before the wait). The table's newest in that snapshot must
   * agree too, so an entry written around the store (say a corrupt row) counts as the tip. When
   * either disagrees nothing is written (no row returned) and the store retries in a transaction
   * that reports the actual tip. Fenced, the lease row is locked and checked first. A duplicate
   * checkpoint id raises a unique violation, which undoes the whole statement. The feed's
   * change is recorded by the same statement (see feed-sql.ts), after the checkpoint's insert:
   * the main query runs first, and CTEs nothing reads run after it.
   * Parameters: metadata columns, body, queryable, [output hash, output body], [owner, token], [tip],
   * feed retention.
   */
  const putOne = (withOutput: boolean, fenced: boolean, tip: TipMode) => {
    let next = n;
    const out = withOutput ? { hash: `$${++next}::text`, body: `$${++next}::text` } : undefined;
    const fence = fenced ? { owner: `$${++next}::text`, token: `$${++next}::bigint` } : undefined;
    const expected = tip === "id" ? `$${++next}::text` : undefined;
    const retention = `$${++next}::bigint`;
    const ctes: string[] = [];
    const fenceHolds = fence ? "EXISTS (SELECT 1 FROM fence)" : "true";
    if (fence) {
      ctes.push(
        `fence AS (SELECT 1 FROM ${l} WHERE pipeline_id = ${runParam} AND owner = ${fence.owner} AND token = ${fence.token} FOR UPDATE)`,
      );
    }
    const head = `last_sequence = ${param("sequence")}, last_checkpoint_id = ${param("checkpoint_id")}, last_checksum = ${param("checksum")}`;
    if (expected) {
      ctes.push(
        `run AS (UPDATE ${r} SET finished = finished OR ${complete}, ${head}
         WHERE pipeline_id = ${runParam} AND last_checkpoint_id = ${expected}
           AND ${expected} = (SELECT checkpoint_id ${newestOf(runParam)}) AND ${fenceHolds}
         RETURNING pipeline_name)`,
      );
    } else {
      const empty =
        tip === "none" ? `AND NOT EXISTS (SELECT 1 FROM ${c} WHERE pipeline_id = ${runParam})` : "";
      ctes.push(
        `run AS (INSERT INTO ${r} AS cur (pipeline_id, pipeline_name, created_at, finished, last_sequence, last_checkpoint_id, last_checksum)
         SELECT ${runParam}, ${param("pipeline_name")}, ${param("timestamp")}, ${complete}, ${param("sequence")}, ${param("checkpoint_id")}, ${param("checksum")}
         WHERE ${fenceHolds} ${empty}
         ON CONFLICT (pipeline_id) DO UPDATE SET finished = cur.finished OR EXCLUDED.finished,
           last_sequence = EXCLUDED.last_sequence, last_checkpoint_id = EXCLUDED.last_checkpoint_id,
           last_checksum = EXCLUDED.last_checksum
         ${tip === "none" ? "WHERE cur.last_checkpoint_id IS NULL" : ""}
         RETURNING cur.pipeline_name)`,
      );
    }
    const gate = "WHERE EXISTS (SELECT 1 FROM run)";
    if (out) {
      ctes.push(
        `new_output AS (INSERT INTO ${o} (pipeline_id, hash, body, size)
         SELECT ${runParam}, ${out.hash}, ${out.body}, octet_length(${out.body}) ${gate}
         ON CONFLICT (pipeline_id, hash) DO NOTHING)`,
      );
    }
    // The run's name, as its row holds it (the name of its first checkpoint).
    ctes.push(
      `feed_src AS (SELECT 1::bigint AS ord, 'checkpoint'::text AS type, ${runParam} AS pipeline_id,
         run.pipeline_name, ${param("checkpoint_id")} AS checkpoint_id, ${param("sequence")} AS sequence FROM run)`,
      feedCtes(tables, retention),
    );
    return statement(
      `put_${withOutput ? "one" : "none"}${fenced ? "_fenced" : ""}_tip_${tip}`,
      `WITH ${ctes.join(", ")} INSERT INTO ${c} (${columns}, completed_stages, pending_stages, state_data, body)
       SELECT ${params}, j -> 'completed_stages', j -> 'pending_stages', j -> 'state_data', ${body}
       FROM (SELECT CASE WHEN ${queryable} THEN ${body}::jsonb END AS j) AS parsed ${gate}`,
    );
  };
  const putStatements = {} as Record<`${"one" | "none"}${"" | "_fenced"}_${TipMode}`, Statement>;
  for (const withOutput of [false, true])
    for (const fenced of [false, true])
      for (const tip of TIP_MODES)
        putStatements[`${withOutput ? "one" : "none"}${fenced ? "_fenced" : ""}_${tip}`] = putOne(
          withOutput,
          fenced,
          tip,
        );
  return {
    ...buildRunStatements(tables, statement),
    ...buildKeyStatements(tables, statement),
    feed: buildFeedStatements(tables, statement),
    put: putStatements,
    // In hash order, so two transactions inserting overlapping outputs take their row locks in
    // the same order and cannot deadlock.
    insertOutputs: statement(
      "insert_outputs",
      `INSERT INTO ${o} (pipeline_id, hash, body, size)
       SELECT $1::text, u.hash, u.body, octet_length(u.body) FROM unnest($2::text[], $3::text[]) AS u(hash, body)
       ORDER BY u.hash
       ON CONFLICT (pipeline_id, hash) DO NOTHING`,
    ),
    // One output (the common case: the stage just completed) as plain parameters: pg sends a text
    // array as an escaped array literal the server must parse again, 2× slower for 1 MB bodies.
    insertOutput: statement(
      "insert_output",
      `INSERT INTO ${o} (pipeline_id, hash, body, size)
       VALUES ($1::text, $2::text, $3::text, octet_length($3::text))
       ON CONFLICT (pipeline_id, hash) DO NOTHING`,
    ),
    // The body is parsed once into JSONB, and only when it holds nothing JSONB refuses.
    insertCheckpoint: statement(
      "insert_checkpoint",
      `INSERT INTO ${c} (${columns}, completed_stages, pending_stages, state_data, body)
       SELECT ${params}, j -> 'completed_stages', j -> 'pending_stages', j -> 'state_data', ${body}
       FROM (SELECT CASE WHEN ${queryable} THEN ${body}::jsonb END AS j) AS parsed
       ON CONFLICT (checkpoint_id) DO NOTHING`,
    ),
    selectCheckpoint: statement(
      "select_checkpoint",
      `SELECT ${columns}, body FROM ${c} WHERE checkpoint_id = $1::text`,
    ),
    selectLatest: statement(
      "select_latest",
      `SELECT ${columns}, body FROM ${c} WHERE pipeline_id = $1::text
       ORDER BY sequence DESC, timestamp DESC, checkpoint_id DESC LIMIT 1`,
    ),
    selectRun: statement(
      "select_run",
      `SELECT ${columns} FROM ${c} WHERE pipeline_id = $1::text
       ORDER BY sequence, timestamp, checkpoint_id`,
    ),
    selectRunIds: statement(
      "select_run_ids",
      `SELECT pipeline_id FROM ${c} UNION SELECT pipeline_id FROM ${o}`,
    ),
    // Every column, for a backup of a row that does not parse; FOR UPDATE holds it while it is removed.
    selectRawRow: statement(
      "select_raw_row",
      `SELECT * FROM ${c} WHERE pipeline_id = $1::text AND checkpoint_id = $2::text`,
    ),
    lockRawRow: statement(
      "lock_raw_row",
      `SELECT * FROM ${c} WHERE pipeline_id = $1::text AND checkpoint_id = $2::text FOR UPDATE`,
    ),
    deleteRow: statement(
      "delete_row",
      `DELETE FROM ${c} WHERE pipeline_id = $1::text AND checkpoint_id = $2::text`,
    ),
    selectOutputs: statement(
      "select_outputs",
      `SELECT hash, body FROM ${o} WHERE pipeline_id = $1::text AND hash = ANY ($2::text[])`,
    ),
    selectOutputHashes: statement(
      "select_output_hashes",
      `SELECT hash FROM ${o} WHERE pipeline_id = $1::text ORDER BY hash`,
    ),
    deleteOutputs: statement(
      "delete_outputs",
      `DELETE FROM ${o} WHERE pipeline_id = $1::text AND hash = ANY ($2::text[])`,
    ),
    deleteRunCheckpoints: statement(
      "delete_run_checkpoints",
      `DELETE FROM ${c} WHERE pipeline_id = $1::text`,
    ),
    deleteRunOutputs: statement("delete_run_outputs", `DELETE FROM ${o} WHERE pipeline_id = $1::text`),
    // A placeholder row (no owner, token 0) gives the acquiring transaction a row to lock even
    // for a run never leased; it reads as "no lease".
    ensureLeaseRow: statement(
      "ensure_lease_row",
      `INSERT INTO ${l} (pipeline_id, owner, token, expires_at) VALUES ($1::text, '', 0, 'epoch')
       ON CONFLICT (pipeline_id) DO NOTHING`,
    ),
    lockLease: statement(
      "lock_lease",
      `SELECT owner, token, expires_at FROM ${l} WHERE pipeline_id = $1::text FOR UPDATE`,
    ),
    // The server's clock, not this machine's: runners on several machines must agree on expiry.
    // clock_timestamp(), not now(): now() is the transaction start, before any wait for the lock.
    // Read-only: a run never leased has no row, and this must not create one.
    liveLease: statement(
      "live_lease",
      `SELECT owner, token, expires_at FROM ${l}
       WHERE pipeline_id = $1::text AND owner <> '' AND expires_at > clock_timestamp()`,
    ),
    serverNow: statement(
      "server_now",
      "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now_ms",
    ),
    writeLease: statement(
      "write_lease",
      `UPDATE ${l} SET owner = $2::text, token = $3::bigint, expires_at = $4::timestamptz
       WHERE pipeline_id = $1::text`,
    ),
    renewLease: statement(
      "renew_lease",
      `UPDATE ${l}
       SET expires_at = date_trunc('milliseconds', clock_timestamp()) + $4::float8 * interval '1 millisecond'
       WHERE pipeline_id = $1::text AND owner = $2::text AND token = $3::bigint
       RETURNING expires_at`,
    ),
    releaseLease: statement(
      "release_lease",
      `UPDATE ${l} SET expires_at = 'epoch'
       WHERE pipeline_id = $1::text AND owner = $2::text AND token = $3::bigint`,
    ),
  };
}

/** The statements of one store. */
export type Statements = ReturnType<typeof buildStatements>;
