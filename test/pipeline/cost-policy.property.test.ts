/**
 * The `auto` policy along random recorded histories: every skip is one the Young–Daly formula
 * makes (W·p < C, with W the work since the last checkpoint written), and no checkpoint is
 * skipped at the end, next to a stage with side effects, or on too few observations.
 */
import fc from "fast-check";
import { expect, it } from "vitest";
import { buildCostModel, planCheckpoints, type StageObservation } from "../../src/index.js";

const stageArb = fc.record({
  durations: fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 0, maxLength: 6 }),
  // One execution in five fails: rare enough that checkpoints get skipped and the work since adds up.
  failures: fc.array(
    fc.integer({ min: 0, max: 4 }).map((x) => x === 0),
    { minLength: 6, maxLength: 6 },
  ),
  writeMs: fc.integer({ min: 0, max: 2000 }),
  sideEffects: fc.boolean(),
});

it("skips exactly where the formula says, never at the end, next to side effects or when uncertain", () => {
  fc.assert(
    fc.property(fc.array(stageArb, { minLength: 1, maxLength: 7 }), fc.boolean(), (stages, recordWrites) => {
      const names = stages.map((_, i) => `s${i}`);
      const observations: StageObservation[] = stages.flatMap((s, i) =>
        s.durations.map((durationMs, k) => ({
          stageName: names[i] as string,
          pipelineId: `r${k}`,
          at: k * 1000 + i,
          durationMs,
          failed: s.failures[k] === true,
          attempts: 1,
          ...(recordWrites ? { checkpointMs: s.writeMs } : {}),
          approximate: false,
        })),
      );
      const model = buildCostModel("p", observations);
      const policy = stages.map((s, i) => ({ stageName: names[i] as string, sideEffects: s.sideEffects }));
      const steps = planCheckpoints(policy, model);
      let unsaved = 0;
      for (const [i, step] of steps.entries()) {
        const here = model.stages[names[i] as string];
        const next = names[i + 1] === undefined ? undefined : model.stages[names[i + 1] as string];
        unsaved += here?.durationMs ?? Number.NaN;
        const forced =
          i === steps.length - 1 ||
          stages[i]?.sideEffects === true ||
          stages[i + 1]?.sideEffects === true ||
          (here?.samples ?? 0) < model.minSamples ||
          (next?.samples ?? 0) < model.minSamples ||
          !recordWrites;
        if (forced) expect(step.checkpoint).toBe(true);
        else {
          const loss = unsaved * (next?.failureRate as number);
          const c = here?.checkpointMs as number;
          expect(step.expectedLossMs).toBeCloseTo(loss, 6);
          expect(step.checkpoint).toBe(!(loss < c));
        }
        if (step.checkpoint) unsaved = 0;
      }
    }),
    { numRuns: 500 },
  );
});
