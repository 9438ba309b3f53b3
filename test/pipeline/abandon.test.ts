/**
 * `pipeline.abandon()`: the running execution stops now, mid-stage, and its lease is released,
 * so another runner resumes the run at once instead of after the lease's TTL (what a second
 * Ctrl+C of `cairn run` does before exiting).
 */
import { expect, it } from "vitest";
import { CheckpointManager, LeaseLostError, RunLockedError } from "../../src/index.js";
import { slowPipeline } from "../support/pipelines.js";

it("stops the execution and releases its lease: another runner resumes the run at once", async () => {
  const manager = new CheckpointManager({ store: "memory:abandon" });
  try {
    const { pipeline, waiting, finish } = slowPipeline(manager);
    const running = pipeline.execute({ runId: "r1" });
    running.catch(() => undefined);
    await waiting;
    // Another runner of the same pipeline, whose load stage does not wait.
    const second = slowPipeline(manager);
    second.finish();
    const other = second.pipeline;
    // While the first runner holds the lease, the run is locked.
    await expect(other.execute({ runId: "r1" })).rejects.toBeInstanceOf(RunLockedError);
    await pipeline.abandon();
    await expect(running).rejects.toBeInstanceOf(LeaseLostError);
    const resumed = await other.execute({ runId: "r1" });
    expect(resumed.skippedStages).toEqual(["extract"]);
    expect(resumed.finalOutputs.load).toEqual({ loaded: 3 });
    finish(); // the abandoned agent returns into nothing: its run is no longer this runner's
    expect(await manager.getCheckpointHistory("r1")).toHaveLength(3);
  } finally {
    await manager.close();
  }
});

it("does nothing when no execution is running", async () => {
  const manager = new CheckpointManager({ store: "memory:abandon-idle" });
  const { pipeline, finish } = slowPipeline(manager);
  finish();
  await pipeline.abandon();
  expect((await pipeline.execute({ runId: "r2" })).status).toBe("completed");
  await manager.close();
});
