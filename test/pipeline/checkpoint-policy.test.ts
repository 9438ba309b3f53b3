/**
 * `checkpointPolicy: "auto"` on a history seeded with recorded stage timings: the run skips the
 * checkpoint after a stage exactly where the Young–Daly rule `W · p < C` says so, never next to
 * a stage with side effects nor at the end, and skips nothing while the history is too short.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline } from "../../src/index.js";
import { writeTimedRun } from "../support/timed-runs.js";

let dir: string;
let manager: CheckpointManager;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-policy-"));
  manager = new CheckpointManager({ store: `sqlite:${join(dir, "c.db")}` });
});
afterEach(async () => {
  await manager.close();
  await rm(dir, { recursive: true, force: true });
});

const STAGES = ["a", "b", "c", "d", "e"];

/**
 * Recorded history: a takes 10 ms, b 2,000 ms, every checkpoint 50 ms; c failed in the newest
 * of four runs. So after a: W = 10, p(b) = 0 → W·p = 0 < C = 50: skip. After b: W = 2,010
 * (a's checkpoint was skipped), p(c) = 0.3 → 603 ≥ 50: write. After c: d has side effects:
 * write. After d: it has side effects itself: write. After e: the end: write.
 */
async function seed(runs: number): Promise<void> {
  for (let r = 0; r < runs; r++) {
    const failC = r === runs - 1;
    const executions = [
      { stage: "a", durationMs: 10, checkpointMs: 50 },
      { stage: "b", durationMs: 2000, checkpointMs: 50 },
      failC ? { stage: "c", durationMs: 5, failed: true } : { stage: "c", durationMs: 5, checkpointMs: 50 },
      ...(failC
        ? []
        : [
            { stage: "d", durationMs: 5, checkpointMs: 50 },
            { stage: "e", durationMs: 5, checkpointMs: 50 },
          ]),
    ];
    await writeTimedRun(manager, `policy_run${r}`, "policy", STAGES, executions, {
      startMs: Date.UTC(2026, 0, 1 + r),
    });
  }
}

function pipeline(policy: "auto" | "every-stage", durability: "sync" | "async" = "sync"): Pipeline {
  return new Pipeline({
    name: "policy",
    checkpointEnabled: true,
    checkpointStore: manager,
    checkpointPolicy: policy,
    durability,
    steps: STAGES.map((name) => ({
      name,
      agent: () => ({ stage: name }),
      ...(name === "d" ? { sideEffects: true } : {}),
    })),
  });
}

async function writtenStages(runId: string): Promise<string[]> {
  return (await manager.getCheckpointHistory(runId))
    .sort((x, y) => x.sequence - y.sequence)
    .map((m) => m.stageName);
}

describe("checkpointPolicy auto", () => {
  it("learned costs decide: the checkpoint after a is skipped, every other one is written", async () => {
    await seed(4);
    const learned = await manager.learnCosts("policy");
    // The premises of the expected decisions, from the store.
    expect(learned.stages.b?.failureRate).toBe(0);
    expect(learned.stages.c?.failureRate).toBeCloseTo(0.3);
    expect(learned.stages.a?.checkpointMs).toBe(50);
    for (const durability of ["sync", "async"] as const) {
      const result = await pipeline("auto", durability).execute({ resume: false });
      expect(await writtenStages(result.pipelineId)).toEqual(["b", "c", "d", "e", "pipeline_complete"]);
      expect(result.stepsResults.a?.checkpointId).toBeUndefined();
      // The skipped stage's output is still held by the next checkpoint.
      const b = await manager.loadCheckpoint(result.stepsResults.b?.checkpointId as string);
      expect(b.completedStages).toEqual(["a", "b"]);
    }
    const every = await pipeline("every-stage").execute({ resume: false });
    expect(await writtenStages(every.pipelineId)).toEqual(["a", "b", "c", "d", "e", "pipeline_complete"]);
  });

  it("a paused run still saves the stage whose checkpoint was skipped", async () => {
    await seed(4);
    const steps = STAGES.map((name) => ({
      name,
      agent: () => {
        if (name === "a") paused.pause();
        return { stage: name };
      },
    }));
    const paused: Pipeline = new Pipeline({
      name: "policy",
      checkpointEnabled: true,
      checkpointStore: manager,
      checkpointPolicy: "auto",
      steps,
    });
    const result = await paused.execute({ resume: false });
    expect(result.status).toBe("paused");
    const history = await manager.getCheckpointHistory(result.pipelineId);
    expect(history.map((m) => `${m.stageName}:${m.status}`)).toEqual(["a:in_progress"]);
  });

  it("too short a history: nothing is skipped", async () => {
    await seed(2);
    const result = await pipeline("auto").execute({ resume: false });
    expect(await writtenStages(result.pipelineId)).toEqual(["a", "b", "c", "d", "e", "pipeline_complete"]);
  });
});
