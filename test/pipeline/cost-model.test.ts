/** The cost model's pure parts, from recorded durations: estimates, Young–Daly, the remaining time. */
import { describe, expect, it } from "vitest";
import {
  buildCostModel,
  type CostModel,
  checkpointWorthIt,
  estimateRemaining,
  ewma,
  InvalidArgumentError,
  planCheckpoints,
  type StageObservation,
} from "../../src/index.js";

let clock = 0;
function obs(stageName: string, durationMs: number, extra: Partial<StageObservation> = {}): StageObservation {
  clock += 1000;
  return {
    stageName,
    pipelineId: "r",
    at: clock,
    durationMs,
    failed: false,
    attempts: 1,
    approximate: false,
    ...extra,
  };
}

describe("ewma and buildCostModel", () => {
  it("weighs the newest observation by alpha, starting from the oldest", () => {
    expect(ewma([], 0.3)).toBeUndefined();
    expect(ewma([100], 0.3)).toBe(100);
    // 100 → 0.3·200 + 0.7·100 = 130 → 0.3·400 + 0.7·130 = 211
    expect(ewma([100, 200, 400], 0.3)).toBeCloseTo(211, 9);
    expect(ewma([100, 200, 400], 1)).toBe(400);
  });

  it("estimates duration over successes, failure rate over all executions, checkpoint cost per stage and store", () => {
    const list = [
      obs("extract", 100, { checkpointMs: 10 }),
      obs("extract", 200, { failed: true }),
      obs("extract", 200, { checkpointMs: 20 }),
      obs("load", 50, { checkpointMs: 40 }),
    ];
    // Given newest first: the model sorts by time.
    const model = buildCostModel("etl", [...list].reverse(), { alpha: 0.5 });
    const extract = model.stages.extract;
    expect(extract).toMatchObject({ samples: 3, failures: 1, approximate: false });
    expect(extract?.durationMs).toBeCloseTo(150, 9); // 100 then 200 (the failed run is left out)
    expect(extract?.failureRate).toBeCloseTo(0.25, 9); // 0 → 0.5·1 → 0.5·0 + 0.5·0.5
    expect(extract?.checkpointMs).toBeCloseTo(15, 9);
    expect(model.stages.load?.checkpointMs).toBe(40);
    // Store: writes 10, 20, 40 in time order → 10 → 15 → 27.5
    expect(model.checkpointMs).toBeCloseTo(27.5, 9);
    expect(model.checkpointSamples).toBe(3);
  });

  it("times a stage that never succeeded by its failures, and rejects a bad alpha", () => {
    const model = buildCostModel("etl", [obs("x", 30, { failed: true, approximate: true })]);
    expect(model.stages.x).toMatchObject({ durationMs: 30, failureRate: 1, approximate: true });
    expect(() => buildCostModel("etl", [], { alpha: 0 })).toThrow(InvalidArgumentError);
    expect(() => buildCostModel("etl", [], { minSamples: 0 })).toThrow(InvalidArgumentError);
  });
});

describe("checkpointWorthIt (Young–Daly)", () => {
  const q = { durationMs: 1000, failureRate: 0.01, checkpointMs: 50, sideEffects: false, last: false };

  it("skips exactly when W·p < C", () => {
    expect(checkpointWorthIt(q)).toEqual({
      checkpoint: false,
      reason: "not_worth_it",
      expectedLossMs: 10,
      checkpointMs: 50,
    });
    expect(checkpointWorthIt({ ...q, checkpointMs: 10 })).toMatchObject({
      checkpoint: true,
      reason: "worth_it",
    });
    expect(checkpointWorthIt({ ...q, failureRate: 0.2 })).toMatchObject({
      checkpoint: true,
      expectedLossMs: 200,
    });
  });

  it("always checkpoints at the end, next to side effects, and when something is unknown", () => {
    expect(checkpointWorthIt({ ...q, last: true })).toMatchObject({ checkpoint: true, reason: "end" });
    expect(checkpointWorthIt({ ...q, sideEffects: true })).toMatchObject({
      checkpoint: true,
      reason: "side_effects",
    });
    expect(checkpointWorthIt({ ...q, stageSideEffects: true })).toMatchObject({ reason: "side_effects" });
    for (const missing of [
      { durationMs: undefined },
      { failureRate: undefined },
      { checkpointMs: undefined },
    ]) {
      expect(checkpointWorthIt({ ...q, ...missing })).toMatchObject({ checkpoint: true, reason: "unknown" });
    }
    expect(checkpointWorthIt({ ...q, uncertain: true })).toMatchObject({
      checkpoint: true,
      reason: "unknown",
    });
  });
});

/** A model from three recorded runs of each stage (enough samples), one failure of `load`. */
function recorded(): CostModel {
  clock = 0;
  const list: StageObservation[] = [];
  for (let run = 0; run < 3; run++) {
    list.push(obs("extract", 40, { checkpointMs: 100 }));
    list.push(obs("transform", 5000, { checkpointMs: 100 }));
    list.push(obs("enrich", 30, { checkpointMs: 100 }));
    list.push(obs("load", 200, { checkpointMs: 100, failed: run === 2 }));
    if (run === 2) list.push(obs("load", 200, { checkpointMs: 100 }));
    list.push(obs("report", 20, { checkpointMs: 100 }));
  }
  return buildCostModel("etl", list);
}

describe("planCheckpoints (the auto policy along a run)", () => {
  it("skips only where W·p < C, accumulating the unsaved work", () => {
    const model = recorded();
    // load: failures 0, 0, 1, 0 → 0, 0, 0.3 (after the failure), then 0.7·0.3 = 0.21.
    const pLoad = model.stages.load?.failureRate ?? Number.NaN;
    expect(pLoad).toBeCloseTo(0.21, 9);
    const steps = planCheckpoints(
      ["extract", "transform", "enrich", "load", "report"].map((stageName) => ({ stageName })),
      model,
    );
    const byStage = Object.fromEntries(steps.map((s) => [s.stageName, s]));
    // extract: next (transform) never failed: W·0 < 100 → skip.
    expect(byStage.extract).toMatchObject({ checkpoint: false, reason: "not_worth_it", expectedLossMs: 0 });
    // transform: next (enrich) never failed → skip, though 5 s of work is unsaved.
    expect(byStage.transform).toMatchObject({ checkpoint: false, expectedLossMs: 0 });
    // enrich: W = 40 + 5000 + 30, next is load: W·p = 5070·0.21 ≈ 1065 ≥ 100 → write it.
    expect(byStage.enrich?.checkpoint).toBe(true);
    expect(byStage.enrich?.expectedLossMs).toBeCloseTo(5070 * pLoad, 6);
    // load: next (report) never failed → skip; report is last → write.
    expect(byStage.load).toMatchObject({ checkpoint: false });
    expect(byStage.report).toMatchObject({ checkpoint: true, reason: "end" });
    // Every skip agrees with the formula itself.
    for (const s of steps.filter((x) => !x.checkpoint)) {
      expect(s.expectedLossMs as number).toBeLessThan(s.checkpointMs as number);
    }
  });

  it("checkpoints before a stage with side effects and when a stage has too few samples", () => {
    const model = recorded();
    const steps = planCheckpoints(
      [
        { stageName: "extract" },
        { stageName: "transform", sideEffects: true },
        { stageName: "new_stage" },
        { stageName: "report" },
      ],
      model,
    );
    expect(steps.map((s) => [s.stageName, s.checkpoint, s.reason])).toEqual([
      ["extract", true, "side_effects"],
      ["transform", true, "side_effects"],
      ["new_stage", true, "unknown"],
      ["report", true, "end"],
    ]);
    const few = buildCostModel("etl", [obs("a", 10, { checkpointMs: 5 }), obs("b", 10, { checkpointMs: 5 })]);
    expect(planCheckpoints([{ stageName: "a" }, { stageName: "b" }], few)[0]).toMatchObject({
      checkpoint: true,
      reason: "unknown",
    });
    expect(
      planCheckpoints([{ stageName: "a" }, { stageName: "b" }], { ...few, minSamples: 1 })[0],
    ).toMatchObject({ checkpoint: false, reason: "not_worth_it" });
  });
});

describe("estimateRemaining", () => {
  it("sums what runs (with its checkpoint writes) and what the recovery point saves", () => {
    const model = recorded();
    const plan = {
      stages: [
        { stageName: "extract", action: "skip" as const },
        { stageName: "transform", action: "migrate" as const },
        { stageName: "enrich", action: "rerun" as const },
        { stageName: "load", action: "run" as const },
        { stageName: "mystery", action: "run" as const },
      ],
    };
    const e = estimateRemaining(plan, model);
    expect(e.savedMs).toBeCloseTo(40 + 5000, 6);
    expect(e.remainingMs).toBeCloseTo(30 + 100 + 200 + 100 + (model.checkpointMs ?? 0), 6);
    expect(e.unknown).toEqual(["mystery"]);
    expect(e.criticalPathMs).toBeUndefined();
  });

  it("gives the critical path when stages name their dependencies", () => {
    const model = recorded();
    const e = estimateRemaining(
      {
        stages: [
          { stageName: "extract", action: "skip", dependsOn: [] },
          { stageName: "transform", action: "run", dependsOn: ["extract"] },
          { stageName: "enrich", action: "run", dependsOn: ["extract"] },
          { stageName: "load", action: "run", dependsOn: ["transform", "enrich"] },
        ],
      },
      model,
    );
    expect(e.criticalPathMs).toBeCloseTo(5000 + 200, 6);
    expect(e.remainingMs).toBeCloseTo(5000 + 30 + 200 + 3 * 100, 6);
  });
});
