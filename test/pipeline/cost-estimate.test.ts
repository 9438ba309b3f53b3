/**
 * The cost model on runs a real Pipeline wrote (sqlite): learned through `learnCosts` (recorded
 * timings once the runner writes them, timestamp deltas before), applied to the dry-run plan of
 * a failed run by `estimateRemaining`. Figures are derived from the model, never asserted as times.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import {
  CheckpointManager,
  type DryRunResult,
  estimateRemaining,
  Pipeline,
  type PlanLike,
  type RunPlan,
  StageFailedError,
} from "../../src/index.js";

// Both plan shapes are what estimateRemaining reads.
const asPlan = (plan: RunPlan | DryRunResult): PlanLike => plan;

let dir: string;
let manager: CheckpointManager;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cost-estimate-"));
  manager = new CheckpointManager({ store: `sqlite:${join(dir, "c.db")}` });
});
afterEach(async () => {
  await manager.close();
  await rm(dir, { recursive: true, force: true });
});

function pipeline(failLoad: boolean): Pipeline {
  const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  return new Pipeline({
    name: "costed",
    checkpointEnabled: true,
    checkpointStore: manager,
    steps: [
      { name: "extract", agent: () => wait(5).then(() => ({ rows: 3 })) },
      { name: "transform", agent: () => wait(5).then(() => ({ rows: 3 })) },
      {
        name: "load",
        agent: async () => {
          await wait(5);
          if (failLoad) throw new Error("load failed");
          return { loaded: 3 };
        },
      },
    ],
  });
}

it("estimates the time to finish a failed run and the time its recovery point saves", async () => {
  for (let i = 0; i < 2; i++) await pipeline(false).execute({ resume: false });
  const failed = pipeline(true);
  await expect(failed.execute({ resume: false })).rejects.toThrow(StageFailedError);

  const model = await manager.learnCosts("costed");
  expect(model.runs).toHaveLength(3);
  // The failed load is seen: one failure among its executions.
  expect(model.stages.load).toMatchObject({ failures: 1 });
  expect(model.stages.load?.failureRate).toBeGreaterThan(0);
  expect(model.stages.transform?.durationMs).toBeGreaterThanOrEqual(0);

  const plan = (await pipeline(false).execute({ dryRun: true })) as DryRunResult;
  expect(plan.stages.map((s) => [s.stageName, s.action])).toEqual([
    ["extract", "skip"],
    ["transform", "skip"],
    ["load", "run"],
  ]);
  const estimate = estimateRemaining(asPlan(plan), model);
  const duration = (stage: string) => model.stages[stage]?.durationMs ?? 0;
  expect(estimate.savedMs).toBe(duration("extract") + duration("transform"));
  const write = model.stages.load?.checkpointMs ?? model.checkpointMs ?? 0;
  expect(estimate.remainingMs).toBe(duration("load") + write);
  expect(estimate.unknown).toEqual(
    ["extract", "transform", "load"].filter((s) => model.stages[s]?.durationMs === undefined),
  );
});
