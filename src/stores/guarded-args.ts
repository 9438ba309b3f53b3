/** Argument checks of `GuardedStore` for leases, run queries and corrupt entries. */
import { InvalidArgumentError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import type { CorruptEntry, Lease, ListRunsQuery } from "./types.js";

/** A lease as a store method receives it: an object naming a run, a non-empty owner and a token. */
export function assertLease(lease: unknown): void {
  const l = lease as Lease | undefined;
  if (typeof l !== "object" || l === null) throw new InvalidArgumentError("lease must be an object");
  assertValidName("pipelineId", l.pipelineId);
  if (typeof l.owner !== "string" || l.owner.length === 0)
    throw new InvalidArgumentError("lease owner must be a non-empty string");
  if (!Number.isSafeInteger(l.token)) throw new InvalidArgumentError("lease token must be an integer");
}

/** A lease duration: a positive finite number of milliseconds. */
export function assertTtl(ttlMs: unknown): void {
  if (typeof ttlMs !== "number" || !Number.isFinite(ttlMs) || ttlMs <= 0)
    throw new InvalidArgumentError(`lease ttlMs must be a positive number, got ${String(ttlMs)}`);
}

/** A `listRuns` query: a pipeline name, and a limit, cursor and unfinished flag of the right shapes. */
export function assertRunsQuery(query: unknown): void {
  const q = query as ListRunsQuery | undefined;
  if (typeof q !== "object" || q === null) throw new InvalidArgumentError("listRuns query must be an object");
  assertValidName("pipelineName", q.pipelineName);
  if (q.limit !== undefined && (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > 1000))
    throw new InvalidArgumentError(
      `listRuns limit must be an integer from 1 to 1000, got ${String(q.limit)}`,
    );
  if (
    q.cursor !== undefined &&
    (typeof q.cursor !== "string" || q.cursor.length === 0 || q.cursor.length > 1024)
  )
    throw new InvalidArgumentError("listRuns cursor must be a cursor string from an earlier page");
  if (q.unfinished !== undefined && typeof q.unfinished !== "boolean")
    throw new InvalidArgumentError("listRuns unfinished must be a boolean");
}

/** A corrupt entry as listed: an object naming its run, its id if any, and its location. */
export function assertEntry(entry: unknown): void {
  const e = entry as CorruptEntry | undefined;
  if (typeof e !== "object" || e === null) throw new InvalidArgumentError("corrupt entry must be an object");
  assertValidName("pipelineId", e.pipelineId);
  if (e.checkpointId !== undefined) assertValidName("checkpointId", e.checkpointId);
  if (typeof e.location !== "string")
    throw new InvalidArgumentError("corrupt entry location must be a string");
}
