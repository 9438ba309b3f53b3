/**
 * `cairn upgrade` SIGKILLed part-way: running it again finishes the job at once (the killed
 * upgrade's lease is ended, not waited out), and every run ends with exactly one new checkpoint.
 */
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { CheckpointManager, FORMAT_VERSION } from "../../src/index.js";
import { runCairn } from "../support/cli.js";
import { killWhen, start } from "../support/kill.js";
import { rewriteAsFormat1 } from "../support/old-format.js";

let dir: string;
let basePath: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-sigkill-upgrade-"));
  basePath = join(dir, "store");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it.skipIf(FORMAT_VERSION < 2)(
  "a killed upgrade is finished by running it again; each run gets one new checkpoint",
  async () => {
    const manager = new CheckpointManager({ strategy: "file", config: { basePath, fsync: false } });
    const runs = Array.from({ length: 60 }, (_, i) => `old-${String(i).padStart(2, "0")}`);
    try {
      for (const pipelineId of runs) {
        await manager.createCheckpoint({
          pipelineId,
          pipelineName: "legacy",
          stageName: "only",
          stageIndex: 0,
          stateData: { pipelineId },
          completedStages: ["only"],
          pendingStages: [],
          agentOutputs: { only: { rows: [1, 2, 3] } },
          status: "completed",
        });
        await rewriteAsFormat1(manager, pipelineId);
      }
    } finally {
      await manager.close();
    }
    const leases = join(basePath, ".leases");
    const taken = () =>
      existsSync(leases) ? readdirSync(leases).filter((n) => n.endsWith(".json")).length : 0;
    const flags = ["--base-path", basePath];
    const killed = await killWhen(start(["upgrade", "--all", ...flags]), () => taken() >= 5);
    expect(killed).toBe(true);

    const again = await runCairn(["upgrade", "--all", "--json", ...flags], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    const report = JSON.parse(again.stdout) as { upgraded: unknown[]; current: string[]; skipped: unknown[] };
    expect(report.skipped).toEqual([]);
    expect(report.upgraded.length + report.current.length).toBe(runs.length);
    expect(report.upgraded.length).toBeGreaterThan(0);

    const reader = new CheckpointManager({ strategy: "file", config: { basePath } });
    try {
      for (const pipelineId of runs) {
        const listing = await reader.listRun(pipelineId);
        expect(listing.map((e) => e.ok && e.metadata.format_version)).toEqual([1, FORMAT_VERSION]);
      }
    } finally {
      await reader.close();
    }
    const validate = await runCairn(["validate", "--all", ...flags], { cwd: dir });
    expect(validate.code, validate.stdout).toBe(0);
  },
  120_000,
);
