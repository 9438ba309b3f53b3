/**
 * A confirmed cleanup never deletes outside its preview: the retention pass narrowed to the
 * previewed checkpoints leaves the others, even ones the options would select now.
 */
import { expect, it } from "vitest";
import { CheckpointManager, Pipeline } from "../../src/index.js";
import { CHANGED_REASON, cleanupOldCheckpoints, cleanupRuns } from "../../src/manager/retention.js";
import { selectCleanup, selectionSignature } from "../../src/ui/cleanup-plan.js";

function oldClock(): () => Date {
  let t = Date.UTC(2024, 0, 1);
  return () => {
    t += 1000;
    return new Date(t);
  };
}

it("the retention pass narrowed to a set deletes only that set", async () => {
  const manager = new CheckpointManager({ strategy: "memory", clock: oldClock() });
  const steps = ["a", "b", "c"].map((name) => ({ name, agent: () => ({ name }) }));
  const { pipelineId } = await new Pipeline({
    name: "narrow",
    checkpointEnabled: true,
    checkpointStore: manager,
    steps,
  }).execute();
  const ids = (await manager.getCheckpointHistory(pipelineId)).map((c) => c.checkpointId).reverse();
  const now = new Date();
  const selection = await selectCleanup(manager, { olderThanDays: 1, completedOnly: true }, now);
  expect(selection.runs).toEqual([
    expect.objectContaining({ pipelineId, wholeRun: true, checkpoints: ids.length }),
  ]);
  expect(selectionSignature(selection)).toBe(
    selectionSignature(await selectCleanup(manager, { olderThanDays: 1, completedOnly: true }, now)),
  );

  const only = new Set(ids.slice(0, 2));
  const report = await cleanupOldCheckpoints(
    await manager.getStore(),
    { retentionDays: 1, pipelineId },
    now,
    only,
  );
  expect(report.deletedCheckpoints.map((d) => d.checkpointId)).toEqual(ids.slice(0, 2));
  expect(report.removedRuns).toEqual([]);
  expect((await manager.getCheckpointHistory(pipelineId)).map((c) => c.checkpointId).reverse()).toEqual(
    ids.slice(2),
  );
  await manager.close();
});

it("a previewed whole run whose listing changed is refused under its lease, and kept", async () => {
  const manager = new CheckpointManager({ strategy: "memory" });
  const steps = ["a", "b"].map((name) => ({ name, agent: () => ({ name }) }));
  const { pipelineId } = await new Pipeline({
    name: "whole",
    checkpointEnabled: true,
    checkpointStore: manager,
    steps,
  }).execute();
  const ids = (await manager.getCheckpointHistory(pipelineId)).map((c) => c.checkpointId);
  const store = await manager.getStore();
  // The preview saw one checkpoint fewer than the run holds now.
  const stale = new Map([[pipelineId, new Set(ids.slice(1))]]);
  const refused = await cleanupRuns(store, [pipelineId], false, false, stale);
  expect(refused.refused).toEqual([{ pipelineId, reason: CHANGED_REASON }]);
  expect(await manager.getCheckpointHistory(pipelineId)).toHaveLength(ids.length);
  const exact = new Map([[pipelineId, new Set(ids)]]);
  const deleted = await cleanupRuns(store, [pipelineId], false, false, exact);
  expect(deleted.deleted).toEqual([{ pipelineId, checkpoints: ids.length, finished: true }]);
  await manager.close();
});
