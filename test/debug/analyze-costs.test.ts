/**
 * `analyzePipeline` with `costs`: the learned cost rows of the run's pipeline and where `auto`
 * would skip a checkpoint, on sqlite, PostgreSQL and Redis, from runs with recorded timings.
 */
import { afterEach, describe, expect, it } from "vitest";
import { analyzePipeline, renderAnalysisText } from "../../src/debug/analyze.js";
import { CheckpointManager, ewma } from "../../src/index.js";
import { storeUrls } from "../support/store-urls.js";
import { type TimedExecution, tickingClock, writeTimedRun } from "../support/timed-runs.js";

const { urls } = storeUrls("analyze-costs");
const STAGES = ["a", "b", "c"];
const opened: CheckpointManager[] = [];
afterEach(async () => {
  for (const m of opened.splice(0)) await m.close();
});

function open(name: string): CheckpointManager {
  const manager = new CheckpointManager({
    store: (urls[name] as () => string)(),
    clock: tickingClock(Date.UTC(2026, 0, 1)),
  });
  opened.push(manager);
  return manager;
}

const RUNS: TimedExecution[][] = [
  [
    { stage: "a", durationMs: 100, checkpointMs: 10 },
    { stage: "b", durationMs: 200, checkpointMs: 20 },
    { stage: "c", durationMs: 300, checkpointMs: 30 },
  ],
  [
    { stage: "a", durationMs: 110, checkpointMs: 10 },
    { stage: "b", durationMs: 50, checkpointMs: 20, failed: true },
    { stage: "b", durationMs: 220, checkpointMs: 20 },
    { stage: "c", durationMs: 330, checkpointMs: 30 },
  ],
  [
    { stage: "a", durationMs: 120, checkpointMs: 10 },
    { stage: "b", durationMs: 240, checkpointMs: 20 },
    { stage: "c", durationMs: 360, checkpointMs: 30 },
  ],
];

async function writeHistory(manager: CheckpointManager, tag: string, state?: Record<string, unknown>) {
  for (const [i, executions] of RUNS.entries()) {
    await writeTimedRun(manager, `${tag}-${i}`, tag, STAGES, executions, {
      startMs: Date.UTC(2026, 0, 1, i),
      ...(state ? { state } : {}),
    });
  }
}

const stores = Object.keys(urls).filter((n) => n !== "file");

describe.each(stores)("analyze costs on %s", (name) => {
  it("reports learned costs per stage and flags where auto skips, as the formula says", async () => {
    const manager = open(name);
    await writeHistory(manager, `${name}_etl`);
    expect((await analyzePipeline(manager, `${name}_etl-2`)).costs).toBeUndefined();
    const a = await analyzePipeline(manager, `${name}_etl-2`, { costs: true });
    const c = a.costs;
    expect(c).toMatchObject({ pipelineName: `${name}_etl`, alpha: 0.3, runsRead: 3, timedRuns: 3 });
    expect(c?.stages.map((s) => s.stageName)).toEqual(STAGES);
    const [sa, sb, sc] = c?.stages ?? [];
    expect(sb).toMatchObject({ samples: 4, failures: 1, checkpointMs: 20 });
    expect(sb?.durationMs).toBeCloseTo(ewma([200, 220, 240], 0.3) as number, 9);
    expect(sb?.failureRate).toBeCloseTo(ewma([0, 1, 0, 0], 0.3) as number, 9);
    // After a: W = a's duration (≈108), p = b's rate (≈0.147): W·p ≈ 16 ≥ C = 10, so checkpoint.
    expect(sa).toMatchObject({ autoSkips: false, autoReason: "worth_it" });
    expect(sa?.expectedLossMs).toBeCloseTo((sa?.durationMs as number) * (sb?.failureRate as number), 9);
    // After b: c never failed, W·p = 0 < 20: auto skips it. c is last: always written.
    expect(sb).toMatchObject({ autoSkips: true, autoReason: "not_worth_it", expectedLossMs: 0 });
    expect(sc).toMatchObject({ autoSkips: false, autoReason: "end" });
    const text = renderAnalysisText(a);
    expect(text).toContain(`Costs (learned from 3 runs of ${name}_etl, 3 with stage timings; α 0.3):`);
    expect(text).toMatch(
      /\n {2}b +216 ms +14\.7% \(1 of 4\) +20 ms +⚑ would skip the checkpoint after it \(expected loss 0 ms < 20 ms\)\n/,
    );
  });

  it("always checkpoints next to a stage the run's configuration marks with side effects", async () => {
    const manager = open(name);
    const steps = [{ name: "a" }, { name: "b" }, { name: "c", side_effects: true }];
    await writeHistory(manager, `${name}_fx`, { pipeline_config: { name: `${name}_fx`, steps } });
    const c = (await analyzePipeline(manager, `${name}_fx-0`, { costs: { runs: 3 } })).costs;
    expect(c?.stages.map((s) => [s.stageName, s.sideEffects, s.autoSkips, s.autoReason])).toEqual([
      ["a", false, false, "worth_it"],
      ["b", false, false, "side_effects"],
      ["c", true, false, "end"],
    ]);
  });
});
