/**
 * Helpers of the replication tests: writing runs through a manager, and comparing two stores as
 * stored (listings, record texts, the outputs each record refers to, key records), beneath the
 * at-rest layer, so an encrypted or compressed copy must be byte for byte the source's.
 */
import { expect } from "vitest";
import type { CheckpointManager } from "../../src/index.js";
import { GuardedStore } from "../../src/stores/guarded-store.js";
import type { CheckpointStore } from "../../src/stores/types.js";
import { AtRestStore } from "../../src/transforms/at-rest-store.js";
import { readOutline } from "../../src/transforms/envelope.js";

/** Writes a run of `stages` checkpoints (each with the outputs so far); returns their ids. */
export async function writeRun(
  manager: CheckpointManager,
  pipelineId: string,
  stages = 3,
  name = "demo",
): Promise<string[]> {
  const ids: string[] = [];
  const names = Array.from({ length: stages }, (_, i) => `stage${i + 1}`);
  for (let i = 0; i < stages; i++) ids.push(await writeStage(manager, pipelineId, names, i, name));
  return ids;
}

/** Writes checkpoint `index` of a run with stages `names`. */
export function writeStage(
  manager: CheckpointManager,
  pipelineId: string,
  names: readonly string[],
  index: number,
  name = "demo",
): Promise<string> {
  return manager.createCheckpoint({
    pipelineId,
    pipelineName: name,
    stageName: names[index] as string,
    stageIndex: index,
    completedStages: names.slice(0, index + 1),
    pendingStages: names.slice(index + 1),
    status: "completed",
    stateData: { step: index, text: `state of ${pipelineId} after ${names[index]} `.repeat(40) },
    agentOutputs: Object.fromEntries(
      names.slice(0, index + 1).map((s) => [s, { rows: [s, pipelineId], pad: "x".repeat(300) }]),
    ),
  });
}

/** One run as stored: listing metadata, record texts and referenced outputs, and its key record. */
async function snapshot(store: CheckpointStore, pipelineId: string) {
  const listing = await store.listCheckpoints(pipelineId);
  // Opened without keys, for the output references of compressed bodies (sealed ones keep an outline).
  const layer = new AtRestStore(store instanceof GuardedStore ? store : new GuardedStore(store), {
    maxBytes: 2 ** 30,
  });
  const records: Record<string, string> = {};
  const outputs: Record<string, string> = {};
  for (const entry of listing) {
    if (!entry.ok) throw new Error(`${store.location}: run ${pipelineId} has a corrupt entry`);
    const id = entry.metadata.checkpoint_id;
    const record = await store.getCheckpoint(id);
    if (!record) throw new Error(`${store.location}: ${id} is listed but not there`);
    records[id] = record.body;
    const opened = (await layer.getCheckpoint(id)) ?? record;
    const refs = Object.values(readOutline(opened.metadata, opened.body).output_refs);
    for (const [hash, text] of await store.getOutputs(pipelineId, refs)) outputs[hash] = text;
    for (const hash of refs) if (!(hash in outputs)) throw new Error(`${store.location}: ${hash} missing`);
  }
  return {
    metadata: listing.map((e) => (e.ok ? e.metadata : undefined)),
    records,
    outputs,
    runKey: (await store.getRunKey?.(pipelineId)) ?? null,
  };
}

/** The ids of runs that hold at least one checkpoint. */
export async function runsWithCheckpoints(store: CheckpointStore): Promise<string[]> {
  const ids: string[] = [];
  for (const id of await store.listPipelineIds())
    if ((await store.listCheckpoints(id)).length > 0) ids.push(id);
  return ids;
}

/** Expects the target to hold exactly the source's runs (or `only` of them), as stored. */
export async function expectSameRuns(
  source: CheckpointStore,
  target: CheckpointStore,
  only?: readonly string[],
): Promise<void> {
  const ids = only ?? (await runsWithCheckpoints(source));
  if (!only) expect(await runsWithCheckpoints(target)).toEqual(ids);
  for (const id of ids) expect(await snapshot(target, id), `run ${id}`).toEqual(await snapshot(source, id));
}

/** Resolves once `check` returns true (checked every 20 ms, for up to `ms`). */
export async function until(check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
