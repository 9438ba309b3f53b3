/**
 * The `listRuns` cursor of the SQL stores: the sort key of a page's last run (creation time, run
 * id), base64url-encoded JSON. The next page starts strictly after it (keyset pagination), so runs
 * created while paging neither repeat nor shift entries.
 */
import { InvalidArgumentError } from "../core/errors.js";
import type { RunEntry } from "./types.js";

/** The default page size of `listRuns`. */
export const DEFAULT_RUNS_LIMIT = 100;

/** The position after `last`, as an opaque cursor. */
export function encodeRunCursor(last: RunEntry): string {
  return Buffer.from(JSON.stringify([last.createdAt, last.pipelineId]), "utf8").toString("base64url");
}

/** The `[createdAt, pipelineId]` a cursor holds; `InvalidArgumentError` when it is not one of ours. */
export function decodeRunCursor(cursor: string): [createdAt: string, pipelineId: string] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch (error) {
    throw new InvalidArgumentError("listRuns cursor is not a cursor from an earlier page", { cause: error });
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 2 ||
    typeof parsed[0] !== "string" ||
    typeof parsed[1] !== "string"
  ) {
    throw new InvalidArgumentError("listRuns cursor is not a cursor from an earlier page");
  }
  return [parsed[0], parsed[1]];
}

/**
 * A page from rows fetched with one row more than `limit`: that extra row only tells that another
 * page follows, whose cursor is the last run shown.
 */
export function pageOf(runs: RunEntry[], limit: number): { runs: RunEntry[]; nextCursor?: string } {
  if (runs.length <= limit) return { runs };
  const shown = runs.slice(0, limit);
  return { runs: shown, nextCursor: encodeRunCursor(shown[shown.length - 1] as RunEntry) };
}
