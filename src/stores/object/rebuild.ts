/**
 * `rebuildIndexes` on an object store: rewrites the run's runs-by-name entry from its tip when it
 * is missing, and removes what no committed tip references: objects under `runs/<id>/` (left by
 * crashed or lost writes) and their orphan claims. Meant for `cairn repair` with no writer active:
 * a write in flight has objects its tip does not reference yet, and would lose them.
 */
import type { ObjectContext } from "./context.js";
import { listAll } from "./delete-run.js";
import { claimKey, cpKey, indexKey, outKey, parseCpKey, runPrefix } from "./keys.js";
import { loadManifest, mapLimit } from "./manifest.js";
import { indexBody } from "./put.js";
import { readClaim } from "./records.js";
import { liveTip } from "./tip.js";

/** Rebuilds the run's index entry and removes unreferenced objects; one line per thing done. */
export async function rebuildIndexes(ctx: ObjectContext, runId: string): Promise<string[]> {
  const { client } = ctx;
  const done: string[] = [];
  const tip = liveTip((await ctx.tips.read(runId)).tip);
  if (!tip) return done;
  if (tip.name !== null && tip.createdAt !== null) {
    const key = indexKey(tip.name, tip.createdAt, runId);
    if (!(await client.get(key))) {
      await client.put(key, indexBody(runId, tip.name, tip.createdAt));
      done.push(`rebuilt the runs-by-name entry of ${runId} (${tip.name}, created ${tip.createdAt})`);
    }
  }
  const manifest = await loadManifest(client, tip);
  const referenced = new Set([
    ...manifest.cps.map((c) => cpKey(runId, c[1], c[2])),
    ...manifest.outs.map((h) => outKey(runId, h)),
    ...tip.pages.map((p) => p.key),
  ]);
  const unreferenced = (await listAll(ctx, runPrefix(runId))).filter((k) => !referenced.has(k));
  if (unreferenced.length === 0) return done;
  const listed = new Set(manifest.cps.map((c) => c[1]));
  const orphanIds = [...new Set(unreferenced.flatMap((k) => parseCpKey(k)?.checkpointId ?? []))].filter(
    (id) => !listed.has(id),
  );
  const claims = await mapLimit(orphanIds, 32, async (id) =>
    (await readClaim(client, id))?.claim?.run === runId ? [claimKey(id)] : [],
  );
  await client.deleteMany([...unreferenced, ...claims.flat()]);
  for (const key of unreferenced)
    done.push(`removed ${key}: no committed checkpoint of ${runId} refers to it`);
  for (const key of claims.flat()) done.push(`removed the orphan claim ${key} of run ${runId}`);
  return done;
}
