/**
 * SQL of the PostgreSQL store's change feed: the CTEs every writing statement appends to record
 * its changes in the same statement (so the same transaction), the generic statement for the
 * transactional paths, the reads, and the meta values.
 *
 * Positions come from `UPDATE <feed> SET last = last + n RETURNING last`. The row lock it takes is
 * held until the writer commits, so the next writer gets its positions only after this one is
 * visible: positions are in commit order and a reader never sees n+1 before n. Each writer takes
 * that lock as its last step, so it is held for the commit only, and never before a lock on a run
 * or a checkpoint (no deadlock: the feed row is always the last lock taken).
 */
import type { TableNames } from "./migrations.js";
import type { Statement } from "./queries.js";

/** Retention trims when a write moves the counter past a multiple of this. */
export const TRIM_EVERY = 100;

/**
 * CTEs (without the leading `WITH`) that give feed positions to the rows of CTE `feed_src`
 * (columns ord, type, pipeline_id, pipeline_name, checkpoint_id, sequence; ord from 1), insert
 * them, and trim what retention (parameter `retention`, a bigint) lets go. No source row: the
 * counter does not move. A missing feed row makes the insert fail (NULL position), never skip.
 */
export function feedCtes(t: TableNames, retention: string): string {
  return `feed_pos AS (
      UPDATE ${t.feed} AS f SET last = f.last + k.n,
        trimmed_through = CASE WHEN (f.last + k.n) / ${TRIM_EVERY} > f.last / ${TRIM_EVERY}
          THEN GREATEST(f.trimmed_through, f.last + k.n - ${retention}) ELSE f.trimmed_through END
      FROM (SELECT count(*) AS n FROM feed_src) AS k WHERE k.n > 0
      RETURNING f.last, k.n, f.last / ${TRIM_EVERY} > (f.last - k.n) / ${TRIM_EVERY} AS trims, f.trimmed_through),
    feed_rows AS (
      INSERT INTO ${t.changes} (position, type, pipeline_id, pipeline_name, checkpoint_id, sequence)
      SELECT p.last - p.n + s.ord, s.type, s.pipeline_id, s.pipeline_name, s.checkpoint_id, s.sequence
      FROM feed_src AS s LEFT JOIN feed_pos AS p ON true),
    feed_trim AS (
      DELETE FROM ${t.changes} WHERE position <= (SELECT trimmed_through FROM feed_pos WHERE trims))`;
}

/** The feed and meta statements, named by `statement` as the store's others. */
export function buildFeedStatements(t: TableNames, statement: (op: string, text: string) => Statement) {
  const { checkpoints: c, runs: r } = t;
  return {
    /**
     * Changes given as arrays (type, run, name or NULL for the run's row's, checkpoint id,
     * sequence), in order; the last statement of a writing transaction.
     */
    recordChanges: statement(
      "record_changes",
      `WITH feed_src AS (
         SELECT u.ord, u.type, u.pipeline_id, COALESCE(u.pipeline_name, r.pipeline_name, '') AS pipeline_name,
           u.checkpoint_id, u.sequence
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::integer[])
           WITH ORDINALITY AS u(type, pipeline_id, pipeline_name, checkpoint_id, sequence, ord)
         LEFT JOIN ${r} AS r ON r.pipeline_id = u.pipeline_id),
       ${feedCtes(t, "$6::bigint")}
       SELECT 1`,
    ),
    // One statement whatever the patch: a flag per field says whether to write it.
    updateCheckpoint: statement(
      "update_checkpoint_feed",
      `WITH updated AS (
         UPDATE ${c} SET
           status = CASE WHEN $2::boolean THEN $3::text ELSE status END,
           error_message = CASE WHEN $4::boolean THEN $5::text ELSE error_message END,
           resume_count = CASE WHEN $6::boolean THEN $7::integer ELSE resume_count END
         WHERE checkpoint_id = $1::text
         RETURNING pipeline_id, pipeline_name, checkpoint_id, sequence),
       feed_src AS (
         SELECT 1::bigint AS ord, 'status'::text AS type, u.pipeline_id,
           COALESCE(r.pipeline_name, u.pipeline_name) AS pipeline_name, u.checkpoint_id, u.sequence
         FROM updated AS u LEFT JOIN ${r} AS r ON r.pipeline_id = u.pipeline_id),
       ${feedCtes(t, "$8::bigint")}
       SELECT 1 FROM updated`,
    ),
    // One `deleted` per row, oldest first.
    deleteCheckpoints: statement(
      "delete_checkpoints_feed",
      `WITH deleted AS (
         DELETE FROM ${c} WHERE pipeline_id = $1::text AND checkpoint_id = ANY ($2::text[])
         RETURNING pipeline_id, pipeline_name, checkpoint_id, sequence),
       feed_src AS (
         SELECT row_number() OVER (ORDER BY d.sequence, d.checkpoint_id) AS ord, 'deleted'::text AS type,
           d.pipeline_id, COALESCE(r.pipeline_name, d.pipeline_name) AS pipeline_name, d.checkpoint_id, d.sequence
         FROM deleted AS d LEFT JOIN ${r} AS r ON r.pipeline_id = d.pipeline_id),
       ${feedCtes(t, "$3::bigint")}
       SELECT sequence FROM deleted`,
    ),
    // One statement: one snapshot of the feed's state and its rows.
    readChanges: statement(
      "read_changes",
      `SELECT f.feed_id, f.last, f.trimmed_through, x.position, x.type, x.pipeline_id, x.pipeline_name,
         x.checkpoint_id, x.sequence, x.at
       FROM ${t.feed} AS f LEFT JOIN LATERAL (
         SELECT * FROM ${t.changes} WHERE position > GREATEST($1::bigint, f.trimmed_through)
         ORDER BY position LIMIT $2::integer) AS x ON true
       ORDER BY x.position`,
    ),
    feedState: statement("feed_state", `SELECT feed_id, last, trimmed_through FROM ${t.feed}`),
    getMeta: statement("get_meta", `SELECT value FROM ${t.meta} WHERE key = $1::text`),
    putMeta: statement(
      "put_meta",
      `INSERT INTO ${t.meta} (key, value) VALUES ($1::text, $2::text)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
    ),
  };
}

/** One change for `recordChanges`; `pipelineName` null takes the run's row's. */
export interface ChangeRow {
  type: "checkpoint" | "status" | "deleted";
  pipelineId: string;
  pipelineName: string | null;
  checkpointId: string | null;
  sequence: number | null;
}

/** The parameters of `recordChanges` for `changes`, with the feed's retention. */
export function changeParams(changes: readonly ChangeRow[], retention: number): unknown[] {
  return [
    changes.map((x) => x.type),
    changes.map((x) => x.pipelineId),
    changes.map((x) => x.pipelineName),
    changes.map((x) => x.checkpointId),
    changes.map((x) => x.sequence),
    retention,
  ];
}
