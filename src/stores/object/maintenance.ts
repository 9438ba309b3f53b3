/**
 * Maintenance that changes old manifest entries: deleteCheckpoints, deleteOutputs and the
 * corrupt-entry repairs. Each reads the whole manifest (every page), writes the new pages,
 * compare-and-swaps the tip, THEN deletes the replaced pages and the removed objects in batches.
 * A crash in between leaves only unreferenced objects (invisible garbage), never a broken run.
 */
import { CheckpointConflictError, CheckpointNotFoundError } from "../../core/errors.js";
import type { CorruptEntry, DeleteCheckpointsOptions } from "../types.js";
import type { ObjectContext } from "./context.js";
import { finishDeletion } from "./delete-run.js";
import { claimKey, cpKey, outKey, parseCpKey } from "./keys.js";
import { layOut, loadManifest, type Manifest, mapLimit } from "./manifest.js";
import { readClaim, recordProblem } from "./records.js";
import {
  backoff,
  cloneTip,
  contentionError,
  MAX_ATTEMPTS,
  newestOf,
  type Tip,
  type TipState,
} from "./tip.js";

/** What an edit of the manifest decided: nothing to do, or the new manifest. */
type Edit<T> = { result: T; manifest?: Manifest; apply?: (next: Tip) => void };

/**
 * Reads the tip and whole manifest, lets `edit` decide, lays the new manifest out and swaps the
 * tip; retried from a fresh read when the swap loses. Returns the result, the tip before (for the
 * objects to delete) and the tip after; the replaced pages are deleted here.
 */
export async function rewriteManifest<T>(
  ctx: ObjectContext,
  runId: string,
  operation: string,
  edit: (tip: Tip, manifest: Manifest) => Edit<T>,
  ifNoRun: T,
): Promise<{ result: T; changed?: { before: Tip; after: TipState } }> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt > 0) await backoff(attempt);
    let state = await ctx.tips.read(runId);
    if (state.tip?.deleting) state = await finishDeletion(ctx, runId, state);
    const tip = state.tip;
    if (!tip) return { result: ifNoRun };
    const decided = edit(tip, await loadManifest(ctx.client, tip));
    if (!decided.manifest) return { result: decided.result };
    const next = cloneTip(tip);
    Object.assign(next, await layOut(ctx.client, runId, decided.manifest));
    next.latest = newestOf(decided.manifest.cps);
    decided.apply?.(next);
    const after = await ctx.tips.cas(runId, state, next);
    if (after) {
      const replaced = tip.pages.map((p) => p.key);
      if (replaced.length > 0) await ctx.client.deleteMany(replaced);
      return { result: decided.result, changed: { before: tip, after } };
    }
    // Our new pages are referenced by nothing.
    if (next.pages.length > 0) await ctx.client.deleteMany(next.pages.map((p) => p.key));
  }
  throw contentionError(ctx.strategy, operation, runId);
}

/** Claims of these ids that still name this run (another run may have taken an id over since). */
async function ownClaims(ctx: ObjectContext, runId: string, ids: readonly string[]): Promise<string[]> {
  const found = await mapLimit(ids, 32, async (id) =>
    (await readClaim(ctx.client, id))?.claim?.run === runId ? [claimKey(id)] : [],
  );
  return found.flat();
}

/** Drops checkpoints from the manifest, then deletes their objects and claims. */
export async function deleteCheckpoints(
  ctx: ObjectContext,
  runId: string,
  checkpointIds: readonly string[],
  options: DeleteCheckpointsOptions,
): Promise<number> {
  const wanted = new Set(checkpointIds);
  if (wanted.size === 0) return 0;
  const { result, changed } = await rewriteManifest(
    ctx,
    runId,
    "deleteCheckpoints",
    (_tip, manifest) => {
      const gone = manifest.cps.filter((c) => wanted.has(c[1]));
      if (gone.length === 0) return { result: gone };
      return {
        result: gone,
        manifest: { cps: manifest.cps.filter((c) => !wanted.has(c[1])), outs: manifest.outs },
        apply: (next) => {
          if (!options.retention || !next.head) return;
          const through = Math.max(...gone.map((c) => c[0]), next.head.pruned?.throughSequence ?? -1);
          next.head.pruned = { throughSequence: through, at: new Date().toISOString() };
        },
      };
    },
    [],
  );
  if (changed) {
    const claims = await ownClaims(
      ctx,
      runId,
      result.map((c) => c[1]),
    );
    await ctx.client.deleteMany([...result.map((c) => cpKey(runId, c[1], c[2])), ...claims]);
  }
  return result.length;
}

/**
 * Drops outputs from the manifest, then deletes their blobs. A put racing with this may commit
 * a hash whose blob we are deleting (it skipped writing a blob the manifest listed): afterwards
 * the tip is read again and every such blob is written back from the bytes read before.
 */
export async function deleteOutputs(
  ctx: ObjectContext,
  runId: string,
  hashes: readonly string[],
): Promise<number> {
  const wantedSet = new Set(hashes);
  const wanted = [...wantedSet];
  if (wanted.length === 0) return 0;
  const bodies = new Map<string, Buffer>();
  await mapLimit(wanted, 32, async (hash) => {
    const got = await ctx.client.get(outKey(runId, hash));
    if (got) bodies.set(hash, got.body);
  });
  const { result, changed } = await rewriteManifest(
    ctx,
    runId,
    "deleteOutputs",
    (_tip, manifest) => {
      const gone = manifest.outs.filter((h) => wantedSet.has(h));
      if (gone.length === 0) return { result: gone };
      const set = new Set(gone);
      return {
        result: gone,
        manifest: { cps: manifest.cps, outs: manifest.outs.filter((h) => !set.has(h)) },
      };
    },
    [],
  );
  if (!changed) return result.length;
  await ctx.client.deleteMany(result.map((h) => outKey(runId, h)));
  const now = await ctx.tips.read(runId);
  if (now.tip && !now.tip.deleting && now.etag !== changed.after.etag) {
    const listed = new Set((await loadManifest(ctx.client, now.tip)).outs);
    const back = result.filter((h) => listed.has(h) && bodies.has(h));
    await Promise.all(back.map((h) => ctx.client.put(outKey(runId, h), bodies.get(h) as Buffer)));
  }
  return result.length;
}

/** The manifest entry a corrupt entry's location names, with the object's text (undefined: missing). */
async function corruptTarget(ctx: ObjectContext, entry: CorruptEntry) {
  const notFound = () =>
    new CheckpointNotFoundError(
      entry.checkpointId ?? entry.location,
      `No corrupt entry ${JSON.stringify(entry.location)} in run ${entry.pipelineId}`,
    );
  const parsed = parseCpKey(entry.location);
  if (!parsed || parsed.runId !== entry.pipelineId) throw notFound();
  const state = await ctx.tips.read(parsed.runId);
  if (!state.tip || state.tip.deleting) throw notFound();
  const manifest = await loadManifest(ctx.client, state.tip);
  const listed = manifest.cps.find((c) => c[1] === parsed.checkpointId && c[2] === parsed.suffix);
  if (!listed) throw notFound();
  const got = await ctx.client.get(entry.location);
  return { parsed, listed, text: got?.body.toString("utf8"), notFound };
}

/** The raw text of a corrupt entry's object (a JSON note when the object is missing). */
export async function readCorruptEntry(ctx: ObjectContext, entry: CorruptEntry): Promise<string> {
  const { text } = await corruptTarget(ctx, entry);
  return text ?? JSON.stringify({ location: entry.location, missing: true });
}

/** Drops a corrupt entry from its run, then deletes its object; a readable record is a conflict. */
export async function removeCorruptEntry(ctx: ObjectContext, entry: CorruptEntry): Promise<void> {
  const { parsed, text, notFound } = await corruptTarget(ctx, entry);
  const id = parsed.checkpointId;
  // An entry naming one checkpoint at another's location is not what a listing reported: removing
  // what the location holds would act on a checkpoint the caller did not name.
  if (entry.checkpointId !== undefined && entry.checkpointId !== id) {
    throw new CheckpointConflictError(
      entry.checkpointId,
      `The entry names checkpoint ${entry.checkpointId} but its location ${entry.location} holds ${id}: nothing removed`,
    );
  }
  if (text !== undefined && "record" in recordProblem(text, parsed.runId, id)) {
    throw new CheckpointConflictError(id, `Checkpoint ${id} at ${entry.location} parses: it is not corrupt`);
  }
  const { result } = await rewriteManifest(
    ctx,
    parsed.runId,
    "removeCorruptEntry",
    (_tip, manifest) => {
      const rest = manifest.cps.filter((c) => !(c[1] === id && c[2] === parsed.suffix));
      if (rest.length === manifest.cps.length) return { result: false };
      return { result: true, manifest: { cps: rest, outs: manifest.outs } };
    },
    false,
  );
  if (!result) throw notFound();
  const claims = await ownClaims(ctx, parsed.runId, [id]);
  await ctx.client.deleteMany([entry.location, ...claims]);
}
