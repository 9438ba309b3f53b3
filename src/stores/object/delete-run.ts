/**
 * `deleteRun` in two steps. First one compare-and-swap turns the tip into a tombstone (no
 * manifest, no lease, no key record; the key record is destroyed in the same step the run
 * disappears): from then on every reader sees no run. Then the run's objects, claims and
 * runs-by-name entry are deleted in batches, and the tombstone becomes a plain tip holding only
 * the fencing-token counter. Whoever next writes to a tombstoned run (a killed delete) finishes
 * the deletion first, working only from the tombstone and a listing of `runs/<id>/`.
 *
 * A write that straddles a deletion sees the tip's `epoch` change and starts over (`put.ts`).
 * Known window: two processes finish the same deletion while a third writes the run anew with
 * an output of the same hash as a deleted one; the slower finisher, between its last tip check
 * and its batch delete, may delete that blob. The result is a reported output-hash problem on
 * resume, never a silent wrong answer.
 */
import type { ObjectContext } from "./context.js";
import { indexKey, parseCpKey, runPrefix } from "./keys.js";
import { mapLimit } from "./manifest.js";
import { readClaim } from "./records.js";
import { backoff, contentionError, emptyTip, epochOf, MAX_ATTEMPTS, type Tip, type TipState } from "./tip.js";

/** Every key under a prefix, page by page. */
export async function listAll(ctx: ObjectContext, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let continuation: string | undefined;
  do {
    const page = await ctx.client.list(prefix, continuation === undefined ? {} : { continuation });
    keys.push(...page.keys);
    continuation = page.continuation;
  } while (continuation !== undefined);
  return keys;
}

/** The tombstone of a tip: nothing but the token counter and what cleaning up needs. */
function tombstone(tip: Tip): Tip {
  return {
    ...emptyTip(tip.lastToken),
    name: tip.name,
    createdAt: tip.createdAt,
    deleting: true,
    epoch: epochOf(tip) + 1,
  };
}

/** Deletes a whole run: tombstone, clean up, clear the tombstone. */
export async function deleteRun(ctx: ObjectContext, runId: string): Promise<void> {
  let state = await ctx.tips.cached(runId);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt > 0) {
      await backoff(attempt);
      state = await ctx.tips.read(runId);
    }
    // No tip: nothing to delete unless a first write crashed (or is in flight) under runs/<id>/.
    // Those objects go through a tombstone too, so a first write in flight starts over.
    if (!state.tip && (await ctx.client.list(runPrefix(runId), { maxKeys: 1 })).keys.length === 0) return;
    if (state.tip?.deleting) {
      await finishDeletion(ctx, runId, state);
      return;
    }
    const done = await ctx.tips.cas(runId, state, tombstone(state.tip ?? emptyTip()));
    if (done) {
      await finishDeletion(ctx, runId, done);
      return;
    }
  }
  throw contentionError(ctx.strategy, "deleteRun", runId);
}

/**
 * Finishes the deletion a tombstone records: deletes the run's objects, its claims (those still
 * naming this run) and its runs-by-name entry, then clears the tombstone. Returns the tip after.
 */
export async function finishDeletion(ctx: ObjectContext, runId: string, state: TipState): Promise<TipState> {
  const tomb = state.tip as Tip;
  const keys = await listAll(ctx, runPrefix(runId));
  const ids = [...new Set(keys.flatMap((k) => parseCpKey(k)?.checkpointId ?? []))];
  const claims = await mapLimit(ids, 32, async (id) => {
    const found = await readClaim(ctx.client, id);
    // Another run may have taken over the id since the tombstone: its claim stays.
    return found?.claim?.run === runId ? [`ids/${id}`] : [];
  });
  // Still our tombstone after listing? Then no writer has written under it yet (writers finish a
  // deletion first), so every key listed predates it. If it changed, someone else finished.
  const now = await ctx.tips.read(runId);
  if (now.etag !== state.etag) return now;
  const doomed = [...keys, ...claims.flat()];
  if (tomb.name !== null && tomb.createdAt !== null) doomed.push(indexKey(tomb.name, tomb.createdAt, runId));
  if (doomed.length > 0) await ctx.client.deleteMany(doomed);
  let current = state;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const done = await ctx.tips.cas(runId, current, { ...emptyTip(tomb.lastToken), epoch: epochOf(tomb) });
    if (done) return done;
    await backoff(attempt);
    current = await ctx.tips.read(runId);
    // Someone else finished it (and may have written since): their tip stands.
    if (!current.tip?.deleting) return current;
  }
  throw contentionError(ctx.strategy, "deleteRun", runId);
}
