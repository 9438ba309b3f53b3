/**
 * The lease rules every store applies, kept in one place so stores differ only in how they make
 * the read-decide-write atomic (a transaction, a lock file, a Lua script).
 */
import { InvalidArgumentError, LeaseLostError } from "../core/errors.js";
import type { Lease, LeaseAttempt } from "./types.js";

/** Checks the arguments of `acquireLease` / `renewLease`. */
export function checkLeaseArgs(owner: string, ttlMs: number): void {
  if (typeof owner !== "string" || owner.length === 0 || owner.length > 256) {
    throw new InvalidArgumentError("lease owner must be a non-empty string of at most 256 characters");
  }
  if (!Number.isInteger(ttlMs) || ttlMs < 1)
    throw new InvalidArgumentError(`lease ttlMs must be a positive integer, got ${ttlMs}`);
}

/** Decides an acquire given the run's current lease (if any) and the time now. */
export function decideAcquire(
  pipelineId: string,
  current: Lease | undefined,
  owner: string,
  ttlMs: number,
  now: number,
): LeaseAttempt {
  const live = current !== undefined && current.expiresAt.getTime() > now;
  if (current && live && current.owner !== owner) return { acquired: false, holder: current };
  // The same owner renewing a live lease keeps its token; anyone else gets a new, larger one.
  const token = current ? (live && current.owner === owner ? current.token : current.token + 1) : 1;
  return { acquired: true, lease: { pipelineId, owner, token, expiresAt: new Date(now + ttlMs) } };
}

/** True when `current` is the very lease `lease` (same owner and token). */
export function isSameLease(current: Lease | undefined, lease: Lease): boolean {
  return current !== undefined && current.owner === lease.owner && current.token === lease.token;
}

/** Throws unless `current` is `fence`: the fencing check of a write. */
export function assertFence(current: Lease | undefined, fence: Lease): void {
  if (!isSameLease(current, fence)) throw leaseLostError(current, fence);
}

/** The error of a write refused because `fence` is no longer the run's lease. */
export function leaseLostError(current: Lease | undefined, fence: Lease): LeaseLostError {
  const detail = current
    ? `the run is now held by ${current.owner} with token ${current.token} (this runner has token ${fence.token})`
    : "the run has no lease any more";
  return new LeaseLostError(fence.pipelineId, detail);
}
