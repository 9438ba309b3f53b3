/**
 * The SQLite store's runs-by-name index (`<prefix>runs`, kept by the write transactions): the
 * `listRuns` pages, keyset-paged in the order of the table's indexes, and the rebuild of a run's
 * row from its checkpoints.
 */
import { DEFAULT_RUNS_LIMIT, decodeRunCursor, pageOf } from "../run-cursor.js";
import type { ListRunsQuery, RunEntry, RunPage } from "../types.js";
import { recomputeRuns, type TableNames } from "./migrations.js";
import type { SqliteDatabase, SqliteStatement } from "./sqlite-store.js";

type RunRow = { pipeline_id: unknown; pipeline_name: unknown; created_at: unknown; finished: unknown };

/** Prepares the `listRuns` queries: all runs or unfinished ones, first page or after a cursor. */
export function prepareRunQueries(db: SqliteDatabase, tables: TableNames) {
  const r = tables.runs;
  // `finished = 0` spelled as in the partial index's WHERE, so SQLite can use that index.
  const query = (unfinished: boolean, after: boolean) =>
    db
      .prepare(
        `SELECT pipeline_id, pipeline_name, created_at, finished FROM ${r}
         WHERE pipeline_name = ?${unfinished ? " AND finished = 0" : ""}
         ${after ? "AND (created_at, pipeline_id) < (?, ?)" : ""}
         ORDER BY created_at DESC, pipeline_id DESC LIMIT ?`,
      )
      .safeIntegers(false);
  return {
    all: query(false, false),
    allAfter: query(false, true),
    unfinished: query(true, false),
    unfinishedAfter: query(true, true),
    rebuild: db.prepare(recomputeRuns(tables, "WHERE pipeline_id = ?")),
    drop: db.prepare(`DELETE FROM ${r} WHERE pipeline_id = ?`),
  };
}

/** The prepared runs queries of one store. */
export type RunQueries = ReturnType<typeof prepareRunQueries>;

/** One page of `listRuns`, read through one of the runs indexes. */
export function listRunsPage(q: RunQueries, query: ListRunsQuery): RunPage {
  const limit = query.limit ?? DEFAULT_RUNS_LIMIT;
  const after = query.cursor === undefined ? undefined : decodeRunCursor(query.cursor);
  let statement: SqliteStatement;
  if (query.unfinished) statement = after ? q.unfinishedAfter : q.unfinished;
  else statement = after ? q.allAfter : q.all;
  const params = after ? [query.pipelineName, ...after, limit + 1] : [query.pipelineName, limit + 1];
  const runs = (statement.all(...params) as RunRow[]).map(
    (row): RunEntry => ({
      pipelineId: String(row.pipeline_id),
      pipelineName: String(row.pipeline_name),
      createdAt: String(row.created_at),
      finished: row.finished === 1,
    }),
  );
  return pageOf(runs, limit);
}

/** Recomputes a run's row from its checkpoints (no checkpoints: no row), in one transaction. */
export function rebuildRun(db: SqliteDatabase, q: RunQueries, pipelineId: string): string {
  return db
    .transaction(() => {
      q.drop.run(pipelineId);
      const rebuilt = q.rebuild.run(pipelineId).changes > 0;
      return rebuilt
        ? `runs index: recomputed the entry of ${pipelineId} from its checkpoints`
        : `runs index: ${pipelineId} has no checkpoints, so no entry`;
    })
    .immediate();
}
