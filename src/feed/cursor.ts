/**
 * Feed cursors: `<feedId>:<position>`. The feed id is random and created with the store's feed,
 * so a cursor of another store, or of this store's data recreated, is told apart from a valid
 * one instead of silently reading from the wrong place.
 */
import { randomBytes } from "node:crypto";
import { FeedTrimmedError, InvalidArgumentError } from "../core/errors.js";

const CURSOR = /^([0-9a-f]{16}):([0-9][0-9-]{0,40})$/;

/** A new random feed id (16 hex characters). */
export function newFeedId(): string {
  return randomBytes(8).toString("hex");
}

/** The cursor of position `position` in feed `feedId`. */
export function formatCursor(feedId: string, position: string | number): string {
  return `${feedId}:${position}`;
}

/**
 * The position of `cursor` in feed `feedId`. `InvalidArgumentError` when it is no cursor at all;
 * `FeedTrimmedError` when it belongs to another feed.
 */
export function cursorPosition(store: string, feedId: string, cursor: string): string {
  const match = CURSOR.exec(cursor);
  if (!match) throw new InvalidArgumentError(`${JSON.stringify(cursor)} is not a ${store} feed cursor`);
  if (match[1] !== feedId)
    throw new FeedTrimmedError(
      store,
      cursor,
      "the cursor belongs to another feed (another store, or this one recreated)",
    );
  return match[2] ?? "";
}

/** An integer position of `cursor` (the sql, file and memory feeds count from 0). */
export function integerPosition(store: string, feedId: string, cursor: string): number {
  const text = cursorPosition(store, feedId, cursor);
  const position = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(position))
    throw new InvalidArgumentError(`${JSON.stringify(cursor)} is not a ${store} feed cursor`);
  return position;
}
