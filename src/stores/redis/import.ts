/** The Redis store's `importRun`: the arguments of the import script and the reading of its reply. */
import { CheckpointConflictError, StoreOperationError } from "../../core/errors.js";
import { PIPELINE_COMPLETE_STAGE } from "../../core/types.js";
import type { ImportedCheckpoint, ImportRunOptions } from "../types.js";
import { type RedisKeys, runMember } from "./keys.js";
import type { ScriptRunner } from "./runs-index.js";

/** Stores a whole run with one script; see `import-script.ts`. */
export async function importRun(
  runScript: ScriptRunner,
  k: RedisKeys,
  ttlSeconds: number,
  feedRetention: number,
  pipelineId: string,
  checkpoints: readonly ImportedCheckpoint[],
  options: ImportRunOptions,
): Promise<void> {
  const first = (checkpoints[0] as ImportedCheckpoint).record.metadata;
  // The head names the newest write as `put` would leave it: of equal sequences, the later one.
  let tip = first;
  for (const { record } of checkpoints) if (record.metadata.sequence >= tip.sequence) tip = record.metadata;
  const finished = checkpoints.some((c) => c.record.metadata.stage_name === PIPELINE_COMPLETE_STAGE);
  const args: (string | number)[] = [k.index(pipelineId), k.outputs(pipelineId), k.runs, k.head(pipelineId)];
  args.push(k.runKey(pipelineId), k.feed);
  args.push(k.prefix, ttlSeconds, pipelineId, options.replace ? "1" : "0", checkpoints.length);
  args.push(
    first.pipeline_name,
    first.timestamp,
    runMember(first.timestamp, pipelineId),
    finished ? "1" : "0",
  );
  args.push(tip.checkpoint_id, tip.sequence, tip.checksum);
  args.push(options.runKey === undefined ? "0" : "1", options.runKey ?? "", feedRetention);
  for (const { record } of checkpoints) {
    const m = record.metadata;
    args.push(m.checkpoint_id, m.sequence, JSON.stringify(m), record.body);
  }
  const seen = new Set<string>();
  for (const { outputs } of checkpoints) {
    for (const o of outputs) {
      if (seen.has(o.hash)) continue;
      seen.add(o.hash);
      args.push(o.hash, o.body);
    }
  }
  const reply = (await runScript("importRun", "importRun", ...args)) as string[];
  if (reply[0] === "ok") return;
  if (reply[0] === "exists")
    throw new CheckpointConflictError(pipelineId, `Run ${pipelineId} already exists in the store`);
  if (reply[0] === "conflict") throw new CheckpointConflictError(String(reply[1]));
  throw new StoreOperationError("redis", "importRun", {
    cause: new Error(`key ${reply[1]} holds a ${reply[2]}, which cairn did not write`),
  });
}
