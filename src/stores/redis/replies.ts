/**
 * What the client and the scripts answer, mapped to cairn's values and errors: driver failures
 * to `StoreUnavailableError` or `StoreOperationError`, script status replies to the checkpoint
 * and lease errors, lease entries and `acquire` replies to leases.
 */
import {
  CairnError,
  CheckpointConflictError,
  CheckpointCorruptError,
  CheckpointNotFoundError,
  LeaseLostError,
  StoreOperationError,
  StoreUnavailableError,
  TipMovedError,
} from "../../core/errors.js";
import { assertFence } from "../lease.js";
import type { Lease, LeaseAttempt } from "../types.js";
import { isUnavailableError } from "./connection.js";

/** The store operations that change data: only these can leave a write maybe applied. */
const WRITES: ReadonlySet<string> = new Set([
  "putCheckpoint",
  "acquireLease",
  "renewLease",
  "releaseLease",
  "updateCheckpoint",
  "deleteCheckpoints",
  "deleteOutputs",
  "deleteRun",
  "removeCorruptEntry",
  "rebuildIndexes",
  "putMeta",
]);

/**
 * The error to throw for a failed client call: cairn's own errors as they are, connection
 * failures as unavailable (with the client's last `error` event when it says more), the rest
 * as a failed operation.
 */
export function storeError(
  operation: string,
  location: string,
  lastError: Error | undefined,
  error: unknown,
): unknown {
  if (error instanceof CairnError) return error;
  if (isUnavailableError(error)) {
    const name = error instanceof Error ? error.name : "";
    // Sent but unanswered when the connection dropped: the server may have run it. (A command
    // that could not be sent fails with another error: the offline queue is off.)
    const unanswered = name === "MaxRetriesPerRequestError" || name === "AbortError";
    const maybeCommitted = unanswered && WRITES.has(operation);
    const message = maybeCommitted
      ? "the connection dropped after the write was sent and before the server answered; the write may have been applied"
      : unanswered
        ? "the connection dropped before the server answered"
        : error instanceof Error
          ? error.message
          : String(error);
    const last = lastError && lastError !== error ? ` (${lastError.message})` : "";
    return new StoreUnavailableError("redis", `${operation} on ${location}: ${message}${last}`, {
      cause: error,
      maybeCommitted,
    });
  }
  return new StoreOperationError("redis", operation, { cause: error });
}

/** The `put` script's reply: `ok`, `conflict`, `lease_lost` with the lease entry, `tip_moved` with the newest id, or a foreign key's type. */
export type PutReply = [string, string | null, string?];

/** Throws what a `put` reply other than `ok` means; `leaseKey` names the lease entry in errors. */
export function checkPutReply(
  reply: PutReply,
  pipelineId: string,
  checkpointId: string,
  leaseKey: string,
  fence?: Lease,
  expectedTip?: string | null,
): void {
  if (reply[0] === "ok") return;
  if (reply[0] === "conflict") throw new CheckpointConflictError(checkpointId);
  if (reply[0] === "tip_moved" && expectedTip !== undefined) {
    throw new TipMovedError(checkpointId, pipelineId, expectedTip, reply[1] || null);
  }
  if (reply[0] === "lease_lost" && fence) {
    const current = leaseFrom(pipelineId, reply[1]);
    if (reply[1] && !current) {
      throw new LeaseLostError(pipelineId, `the lease entry at ${leaseKey} is unreadable`);
    }
    assertFence(current, fence);
  }
  throw new StoreOperationError("redis", "putCheckpoint", {
    cause: new Error(`key ${reply[1]} holds a ${reply[2]}, which cairn did not write`),
  });
}

/** The lease a lease entry's JSON describes; undefined when absent or unreadable. */
function leaseFrom(pipelineId: string, json: string | null | undefined): Lease | undefined {
  if (!json) return undefined;
  try {
    const v = JSON.parse(json) as { owner?: unknown; token?: unknown; expiresAt?: unknown };
    if (typeof v.owner !== "string" || typeof v.token !== "number") return undefined;
    return { pipelineId, owner: v.owner, token: v.token, expiresAt: new Date(Number(v.expiresAt)) };
  } catch {
    return undefined;
  }
}

/** The `acquire` script's reply: `[1, token, expiresAt]`, or `[0, holder, token, expiresAt]`. */
export function leaseAttemptFrom(
  pipelineId: string,
  owner: string,
  reply: [number, ...(string | number)[]],
): LeaseAttempt {
  if (reply[0] === 1) {
    const [, token, expiresAt] = reply as [number, number, number];
    return { acquired: true, lease: { pipelineId, owner, token, expiresAt: new Date(expiresAt) } };
  }
  const [, holder, token, expiresAt] = reply as [number, string, number, number];
  return { acquired: false, holder: { pipelineId, owner: holder, token, expiresAt: new Date(expiresAt) } };
}

/** A `lease:{id}` value as a lease; undefined when unreadable (acquiring replaces it like an absent one). */
export function leaseFromValue(pipelineId: string, raw: string): Lease | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const { owner, token, expiresAt } = (value ?? {}) as Record<string, unknown>;
  if (typeof owner !== "string" || typeof token !== "number") return undefined;
  return { pipelineId, owner, token, expiresAt: new Date(Number(expiresAt)) };
}

/** Throws what an `update` reply of `missing` or `corrupt` means; `key` names the checkpoint's key. */
export function checkUpdateReply(reply: [string, string?], checkpointId: string, key: string): void {
  if (reply[0] === "missing") throw new CheckpointNotFoundError(checkpointId);
  if (reply[0] === "corrupt") throw new CheckpointCorruptError(checkpointId, `${key}: ${reply[1]}`);
}
