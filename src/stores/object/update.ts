/**
 * `updateCheckpoint`: the status fields live in the cp object, not in the tip, so a status patch
 * is a compare-and-swap of the cp object itself (claim → run → tip → entry → GET → PUT ifMatch),
 * retried from the claim on a lost swap (a replacing import may have moved the id meanwhile).
 */
import { CheckpointCorruptError, CheckpointNotFoundError } from "../../core/errors.js";
import { applyPatch } from "../../core/record.js";
import type { StatusPatch } from "../types.js";
import type { ObjectContext } from "./context.js";
import { cpKey } from "./keys.js";
import { locate, readClaim, recordProblem } from "./records.js";
import { backoff, contentionError, MAX_ATTEMPTS } from "./tip.js";

/** Patches the mutable fields of a checkpoint; `CheckpointNotFoundError` when absent. */
export async function updateCheckpoint(
  ctx: ObjectContext,
  checkpointId: string,
  patch: StatusPatch,
): Promise<void> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt > 0) await backoff(attempt);
    const found = await readClaim(ctx.client, checkpointId);
    const held = found?.claim && (await locate(ctx.client, ctx.tips, checkpointId, found.claim));
    if (!held) throw new CheckpointNotFoundError(checkpointId);
    const key = cpKey(held.runId, checkpointId, held.entry[2]);
    const got = await ctx.client.get(key);
    if (!got) throw new CheckpointCorruptError(checkpointId, `${key}: the object is missing`);
    const parsed = recordProblem(got.body.toString("utf8"), held.runId, checkpointId);
    if ("problem" in parsed) throw new CheckpointCorruptError(checkpointId, `${key}: ${parsed.problem}`);
    const record = { metadata: applyPatch(parsed.record.metadata, patch), body: parsed.record.body };
    if ((await ctx.client.put(key, JSON.stringify(record), { ifMatch: got.etag })).ok) return;
  }
  throw contentionError(ctx.strategy, "updateCheckpoint", checkpointId);
}
