/**
 * The PostgreSQL store's `<prefix>runs` table, the runs-by-name index and each run's head
 * (newest checkpoint): the transactional write path's lock and check, the head's refresh after
 * deletions, the rebuild of a run's row, and the `listRuns` pages.
 */
import { InvalidArgumentError } from "../../core/errors.js";
import { DEFAULT_RUNS_LIMIT, decodeRunCursor, pageOf } from "../run-cursor.js";
import type { ListRunsQuery, RunEntry, RunPage } from "../types.js";
import { recomputeRuns, type TableNames } from "./migrations.js";
import type { PgWriter } from "./put.js";
import type { Statement } from "./queries.js";
import { isoOf } from "./rows.js";

/** The runs statements, named by `statement` as the store's others. */
export function buildRunStatements(tables: TableNames, statement: (op: string, text: string) => Statement) {
  const { checkpoints: c, runs: r } = tables;
  const newest = `FROM ${c} WHERE pipeline_id = $1::text ORDER BY sequence DESC, timestamp DESC, checkpoint_id DESC LIMIT 1`;
  // `NOT finished` spelled as in the partial index's WHERE, so the planner can use that index.
  const list = (unfinished: boolean, after: boolean) =>
    statement(
      `list_runs${unfinished ? "_unfinished" : ""}${after ? "_after" : ""}`,
      `SELECT pipeline_id, pipeline_name, created_at, finished FROM ${r}
       WHERE pipeline_name = $1::text${unfinished ? " AND NOT finished" : ""}
       ${after ? "AND (created_at, pipeline_id) < ($3::timestamptz, $4::text)" : ""}
       ORDER BY created_at DESC, pipeline_id DESC LIMIT $2::integer`,
    );
  return {
    // The row a transactional write locks; created (without a head) by the run's first write.
    ensureRun: statement(
      "ensure_run",
      `INSERT INTO ${r} (pipeline_id, pipeline_name, created_at, finished) VALUES ($1::text, $2::text, $3::timestamptz, false)
       ON CONFLICT (pipeline_id) DO NOTHING`,
    ),
    lockRun: statement("lock_run", `SELECT 1 FROM ${r} WHERE pipeline_id = $1::text FOR UPDATE`),
    // Run after lockRun, as its own statement: its snapshot then includes every write before ours.
    selectNewestId: statement("select_newest_id", `SELECT checkpoint_id ${newest}`),
    refreshRun: statement(
      "refresh_run",
      `UPDATE ${r} SET (last_sequence, last_checkpoint_id, last_checksum) = (SELECT sequence, checkpoint_id, checksum ${newest}),
       finished = finished OR $2::boolean WHERE pipeline_id = $1::text`,
    ),
    // Retention's tombstone: the highest sequence it removed, kept across cleanups.
    markPruned: statement(
      "mark_pruned",
      `UPDATE ${r} SET pruned_through = GREATEST(COALESCE(pruned_through, -1), $2::integer), pruned_at = $3::text
       WHERE pipeline_id = $1::text`,
    ),
    selectHead: statement(
      "select_head",
      `SELECT last_sequence, last_checkpoint_id, last_checksum, pruned_through, pruned_at FROM ${r}
       WHERE pipeline_id = $1::text`,
    ),
    // Returns the name, for the feed's `deleted` change.
    deleteRunEntry: statement(
      "delete_run_entry",
      `DELETE FROM ${r} WHERE pipeline_id = $1::text RETURNING pipeline_name`,
    ),
    rebuildRun: statement("rebuild_run", recomputeRuns(tables, "WHERE pipeline_id = $1::text")),
    listRuns: list(false, false),
    listRunsAfter: list(false, true),
    listUnfinished: list(true, false),
    listUnfinishedAfter: list(true, true),
  };
}

/** The runs statements of one store. */
export type RunStatements = ReturnType<typeof buildRunStatements>;

/** One page of `listRuns`: one range read of the runs table's (partial) index. */
export async function listRunsPage(db: PgWriter, query: ListRunsQuery): Promise<RunPage> {
  const limit = query.limit ?? DEFAULT_RUNS_LIMIT;
  const after = query.cursor === undefined ? undefined : decodeRunCursor(query.cursor);
  if (after && isoOf(after[0]) !== after[0])
    throw new InvalidArgumentError("listRuns cursor is not a cursor from an earlier page");
  const { sql } = db;
  let statement: Statement;
  if (query.unfinished) statement = after ? sql.listUnfinishedAfter : sql.listUnfinished;
  else statement = after ? sql.listRunsAfter : sql.listRuns;
  const { rows } = await db.call(() =>
    db.run(db.pool, statement, [query.pipelineName, limit + 1, ...(after ?? [])]),
  );
  const runs = rows.map(
    (row): RunEntry => ({
      pipelineId: String(row.pipeline_id),
      pipelineName: String(row.pipeline_name),
      createdAt: isoOf(row.created_at) ?? String(row.created_at),
      finished: row.finished === true,
    }),
  );
  return pageOf(runs, limit);
}
