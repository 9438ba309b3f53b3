/**
 * `importRun` on an object store: every id is claimed first (an id another run holds refuses
 * the import before anything else is written), then every cp object (fresh suffixes), output,
 * page and the runs-by-name entry are written, then ONE compare-and-swap of the tip makes the
 * whole run visible at once (replacing the old run in the same step), and only then are the
 * replaced run's objects that the new one does not reference deleted.
 */
import { CheckpointConflictError } from "../../core/errors.js";
import type { ImportedCheckpoint, ImportRunOptions } from "../types.js";
import type { ObjectContext } from "./context.js";
import { finishDeletion } from "./delete-run.js";
import { claimKey, cpKey, indexKey, newNonce, newSuffix, outKey } from "./keys.js";
import { layOut, loadManifest, type Manifest, mapLimit } from "./manifest.js";
import { indexBody } from "./put.js";
import { type Claim, claimId, dropOwnClaim, readClaim } from "./records.js";
import {
  backoff,
  type CpEntry,
  cloneTip,
  contentionError,
  emptyTip,
  epochOf,
  holdsData,
  MAX_ATTEMPTS,
  newestOf,
  type Tip,
} from "./tip.js";

const runExists = (runId: string) =>
  new CheckpointConflictError(runId, `Run ${runId} already exists in the store`);

/** The tip of the imported run, built on the current one (lease and token counter kept). */
function importedTip(
  current: Tip | undefined,
  checkpoints: readonly ImportedCheckpoint[],
  entries: CpEntry[],
  runKey: string | undefined,
): Tip {
  const next = current ? cloneTip(current) : emptyTip();
  const first = checkpoints[0]?.record.metadata;
  next.name = first?.pipeline_name ?? null;
  next.createdAt = first?.timestamp ?? null;
  next.finished = checkpoints.some((c) => c.record.metadata.stage_name === "pipeline_complete");
  next.head = null;
  checkpoints.forEach(({ record }, i) => {
    const m = record.metadata;
    if (!next.head || m.sequence >= next.head.sequence) {
      const key = cpKey(m.pipeline_id, m.checkpoint_id, (entries[i] as CpEntry)[2]);
      next.head = { sequence: m.sequence, checkpointId: m.checkpoint_id, checksum: m.checksum, key };
    }
  });
  next.latest = newestOf(entries);
  // A replaced run's key record goes with it; a new run keeps one its writer may have made.
  if (runKey !== undefined) next.runKey = runKey;
  else if (holdsData(current)) next.runKey = null;
  return next;
}

/** Stores a whole run in one visible step; see the file comment. */
export async function importRun(
  ctx: ObjectContext,
  runId: string,
  checkpoints: readonly ImportedCheckpoint[],
  options: ImportRunOptions,
): Promise<void> {
  const { client, tips } = ctx;
  let state = await tips.read(runId);
  if (state.tip?.deleting) state = await finishDeletion(ctx, runId, state);
  if (holdsData(state.tip) && !options.replace) throw runExists(runId);

  // Claims first: an id another run holds refuses the import before anything else is written.
  const epoch = epochOf(state.tip);
  const writer = newNonce();
  const records = checkpoints.map((c) => c.record);
  const claims = await mapLimit(records, 32, (r) =>
    claimId(client, tips, r.metadata.checkpoint_id, { run: runId, seq: r.metadata.sequence, w: writer }),
  );
  const ownOld: string[] = [];
  const clash = records.find((r, i) => {
    const got = claims[i];
    if (got === "claimed" || got === undefined) return false;
    if (got.heldBy === runId && options.replace) {
      ownOld.push(r.metadata.checkpoint_id);
      return false;
    }
    return true;
  });
  const dropClaims = () =>
    mapLimit(records, 32, (r) => dropOwnClaim(client, r.metadata.checkpoint_id, writer));
  if (clash) {
    await dropClaims();
    throw new CheckpointConflictError(clash.metadata.checkpoint_id);
  }

  const entries: CpEntry[] = records.map((r) => [
    r.metadata.sequence,
    r.metadata.checkpoint_id,
    newSuffix(),
    r.metadata.timestamp,
  ]);
  const outputs = new Map<string, string>();
  for (const c of checkpoints)
    for (const o of c.outputs) if (!outputs.has(o.hash)) outputs.set(o.hash, o.body);
  const first = records[0]?.metadata;
  const writes: (() => Promise<unknown>)[] = [
    ...records.map(
      (r, i) => () =>
        client.put(cpKey(runId, r.metadata.checkpoint_id, (entries[i] as CpEntry)[2]), JSON.stringify(r), {
          ifNoneMatch: "*",
        }),
    ),
    ...[...outputs].map(
      ([hash, body]) =>
        () =>
          client.put(outKey(runId, hash), body),
    ),
  ];
  if (first) {
    const key = indexKey(first.pipeline_name, first.timestamp, runId);
    writes.push(() => client.put(key, indexBody(runId, first.pipeline_name, first.timestamp)));
  }
  await mapLimit(writes, 32, (write) => write());
  const manifest: Manifest = { cps: entries, outs: [...outputs.keys()] };
  const laid = await layOut(client, runId, manifest);
  const ours = [...entries.map((e) => cpKey(runId, e[1], e[2])), ...laid.pages.map((p) => p.key)];

  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt > 0) {
      await backoff(attempt);
      state = await tips.read(runId);
      // A swap whose answer was lost may have landed and been built on since: a tip naming our
      // pages or our entries (their suffixes are ours alone) proves it. What it replaced stays
      // as unreferenced garbage for `rebuildIndexes`.
      if (importedByUs(state.tip, laid, entries)) return;
      if (state.tip?.deleting || epochOf(state.tip) !== epoch) {
        // A deletion since our writes removes (or removed) them: start over after it.
        await client.deleteMany(ours);
        await dropClaims();
        if (state.tip?.deleting) await finishDeletion(ctx, runId, state);
        return importRun(ctx, runId, checkpoints, options);
      }
      if (holdsData(state.tip) && !options.replace) {
        await client.deleteMany(ours);
        await dropClaims();
        throw runExists(runId);
      }
    }
    const before = state.tip;
    const oldManifest = holdsData(before) ? await loadManifest(client, before) : undefined;
    const next = importedTip(before, checkpoints, entries, options.runKey);
    Object.assign(next, laid);
    if (!(await tips.cas(runId, state, next))) continue;
    // Ids the old run held keep their claim, now naming the new entry's sequence.
    await mapLimit(ownOld, 32, (id) => {
      const seq = entries.find((e) => e[1] === id)?.[0] ?? 0;
      const claim: Claim = { run: runId, seq, w: writer };
      return client.put(claimKey(id), JSON.stringify(claim));
    });
    if (before) await removeReplaced(ctx, runId, before, oldManifest, next, manifest);
    return;
  }
  throw contentionError(ctx.strategy, "importRun", runId);
}

/** True when the tip is (built on) our import: it references one of our pages or entries. */
function importedByUs(
  tip: Tip | undefined,
  laid: Pick<Tip, "recent" | "pages">,
  entries: CpEntry[],
): boolean {
  if (!tip || tip.deleting) return false;
  const pages = new Set(laid.pages.map((p) => p.key));
  const suffixes = new Set(entries.map((e) => `${e[1]}.${e[2]}`));
  return (
    tip.pages.some((p) => pages.has(p.key)) || tip.recent.cps.some((c) => suffixes.has(`${c[1]}.${c[2]}`))
  );
}

/** Deletes what the replaced run held and the new one does not reference. */
async function removeReplaced(
  ctx: ObjectContext,
  runId: string,
  before: Tip,
  old: Manifest | undefined,
  next: Tip,
  fresh: Manifest,
): Promise<void> {
  const doomed = before.pages.map((p) => p.key);
  if (old) {
    // Every old cp object: the new ones have fresh suffixes, so none is referenced any more.
    for (const c of old.cps) doomed.push(cpKey(runId, c[1], c[2]));
    const outs = new Set(fresh.outs);
    for (const h of old.outs) if (!outs.has(h)) doomed.push(outKey(runId, h));
    const ids = new Set(fresh.cps.map((c) => c[1]));
    const gone = [...new Set(old.cps.map((c) => c[1]))].filter((id) => !ids.has(id));
    const claims = await mapLimit(gone, 32, async (id) =>
      (await readClaim(ctx.client, id))?.claim?.run === runId ? [claimKey(id)] : [],
    );
    doomed.push(...claims.flat());
  }
  if (before.name !== null && before.createdAt !== null) {
    const oldEntry = indexKey(before.name, before.createdAt, runId);
    if (
      next.name === null ||
      next.createdAt === null ||
      oldEntry !== indexKey(next.name, next.createdAt, runId)
    ) {
      doomed.push(oldEntry);
    }
  }
  if (doomed.length > 0) await ctx.client.deleteMany(doomed);
}
