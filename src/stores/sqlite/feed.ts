/**
 * The SQLite store's change feed (`<prefix>changes`, `<prefix>feed`) and meta values
 * (`<prefix>meta`). Changes are inserted by the write transactions themselves, so a change is
 * in the feed exactly when its write committed; SQLite has one writer at a time, so position
 * order is commit order.
 */
import { FeedTrimmedError, StoreOperationError } from "../../core/errors.js";
import { formatCursor, integerPosition } from "../../feed/cursor.js";
import type { ChangeType, StoreChange } from "../types.js";
import type { SqliteDatabase } from "./database.js";
import type { TableNames } from "./migrations.js";

/** Trimming runs when a change's position is a multiple of this, not on every write. */
const TRIM_EVERY = 100;

type ChangeRow = {
  position: number;
  type: ChangeType;
  pipeline_id: string;
  pipeline_name: string;
  checkpoint_id: string | null;
  sequence: number | null;
  at: string;
};

/** Prepares the feed and meta statements of one store; after the migrations. */
export function prepareFeed(db: SqliteDatabase, tables: TableNames, retention: number) {
  const { changes: ch, feed: f, meta: m } = tables;
  const prepare = (sql: string) => db.prepare(sql).safeIntegers(false);
  const s = {
    insert: prepare(
      `INSERT INTO ${ch} (type, pipeline_id, pipeline_name, checkpoint_id, sequence, at) VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    trim: prepare(`DELETE FROM ${ch} WHERE position <= ?`),
    markTrimmed: prepare(`UPDATE ${f} SET trimmed_through = MAX(trimmed_through, ?)`),
    state: prepare(`SELECT feed_id, trimmed_through FROM ${f}`),
    newest: prepare(`SELECT MAX(position) AS position FROM ${ch}`),
    after: prepare(
      `SELECT position, type, pipeline_id, pipeline_name, checkpoint_id, sequence, at FROM ${ch}
       WHERE position > ? ORDER BY position LIMIT ?`,
    ),
    getMeta: prepare(`SELECT value FROM ${m} WHERE key = ?`),
    putMeta: prepare(
      `INSERT INTO ${m} (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    ),
  };

  const state = () => {
    const row = s.state.get() as { feed_id: unknown; trimmed_through: unknown } | undefined;
    if (row === undefined) {
      const cause = new Error(`${f} has no row: the feed's state was removed from the database`);
      throw new StoreOperationError("sqlite", "reading the change feed", { cause });
    }
    return { feedId: String(row.feed_id), trimmedThrough: Number(row.trimmed_through) };
  };
  // The newest position ever used: trimming keeps the newest `retention` (≥ 100) rows, so the
  // table's maximum is it, or the trimmed bound if a hand-edited table lost every row.
  const newestPosition = (trimmedThrough: number) => {
    const row = s.newest.get() as { position: number | null } | undefined;
    return Math.max(row?.position ?? 0, trimmedThrough);
  };

  /**
   * Where `since` continues from, checked against the feed: another feed's cursor, one whose
   * followers were trimmed, or one ahead of the feed (a database restored from an older copy)
   * cannot be continued. Run inside a read transaction with the read that follows.
   */
  const resume = (since: string | undefined) => {
    const { feedId, trimmedThrough } = state();
    if (since === undefined) return { feedId, position: 0 };
    const position = integerPosition("sqlite", feedId, since);
    if (position < trimmedThrough) {
      throw new FeedTrimmedError(
        "sqlite",
        since,
        `changes up to position ${trimmedThrough} were trimmed by the feed's retention (${retention} changes)`,
      );
    }
    if (position > newestPosition(trimmedThrough)) {
      throw new FeedTrimmedError(
        "sqlite",
        since,
        "the cursor is ahead of the feed (the database was restored from an older copy?)",
      );
    }
    return { feedId, position };
  };

  const read = db.transaction((since: string | undefined, limit: number): StoreChange[] => {
    const { feedId, position } = resume(since);
    return (s.after.all(position, limit) as ChangeRow[]).map((row) => {
      const change: StoreChange = {
        cursor: formatCursor(feedId, row.position),
        type: row.type,
        pipelineId: row.pipeline_id,
        pipelineName: row.pipeline_name,
        at: row.at,
      };
      if (row.checkpoint_id !== null) {
        change.checkpointId = row.checkpoint_id;
        change.sequence = Number(row.sequence);
      }
      return change;
    });
  });

  const cursor = db.transaction(() => {
    const { feedId, trimmedThrough } = state();
    return formatCursor(feedId, newestPosition(trimmedThrough));
  });

  // True also for a cursor that cannot be continued: the caller's readChanges then says why.
  const hasChangesAfter = db.transaction((since: string): boolean => {
    const { feedId, trimmedThrough } = state();
    try {
      return newestPosition(trimmedThrough) !== integerPosition("sqlite", feedId, since);
    } catch (error) {
      if (error instanceof FeedTrimmedError) return true;
      throw error;
    }
  });

  return {
    /**
     * Records one change; only inside a write transaction, which it joins. Every 100th position
     * trims what falls outside the retention, and records how far it trimmed.
     */
    record(
      type: ChangeType,
      pipelineId: string,
      pipelineName: string,
      checkpointId?: string,
      sequence?: number,
    ): void {
      const at = new Date().toISOString();
      const { lastInsertRowid } = s.insert.run(
        type,
        pipelineId,
        pipelineName,
        checkpointId ?? null,
        sequence ?? null,
        at,
      );
      const position = Number(lastInsertRowid);
      if (position % TRIM_EVERY === 0 && position > retention) {
        s.trim.run(position - retention);
        s.markTrimmed.run(position - retention);
      }
    },
    /** Changes after `since`, oldest first, at most `limit`. */
    read: (since: string | undefined, limit: number) => read(since, limit),
    /** The cursor of the newest change, or `<feedId>:0` for an empty feed. */
    cursor: () => cursor(),
    /** Whether a change after `since` may exist (true for a cursor `read` would refuse). */
    hasChangesAfter: (since: string) => hasChangesAfter(since),
    getMeta(key: string): string | undefined {
      const row = s.getMeta.get(key) as { value: unknown } | undefined;
      return row === undefined ? undefined : String(row.value);
    },
    putMeta(key: string, value: string): void {
      s.putMeta.run(key, value);
    },
  };
}

/** The prepared feed of one store. */
export type Feed = ReturnType<typeof prepareFeed>;

/** A feed for a schema without one: every method throws `error()`, a write's change included. */
export function missingFeed(error: () => Error): Feed {
  const fail = (): never => {
    throw error();
  };
  return { record: fail, read: fail, cursor: fail, hasChangesAfter: fail, getMeta: fail, putMeta: fail };
}
