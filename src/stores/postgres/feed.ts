/**
 * The PostgreSQL store's change feed reads and meta values. Cursors are `<feedId>:<position>`:
 * the random id of the schema's feed (so a cursor of another store or of a recreated schema is
 * refused) and a position of the `<prefix>changes` table.
 */
import { FeedTrimmedError, InvalidArgumentError, StoreOperationError } from "../../core/errors.js";
import { formatCursor } from "../../feed/cursor.js";
import type { ChangeType, StoreChange } from "../types.js";
import type { PgWriter } from "./put.js";
import { isoOf, type Row } from "./rows.js";

const CURSOR = /^([0-9a-f]{16}):(0|[1-9][0-9]{0,18})$/;

/** A parsed cursor; the position as a bigint, exact past 2^53. */
export interface FeedCursor {
  feedId: string;
  position: bigint;
}

/** Parses a cursor this store wrote; anything else is an `InvalidArgumentError`. */
export function parseCursor(cursor: string): FeedCursor {
  const match = CURSOR.exec(cursor);
  if (!match) {
    throw new InvalidArgumentError(
      `${JSON.stringify(cursor)} is not a cursor of the postgres store's change feed (expected <feed id>:<position>)`,
    );
  }
  return { feedId: match[1] as string, position: BigInt(match[2] as string) };
}

/** The feed's state row: its id, newest position and highest trimmed position. */
interface FeedState {
  feedId: string;
  last: bigint;
  trimmedThrough: bigint;
}

function stateOf(row: Row | undefined, operation: string): FeedState {
  // The row is created with the feed and never deleted by cairn: without it, the feed is lost.
  if (row === undefined || typeof row.feed_id !== "string")
    throw new StoreOperationError("postgres", operation, {
      cause: new Error("the change feed's state row (<prefix>feed) is missing"),
    });
  return {
    feedId: row.feed_id,
    last: BigInt(String(row.last)),
    trimmedThrough: BigInt(String(row.trimmed_through)),
  };
}

/** Reads the feed's state in one statement. */
export async function feedState(db: PgWriter, operation: string): Promise<FeedState> {
  const { rows } = await db.call(() => db.run(db.pool, db.sql.feed.feedState, []));
  return stateOf(rows[0], operation);
}

/** The cursor of the newest change, or `<feedId>:0` for an empty feed. */
export async function feedCursor(db: PgWriter): Promise<string> {
  const state = await feedState(db, "feedCursor");
  return formatCursor(state.feedId, state.last.toString());
}

/** Why the feed cannot continue after `since`, or undefined when it can. */
function gapReason(since: FeedCursor, state: FeedState): string | undefined {
  if (since.feedId !== state.feedId)
    return `the cursor belongs to another feed (feed ${since.feedId}; this store's is ${state.feedId}: another store, or its schema recreated)`;
  if (since.position < state.trimmedThrough)
    return `the changes after it were trimmed by the feed's retention (it keeps changes after position ${state.trimmedThrough})`;
  // Positions past the newest would be given to other changes later: following it would skip them.
  if (since.position > state.last)
    return `the cursor is ahead of the feed (its newest position is ${state.last}; the store's data was restored from an older copy?)`;
  return undefined;
}

/** Changes after `since` (oldest retained without it), oldest first, at most `limit`. */
export async function readChanges(
  db: PgWriter,
  since: string | undefined,
  limit: number,
): Promise<StoreChange[]> {
  const after = since === undefined ? undefined : parseCursor(since);
  const { rows } = await db.call(() =>
    db.run(db.pool, db.sql.feed.readChanges, [(after?.position ?? -1n).toString(), limit]),
  );
  const state = stateOf(rows[0], "readChanges");
  if (after && since !== undefined) {
    const reason = gapReason(after, state);
    if (reason !== undefined) throw new FeedTrimmedError("postgres", since, reason);
  }
  return rows.filter((row) => row.position !== null).map((row) => changeOf(state.feedId, row));
}

function changeOf(feedId: string, row: Row): StoreChange {
  const change: StoreChange = {
    cursor: formatCursor(feedId, String(row.position)),
    type: row.type as ChangeType,
    pipelineId: String(row.pipeline_id),
    pipelineName: String(row.pipeline_name),
    at: isoOf(row.at) ?? String(row.at),
  };
  if (row.checkpoint_id !== null) {
    change.checkpointId = String(row.checkpoint_id);
    change.sequence = Number(row.sequence);
  }
  return change;
}

/**
 * True when a change after `since` may exist: the feed moved, or `since` is not a position of
 * this feed (the caller's next read then reports why).
 */
export async function feedMoved(db: PgWriter, since: FeedCursor): Promise<boolean> {
  const state = await feedState(db, "waitForChanges");
  return state.feedId !== since.feedId || state.last !== since.position;
}

/** A meta value; undefined when unset. */
export async function getMeta(db: PgWriter, key: string): Promise<string | undefined> {
  const { rows } = await db.call(() => db.run(db.pool, db.sql.feed.getMeta, [key]));
  const value = rows[0]?.value;
  return typeof value === "string" ? value : undefined;
}

/** Sets a meta value: one upsert. */
export async function putMeta(db: PgWriter, key: string, value: string): Promise<void> {
  await db.call(() => db.run(db.writeOnce, db.sql.feed.putMeta, [key, value]));
}
