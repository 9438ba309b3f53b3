/**
 * A conditional put (create-only or compare-and-swap) whose answer is always exact. Azure
 * answers a failed condition with 412 `ConditionNotMet`, or 409 `BlobAlreadyExists` for a
 * create-only put on an existing blob; both mean "nothing was written". Any answer that leaves
 * the outcome unknown (a 5xx, a reset or lost reply) is settled by reading the blob back: the
 * write succeeded exactly when the blob now holds our bytes; when it holds something else
 * that still satisfies the condition (absent, or the expected ETag), nothing of ours landed and
 * the put is tried again. Retries are ours, not the SDK's (see sdk.ts for why).
 */
import { StoreOperationError, StoreUnavailableError } from "../../core/errors.js";
import type { StoredObject, WriteCondition, WriteResult } from "../object/objects.js";
import { codeOf, isRefused, isUnknownOutcome, STRATEGY, statusOf, storeError } from "./errors.js";
import type { Deadline } from "./sdk.js";

/** Tries of one conditional put before giving up on a server that keeps failing. */
const MAX_TRIES = 5;

/** What the put needs from the adapter. */
export interface ConditionalPutContext {
  /** One upload with no SDK retries; throws the SDK's error. */
  upload(condition: WriteCondition, signal: AbortSignal): Promise<{ etag: string; serverTime: Date }>;
  /** Reads the blob back (through the retrying client); undefined when absent. */
  read(deadline: Deadline): Promise<StoredObject | undefined>;
  /** For messages. */
  where: string;
}

/** Azure's ETags are quoted; a caller may hold one without the quotes (from another tool). */
export function quoteEtag(etag: string): string {
  return etag.startsWith('"') || etag.startsWith('W/"') ? etag : `"${etag}"`;
}

const bare = (etag: string) => etag.replace(/^W\//, "").replace(/"/g, "");

/** True when `error` is the server refusing the write because the condition did not hold. */
export function isConditionFailure(error: unknown, condition: WriteCondition): boolean {
  const status = statusOf(error);
  const code = codeOf(error);
  // A 412 about a lease (LeaseIdMissing...) is not a lost race: the blob is leased by someone.
  if (status === 412) return code === undefined || code === "ConditionNotMet";
  if ("ifNoneMatch" in condition) return status === 409 && code === "BlobAlreadyExists";
  return status === 404 && code === "BlobNotFound";
}

/** True when `current` (the blob as read now) still satisfies `condition`. */
function conditionHolds(condition: WriteCondition, current: StoredObject | undefined): boolean {
  if ("ifNoneMatch" in condition) return current === undefined;
  return current !== undefined && bare(current.etag) === bare(condition.ifMatch);
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the put; see the module comment. */
export async function conditionalPut(
  context: ConditionalPutContext,
  body: Buffer,
  condition: WriteCondition,
  deadline: Deadline,
): Promise<WriteResult> {
  const sent: WriteCondition =
    "ifMatch" in condition ? { ifMatch: quoteEtag(condition.ifMatch) } : { ifNoneMatch: "*" };
  // Set once a try may have been applied: a later condition failure may then be our own write.
  let maybeApplied = false;
  let lastError: unknown;
  for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
    try {
      const written = await context.upload(sent, deadline.signal);
      return { ok: true, ...written };
    } catch (error) {
      lastError = error;
      if (isConditionFailure(error, sent)) {
        if (!maybeApplied) return { ok: false };
      } else if (isRefused(error)) {
        // Never reached the server: retry while time is left, nothing to settle.
        if (attempt === MAX_TRIES || deadline.remaining() < 50) {
          throw storeError("put", error, context.where, { earlierTryMayHaveApplied: maybeApplied });
        }
        await pause(backoff(attempt));
        continue;
      } else if (isUnknownOutcome(error)) {
        maybeApplied = true;
        if (deadline.signal.aborted) {
          throw storeError("put", error, context.where, { maybeCommitted: true, timeoutMs: deadline.ms });
        }
      } else {
        throw storeError("put", error, context.where, { earlierTryMayHaveApplied: maybeApplied });
      }
    }
    // Settle by reading back.
    let current: StoredObject | undefined;
    try {
      current = await context.read(deadline);
    } catch (error) {
      // The read's own failure (often a refused connection) says nothing about the put: it
      // stays maybe committed, so the caller settles it instead of writing it a second time.
      if (error instanceof StoreUnavailableError) {
        throw new StoreUnavailableError(
          STRATEGY,
          `${context.where}: put: outcome unknown, and reading it back failed (${error.message})`,
          { cause: error, maybeCommitted: true },
        );
      }
      throw storeError("put (reading back a write of unknown outcome)", error, context.where, {
        maybeCommitted: true,
        timeoutMs: deadline.ms,
      });
    }
    if (current?.body.equals(body)) {
      return { ok: true, etag: current.etag, serverTime: current.serverTime };
    }
    if (!conditionHolds(sent, current)) return { ok: false };
    // Nothing of ours is there and the condition still holds: try again. `maybeApplied` stays
    // set: a try whose reply was lost may still reach the server, and then fail ours.
    await pause(backoff(attempt));
  }
  throw new StoreOperationError(STRATEGY, `put (${context.where}): ${MAX_TRIES} tries failed`, {
    cause: lastError,
  });
}

function backoff(attempt: number): number {
  return Math.min(1000, 25 * 2 ** attempt) * (0.5 + Math.random() / 2);
}
