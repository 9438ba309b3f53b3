/**
 * Leases live in the tip (no separate lock object), changed by compare-and-swap, so a takeover
 * changes the ETag every fenced write swaps on: the old holder is always fenced.
 *
 * Expiry is judged by the server's clock (`serverTime`, a Date header with one-second
 * resolution): expired when `T >= expiresAtMs + 1000`. When that cannot decide yet (the lease is
 * within 2 s of expiry, or its TTL is at most 2 s) the acquirer watches the tip instead: a lease
 * whose tip ETag stayed the same, unrenewed, for the lease's TTL on the acquirer's own monotonic
 * clock has expired. The holder's `Lease.expiresAt` is its local clock just before the tip read
 * its swap was based on, plus the TTL, which is never later than either rule lets a successor
 * in. A run with no tip yet has no server time to read: its first lease's `expiresAtMs` is
 * taken from this process's clock.
 */
import { checkLeaseArgs, isSameLease } from "../lease.js";
import type { Lease, LeaseAttempt } from "../types.js";
import type { ObjectContext } from "./context.js";
import { finishDeletion } from "./delete-run.js";
import { leaseOf } from "./put.js";
import {
  backoff,
  cloneTip,
  contentionError,
  emptyTip,
  MAX_ATTEMPTS,
  type TipLease,
  type TipState,
} from "./tip.js";

/** Slack for the one-second resolution of a Date header. */
const CLOCK_RESOLUTION_MS = 1000;
/** Below this margin the server clock cannot decide expiry: the acquirer watches the tip instead. */
const UNDECIDED_MS = 2000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** "expired", "live", or "undecided" by the server clock alone. */
function judge(lease: TipLease, serverMs: number): "expired" | "live" | "undecided" {
  if (serverMs >= lease.expiresAtMs + CLOCK_RESOLUTION_MS) return "expired";
  if (lease.expiresAtMs - serverMs <= UNDECIDED_MS || lease.ttlMs <= UNDECIDED_MS) return "undecided";
  return "live";
}

/** A tip ready to be changed: read fresh, with a killed deletion finished first. */
async function readForChange(ctx: ObjectContext, runId: string): Promise<TipState> {
  const state = await ctx.tips.read(runId);
  return state.tip?.deleting ? finishDeletion(ctx, runId, state) : state;
}

/** Takes the run's lease; see the file comment for the expiry rules. */
export async function acquireLease(
  ctx: ObjectContext,
  runId: string,
  owner: string,
  ttlMs: number,
): Promise<LeaseAttempt> {
  checkLeaseArgs(owner, ttlMs);
  /** The tip ETag being watched and when this caller first saw it. */
  let watched: { etag: string | undefined; since: number } | undefined;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; ) {
    // The holder's expiry counts from before the read the new lease's server expiry comes from.
    const started = Date.now();
    const state = await readForChange(ctx, runId);
    const tip = state.tip ?? emptyTip();
    const current = tip.lease;
    let takeover = !current || current.released === true;
    let keep = false;
    if (current && !takeover) {
      const verdict = judge(current, state.serverTime.getTime());
      if (verdict === "expired") takeover = true;
      else if (current.owner === owner) keep = true;
      else if (verdict === "live") {
        return { acquired: false, holder: leaseOf(runId, tip) as Lease };
      } else {
        // Undecided: watch the tip's ETag on this process's monotonic clock.
        const now = performance.now();
        // The tip changed while watched: its holder is alive (it renewed or wrote).
        if (watched && watched.etag !== state.etag) {
          return { acquired: false, holder: leaseOf(runId, tip) as Lease };
        }
        watched ??= { etag: state.etag, since: now };
        if (now - watched.since < current.ttlMs) {
          await sleep(Math.max(1, Math.min(current.ttlMs / 4, 250, current.ttlMs - (now - watched.since))));
          continue;
        }
        takeover = true;
      }
    }
    const next = cloneTip(tip);
    const token = keep && current ? current.token : tip.lastToken + 1;
    next.lease = { owner, token, ttlMs, expiresAtMs: state.serverTime.getTime() + ttlMs };
    next.lastToken = Math.max(tip.lastToken, token);
    if (await ctx.tips.cas(runId, state, next)) {
      return {
        acquired: true,
        lease: { pipelineId: runId, owner, token, expiresAt: new Date(started + ttlMs) },
      };
    }
    attempt++;
    await backoff(attempt);
  }
  throw contentionError(ctx.strategy, "acquireLease", runId);
}

/** Changes the lease if `lease` is still the run's current one; false when it is not. */
async function changeHeld(
  ctx: ObjectContext,
  lease: Lease,
  operation: string,
  change: (current: TipLease, serverMs: number) => TipLease,
): Promise<boolean> {
  const runId = lease.pipelineId;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt > 0) await backoff(attempt);
    const state = await readForChange(ctx, runId);
    const current = state.tip?.lease;
    if (!state.tip || !current || current.released || !isSameLease(leaseOf(runId, state.tip), lease)) {
      return false;
    }
    const next = cloneTip(state.tip);
    next.lease = change(current, state.serverTime.getTime());
    if (await ctx.tips.cas(runId, state, next)) return true;
  }
  throw contentionError(ctx.strategy, operation, runId);
}

/** Extends a lease still held; undefined once it was taken over or released. */
export async function renewLease(
  ctx: ObjectContext,
  lease: Lease,
  ttlMs: number,
): Promise<Lease | undefined> {
  checkLeaseArgs(lease.owner, ttlMs);
  const started = Date.now();
  const renewed = await changeHeld(ctx, lease, "renewLease", (current, serverMs) => ({
    ...current,
    ttlMs,
    expiresAtMs: serverMs + ttlMs,
  }));
  return renewed ? { ...lease, expiresAt: new Date(started + ttlMs) } : undefined;
}

/** Ends a lease still held; its token stays in `lastToken`, so it is never reused. */
export async function releaseLease(ctx: ObjectContext, lease: Lease): Promise<void> {
  await changeHeld(ctx, lease, "releaseLease", (current) => ({ ...current, released: true }));
}

/**
 * The run's lease while live; read-only. A display hint: live while both the server's clock and
 * this process's clock are before its expiry (the server's Date header rounds down).
 */
export async function getLease(ctx: ObjectContext, runId: string): Promise<Lease | undefined> {
  const { tip, serverTime } = await ctx.tips.read(runId);
  const l = tip?.lease;
  if (!tip || tip.deleting || !l || l.released) return undefined;
  if (Math.max(serverTime.getTime(), Date.now()) >= l.expiresAtMs) return undefined;
  return leaseOf(runId, tip);
}
