/**
 * The lease a cleanup holds on a run while it deletes from it. A runner executing the run holds
 * the lease, so a cleanup that cannot take it leaves the run alone; once the cleanup holds it,
 * a runner that comes back (its own lease expired) is fenced: its next write is refused with
 * `CAIRN_LEASE_LOST` instead of landing in a run being deleted.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { CheckpointStore, Lease } from "../stores/types.js";
import { isGoneLocalOwner } from "../util/local-owner.js";

/**
 * How long a cleanup's lease lasts. It is renewed before each deletion; a cleanup process that
 * dies keeps the run locked at most this long.
 */
export const CLEANUP_LEASE_MS = 120_000;

/** A lease owner id that tells a refused runner the run is being cleaned up, and by which process. */
export function newCleanupOwner(): string {
  return `cairn-cleanup:${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
}

/**
 * True when `owner` is a cleanup of a process on this host that is no longer alive: its lease
 * protects nothing, so another cleanup may end it instead of waiting for it to run out.
 */
export function isDeadLocalCleanup(owner: string): boolean {
  return owner.startsWith("cairn-cleanup:") && isGoneLocalOwner(owner);
}

/** Why a run whose lease someone else holds is left alone; also the text the CLI prints. */
export function inUseReason(holder: Lease): string {
  return `in use by ${holder.owner} until ${holder.expiresAt.toISOString()} (its lease is held: it is being executed)`;
}

/** Why a cleanup stopped part-way through a run: it lost the lease it held. */
export const LEASE_LOST_REASON =
  "the cleanup's lease on the run ran out and another runner took the run; nothing more was deleted";

/** The outcome of {@link withCleanupLease}: what `work` returned, or who holds the run. */
export type UnderLease<T> = { held: false; value: T } | { held: true; holder: Lease };

/**
 * Runs `work` while holding the run's lease, released afterwards; when someone else holds a live
 * lease, `work` does not run and the holder is returned.
 */
export async function withCleanupLease<T>(
  store: CheckpointStore,
  pipelineId: string,
  owner: string,
  work: (lease: LeaseHandle) => Promise<T>,
): Promise<UnderLease<T>> {
  let attempt = await store.acquireLease(pipelineId, owner, CLEANUP_LEASE_MS);
  if (!attempt.acquired && isDeadLocalCleanup(attempt.holder.owner)) {
    // A killed cleanup of this host: finish its job now rather than in two minutes.
    await store.releaseLease(attempt.holder);
    attempt = await store.acquireLease(pipelineId, owner, CLEANUP_LEASE_MS);
  }
  if (!attempt.acquired) return { held: true, holder: attempt.holder };
  const handle = new LeaseHandle(store, attempt.lease);
  try {
    return { held: false, value: await work(handle) };
  } finally {
    await handle.release();
  }
}

/** A cleanup's lease on one run: renewed before each deletion, so a deletion never runs unheld. */
export class LeaseHandle {
  private lost = false;

  constructor(
    private readonly store: CheckpointStore,
    private lease: Lease,
  ) {}

  /** Renews the lease; false when it was taken over (the cleanup must stop deleting). */
  async keep(): Promise<boolean> {
    if (this.lost) return false;
    const renewed = await this.store.renewLease(this.lease, CLEANUP_LEASE_MS);
    if (renewed) this.lease = renewed;
    else this.lost = true;
    return !this.lost;
  }

  /** Ends the lease unless it was already taken over. */
  async release(): Promise<void> {
    if (!this.lost) await this.store.releaseLease(this.lease);
  }
}
