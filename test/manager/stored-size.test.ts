/** `getStatistics` reports the bytes a store holds (each output once), beside the checkpoints' logical sizes. */
import { describe, expect, it } from "vitest";
import { parseBody } from "../../src/core/formats.js";
import { CheckpointManager } from "../../src/index.js";
import type { CheckpointStore } from "../../src/stores/types.js";
import { storeUrls } from "../support/store-urls.js";

const { urls } = storeUrls("stored-size");
const STAGES = ["s1", "s2", "s3", "s4", "s5", "s6", "s7"];
const outputOf = (stage: string) => ({ rows: `${stage}:`.repeat(3000) });

/** What the store holds, read back whole: every record body, and every distinct output once. */
async function heldBytes(store: CheckpointStore, pipelineId: string): Promise<number> {
  let total = 0;
  const hashes = new Set<string>();
  for (const entry of await store.listCheckpoints(pipelineId)) {
    if (!entry.ok) continue;
    const record = await store.getCheckpoint(entry.metadata.checkpoint_id);
    if (!record) continue;
    total += Buffer.byteLength(record.body);
    for (const hash of Object.values(parseBody(record.metadata, record.body).output_refs)) hashes.add(hash);
  }
  for (const text of (await store.getOutputs(pipelineId, [...hashes])).values())
    total += Buffer.byteLength(text);
  return total;
}

describe.each(Object.keys(urls))("storedDataSize (%s)", (name) => {
  it("counts each output once: a pipeline run's stages, and outputs that arrive or repeat together", async () => {
    const manager = new CheckpointManager({ store: (urls[name] as () => string)() });
    try {
      // A pipeline run: each checkpoint carries the outputs of every stage so far.
      for (const [i, stage] of STAGES.entries()) {
        await manager.createCheckpoint({
          pipelineId: "wide",
          stageName: stage,
          stageIndex: i,
          stateData: { i },
          completedStages: STAGES.slice(0, i + 1),
          pendingStages: STAGES.slice(i + 1),
          agentOutputs: Object.fromEntries(STAGES.slice(0, i + 1).map((s) => [s, outputOf(s)])),
          status: "completed",
        });
      }
      // Several new outputs in one checkpoint, and one output under two stages.
      const together = { a: outputOf("a"), b: outputOf("b"), c: outputOf("c") };
      await manager.createCheckpoint({
        pipelineId: "odd",
        stageName: "one",
        stageIndex: 0,
        stateData: {},
        agentOutputs: together,
      });
      await manager.createCheckpoint({
        pipelineId: "odd",
        stageName: "two",
        stageIndex: 1,
        stateData: {},
        agentOutputs: { ...together, d: outputOf("a"), e: outputOf("e") },
      });

      const stats = await manager.getStatistics();
      const store = await manager.getStore();
      const held = (await heldBytes(store, "wide")) + (await heldBytes(store, "odd"));
      expect(stats.storedDataSize).toBe(held);
      // 7 stages refer to 28 outputs of which 7 are distinct.
      expect(stats.storedDataSize).toBeLessThan(stats.totalDataSize / 2.5);
    } finally {
      await manager.close();
    }
  });
});
