/**
 * A manager remembers the last checkpoint it wrote per run (so the next write need not read it
 * back), for a bounded number of runs: a long-lived process writing many runs does not grow.
 */
import { describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";

describe("the manager's remembered tips", () => {
  it("forgets the runs written longest ago beyond 1,000, which then read their parent once", async () => {
    const store = new MemoryStore();
    const manager = new CheckpointManager({ store });
    const reads: string[] = [];
    const latest = store.getLatestCheckpoint.bind(store);
    store.getLatestCheckpoint = async (pipelineId) => {
      reads.push(pipelineId);
      return latest(pipelineId);
    };
    const write = (run: number) =>
      manager.createCheckpoint({ pipelineId: `run-${run}`, stageName: "s", stageIndex: 0 });
    for (let run = 0; run <= 1000; run++) await write(run);
    expect(reads).toHaveLength(1001); // each run's first write reads its (absent) parent
    reads.length = 0;
    await write(1000); // remembered
    await write(1); // remembered: run-0 was the one forgotten
    expect(reads).toEqual([]);
    await write(0);
    expect(reads).toEqual(["run-0"]);
    expect((await manager.getCheckpointHistory("run-0")).map((m) => m.sequence)).toEqual([2, 1]);
  });
});
