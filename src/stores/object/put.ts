/**
 * `putCheckpoint` on an object store: check against the tip → write the new objects → compare-
 * and-swap the tip → on a lost swap re-read, re-check everything, retry.
 *
 * Steady state, one writer (this instance wrote the run's last tip, so its ETag is cached): round
 * 1 writes the outputs, the cp object (create-only, fresh suffix) and the id claim (create-only)
 * in parallel; round 2 is the tip's compare-and-swap with the cached ETag. Two round trips, no GET.
 * Every 257th checkpoint adds one create-only page write before the swap (`manifest.ts`).
 */
import { CheckpointConflictError, StoreOperationError, TipMovedError } from "../../core/errors.js";
import { leaseLostError } from "../lease.js";
import type { CheckpointRecord, Lease, OutputRecord, PutOptions } from "../types.js";
import type { ObjectContext } from "./context.js";
import { finishDeletion } from "./delete-run.js";
import { cpKey, indexKey, newNonce, newSuffix, outKey } from "./keys.js";
import { mustSpill, writePage } from "./manifest.js";
import { claimId, dropOwnClaim } from "./records.js";
import {
  backoff,
  type CpEntry,
  cloneTip,
  compareEntries,
  contentionError,
  emptyTip,
  epochOf,
  MAX_ATTEMPTS,
  type PageRef,
  type Tip,
  type TipState,
} from "./tip.js";

/** The lease a tip holds, as the contract's `Lease`. */
export function leaseOf(runId: string, tip: Tip | undefined): Lease | undefined {
  const l = tip?.lease;
  return l
    ? { pipelineId: runId, owner: l.owner, token: l.token, expiresAt: new Date(l.expiresAtMs) }
    : undefined;
}

/** Why the write is refused by this tip, checked in the contract's order; undefined when allowed. */
function refusal(
  state: TipState,
  record: CheckpointRecord,
  fence: Lease | undefined,
  options: PutOptions | undefined,
): Error | undefined {
  const { tip } = state;
  const id = record.metadata.checkpoint_id;
  const runId = record.metadata.pipeline_id;
  if (fence) {
    const l = tip?.lease;
    const same = l !== undefined && l !== null && l.owner === fence.owner && l.token === fence.token;
    // Expired by the server's clock (a Date header rounds down: one second of slack).
    const expired = l ? state.serverTime.getTime() >= l.expiresAtMs + 1000 : true;
    if (!same || l.released || expired) {
      return leaseLostError(same && (l.released || expired) ? undefined : leaseOf(runId, tip), fence);
    }
  }
  if (options?.expectedTip !== undefined) {
    const actual = tip?.latest?.[1] ?? null;
    if (actual !== options.expectedTip) return new TipMovedError(id, runId, options.expectedTip, actual);
  }
  if (tip?.recent.cps.some((c) => c[1] === id)) return new CheckpointConflictError(id);
  return undefined;
}

/** The tip with the checkpoint added: manifest, head, latest, runs-index fields. */
function withCheckpoint(
  tip: Tip | undefined,
  entry: CpEntry,
  record: CheckpointRecord,
  hashes: string[],
): Tip {
  const m = record.metadata;
  const next = tip ? cloneTip(tip) : emptyTip();
  next.recent.cps.push(entry);
  const outs = new Set(next.recent.outs);
  for (const hash of hashes) {
    if (outs.has(hash)) continue;
    next.recent.outs.push(hash);
    outs.add(hash);
  }
  if (next.name === null || next.createdAt === null) {
    next.name = m.pipeline_name;
    next.createdAt = m.timestamp;
  }
  if (m.stage_name === "pipeline_complete") next.finished = true;
  const head = next.head;
  if (!head || m.sequence >= head.sequence) {
    next.head = {
      sequence: m.sequence,
      checkpointId: m.checkpoint_id,
      checksum: m.checksum,
      key: cpKey(m.pipeline_id, m.checkpoint_id, entry[2]),
      ...(head?.pruned ? { pruned: head.pruned } : {}),
    };
  }
  if (!next.latest || compareEntries(entry, next.latest) > 0) next.latest = entry;
  return next;
}

/** True when the tip lists this very entry (same id and suffix) inline or as its newest. */
function holdsEntry(tip: Tip | undefined, entry: CpEntry): boolean {
  const same = (c: CpEntry | null | undefined) => c?.[1] === entry[1] && c[2] === entry[2];
  return tip !== undefined && (same(tip.latest) || tip.recent.cps.some(same));
}

/** The runs-by-name entry's body. */
export const indexBody = (runId: string, name: string, createdAt: string): string =>
  JSON.stringify({ run: runId, name, createdAt });

/** Stores one checkpoint: see the file comment. */
export async function putCheckpoint(
  ctx: ObjectContext,
  record: CheckpointRecord,
  outputs: readonly OutputRecord[],
  fence: Lease | undefined,
  options: PutOptions | undefined,
): Promise<void> {
  const { client, tips } = ctx;
  const m = record.metadata;
  const runId = m.pipeline_id;
  const id = m.checkpoint_id;
  let state = await tips.cached(runId);
  let fresh = false;
  for (;;) {
    if (state.tip?.deleting) {
      state = await finishDeletion(ctx, runId, state);
      fresh = true;
    }
    const refused = refusal(state, record, fence, options);
    if (!refused) break;
    // A refusal found on a cached tip is confirmed on a fresh read before anything is reported.
    if (fresh) throw refused;
    state = await tips.read(runId);
    fresh = true;
  }

  // Round 1: every new object, in parallel. Nothing is visible until the tip references it.
  const epoch = epochOf(state.tip);
  const entry: CpEntry = [m.sequence, id, newSuffix(), m.timestamp];
  const key = cpKey(runId, id, entry[2]);
  const writer = newNonce();
  const known = new Set(state.tip?.recent.outs ?? []);
  const unique = [...new Map(outputs.map((o) => [o.hash, o.body])).entries()];
  const indexed = new Set<string>();
  const firstIndex = state.tip?.name == null ? indexKey(m.pipeline_name, m.timestamp, runId) : undefined;
  const hashes = unique.map(([hash]) => hash);
  // A spill the tip we hold calls for is written in round 1 too, so it costs no extra round.
  const planned = withCheckpoint(state.tip, entry, record, hashes).recent;
  const spilledFrom = state;
  const [claimed, written, spilled] = await Promise.all([
    claimId(client, tips, id, { run: runId, seq: m.sequence, w: writer }),
    client.put(key, JSON.stringify(record), { ifNoneMatch: "*" }),
    mustSpill(planned) ? writePage(client, runId, planned.cps, planned.outs) : undefined,
    Promise.all([
      ...unique
        .filter(([hash]) => !known.has(hash))
        .map(([hash, body]) => client.put(outKey(runId, hash), body)),
      ...(firstIndex
        ? [
            client
              .put(firstIndex, indexBody(runId, m.pipeline_name, m.timestamp))
              .then(() => indexed.add(firstIndex)),
          ]
        : []),
    ]),
  ]);
  let prepared = spilled;
  if (!written.ok || claimed !== "claimed") {
    if (prepared) await client.delete(prepared.key);
    if (written.ok) {
      await client.delete(key);
      throw new CheckpointConflictError(id);
    }
    // Only a fresh random suffix (36^8) taken already: nothing of ours was written there.
    if (claimed === "claimed") await dropOwnClaim(client, id, writer);
    throw new StoreOperationError(ctx.strategy, "putCheckpoint", {
      cause: new Error(`${key} exists already: a random suffix collided`),
    });
  }
  /** A write lost after its objects were written removes what only it wrote: never an output. */
  const cleanUp = async (): Promise<void> => {
    if (prepared) await client.delete(prepared.key);
    await client.delete(key);
    await dropOwnClaim(client, id, writer);
  };
  const abandon = async (error: Error): Promise<never> => {
    await cleanUp();
    throw error;
  };

  // Round 2: the tip's compare-and-swap, retried on a lost race with every check redone.
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt > 0) {
      await backoff(attempt);
      state = await tips.read(runId);
      // A write whose answer was lost may have landed and been built on since: our entry (its
      // suffix is ours alone) in the tip proves it.
      if (holdsEntry(state.tip, entry)) return;
      if (state.tip?.deleting || epochOf(state.tip) !== epoch) {
        // A deletion since round 1 removes (or removed) what it wrote: start over after it.
        await cleanUp();
        if (state.tip?.deleting) await finishDeletion(ctx, runId, state);
        return putCheckpoint(ctx, record, outputs, fence, options);
      }
      const refused = refusal(state, record, fence, options);
      if (refused) return abandon(refused);
      // Outputs round 1 skipped because the tip listed them, and a concurrent deleteOutputs
      // has removed since, are written now.
      const listed = new Set(state.tip?.recent.outs ?? []);
      const missing = unique.filter(([hash]) => known.has(hash) && !listed.has(hash));
      await Promise.all(missing.map(([hash, body]) => client.put(outKey(runId, hash), body)));
    }
    const next = withCheckpoint(state.tip, entry, record, hashes);
    if (next.createdAt !== null && next.name !== null && state.tip?.name == null) {
      const wanted = indexKey(next.name, next.createdAt, runId);
      if (!indexed.has(wanted)) {
        await client.put(wanted, indexBody(runId, next.name, next.createdAt));
        indexed.add(wanted);
      }
    }
    let page: PageRef | undefined;
    if (mustSpill(next.recent)) {
      page =
        prepared && state === spilledFrom
          ? prepared
          : await writePage(client, runId, next.recent.cps, next.recent.outs);
      next.pages.push(page);
      next.recent = { cps: [], outs: [] };
    }
    if (await tips.cas(runId, state, next)) {
      // A page round 1 wrote for a tip that had moved on is referenced by nothing.
      if (prepared && page !== prepared) await client.delete(prepared.key);
      return;
    }
    // Our page is referenced by nothing now; nobody else can know its key.
    if (page !== undefined) await client.delete(page.key);
    if (page === prepared) prepared = undefined;
  }
  return abandon(contentionError(ctx.strategy, "putCheckpoint", runId));
}
