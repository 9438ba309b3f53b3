/** `cairn analyze` (the built CLI) on a sqlite store: the cost section in text and `--json`, and `--cost-runs`. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { runCairn } from "../support/cli.js";
import { tickingClock, writeTimedRun } from "../support/timed-runs.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-analyze-costs-cli-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("prints learned costs per stage and flags where auto would skip a checkpoint", async () => {
  const store = `sqlite:${join(dir, "c.db")}`;
  const manager = new CheckpointManager({ store, clock: tickingClock(Date.UTC(2026, 0, 1)) });
  try {
    for (const i of [0, 1, 2]) {
      await writeTimedRun(
        manager,
        `orders-${i}`,
        "orders",
        ["extract", "load"],
        [
          { stage: "extract", durationMs: 1000 + 100 * i, checkpointMs: 40 },
          { stage: "load", durationMs: 2000, checkpointMs: 50 },
        ],
        { startMs: Date.UTC(2026, 0, 1, i) },
      );
    }
  } finally {
    await manager.close();
  }
  const text = await runCairn(["analyze", "--pipeline-id", "orders-2", "--store", store], { cwd: dir });
  expect(text.code, text.stderr).toBe(0);
  expect(text.stdout).toContain("Costs (learned from 3 runs of orders, 3 with stage timings; α 0.3):");
  // extract: 1000 → 1030 → 1081 ms; load never failed, so W·p = 0 < 40 ms: auto skips.
  expect(text.stdout).toMatch(
    /\n {2}extract +1\.1 s +0\.0% \(0 of 3\) +40 ms +⚑ would skip the checkpoint after it \(expected loss 0 ms < 40 ms\)\n/,
  );
  expect(text.stdout).toMatch(/\n {2}load +2\.0 s +0\.0% \(0 of 3\) +50 ms +checkpoint \(end\)\n/);

  const json = await runCairn(
    ["analyze", "--pipeline-id", "orders-2", "--store", store, "--json", "--cost-runs", "1"],
    { cwd: dir },
  );
  expect(json.code, json.stderr).toBe(0);
  const costs = JSON.parse(json.stdout).costs;
  // The store's write cost: 40 then 50 → 0.3·50 + 0.7·40.
  expect(costs).toMatchObject({
    pipelineName: "orders",
    runsRead: 1,
    checkpointMs: 43,
    checkpointSamples: 2,
  });
  expect(costs.stages[0]).toMatchObject({
    stageName: "extract",
    durationMs: 1200,
    failureRate: 0,
    checkpointMs: 40,
    samples: 1,
    autoSkips: false,
    autoReason: "unknown",
  });
  const bad = await runCairn(["analyze", "--pipeline-id", "orders-2", "--store", store, "--cost-runs", "0"], {
    cwd: dir,
  });
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toContain("must be an integer from 1 to 1000");
});
