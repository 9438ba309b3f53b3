/**
 * The Redis store's lease writes: take, renew and release, each one script on the server's clock.
 * Kept apart so the store file stays short; the fencing check itself lives in the put script.
 */
import { checkLeaseArgs } from "../lease.js";
import type { Lease, LeaseAttempt } from "../types.js";
import type { RedisKeys } from "./keys.js";
import { leaseAttemptFrom } from "./replies.js";
import type { ScriptRunner } from "./runs-index.js";

/** Takes the run's lease in one script, with the server's clock. */
export async function acquireLease(
  script: ScriptRunner,
  k: RedisKeys,
  ttlSeconds: number,
  pipelineId: string,
  owner: string,
  ttlMs: number,
): Promise<LeaseAttempt> {
  checkLeaseArgs(owner, ttlMs);
  const reply = (await script(
    "acquireLease",
    "acquire",
    ...[k.lease(pipelineId), k.head(pipelineId), k.leaseToken(pipelineId)],
    ...[owner, ttlMs, ttlSeconds],
  )) as [number, ...(string | number)[]];
  return leaseAttemptFrom(pipelineId, owner, reply);
}

/** Extends a lease still held; undefined once it expired or changed hands. */
export async function renewLease(
  script: ScriptRunner,
  k: RedisKeys,
  ttlSeconds: number,
  lease: Lease,
  ttlMs: number,
): Promise<Lease | undefined> {
  checkLeaseArgs(lease.owner, ttlMs);
  const expiresAt = await script(
    "renewLease",
    "renew",
    ...[k.lease(lease.pipelineId), k.head(lease.pipelineId)],
    ...[lease.owner, lease.token, ttlMs, ttlSeconds],
  );
  return typeof expiresAt === "number" ? { ...lease, expiresAt: new Date(expiresAt) } : undefined;
}
