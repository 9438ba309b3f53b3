/**
 * SIGKILL of the real `cairn` CLI during `repair` (while it writes its backup) and `migrate`
 * (while the file store builds its runs index for data an older cairn wrote): readers see the
 * checkpoint either untouched or quarantined, the index either absent or whole, and running the
 * command again finishes the job and leaves no temp file behind.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { CheckpointManager, CheckpointStatus } from "../../src/index.js";
import { runCairn } from "../support/cli.js";
import { killWhen, start } from "../support/kill.js";

const TEST_TIMEOUT = 120_000;
let dir: string;
let basePath: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-sigkill-"));
  basePath = join(dir, "store");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const flags = () => ["--base-path", basePath];

it(
  "repair: a kill while the backup is written leaves the checkpoint as it was, and repairing again finishes",
  async () => {
    const manager = new CheckpointManager({ strategy: "file", config: { basePath, fsync: false } });
    const id = await manager.createCheckpoint({
      pipelineId: "damaged",
      pipelineName: "repairs",
      stageName: "load",
      stageIndex: 0,
      stateData: {},
      completedStages: ["load"],
      pendingStages: [],
      // Large, so the backup holding it takes long enough to write that the kill lands first.
      agentOutputs: { load: "x".repeat(40_000_000) },
      status: "completed",
    });
    await manager.close();
    const outputs = join(basePath, "damaged", "outputs");
    const [output] = readdirSync(outputs).filter((n) => !n.startsWith("."));
    const path = join(outputs, output as string);
    writeFileSync(path, readFileSync(path, "utf8").replace("xxxx", "yyyy"));
    const backups = join(dir, "backups");
    await mkdir(backups);
    const args = ["repair", "--checkpoint-id", id, "--backup-dir", backups, ...flags()];
    const temps = () => readdirSync(backups).filter((n) => n.endsWith(".tmp"));
    const killed = await killWhen(start(args), () => temps().length > 0, [backups]);
    expect(killed).toBe(true);
    const status = async () => {
      const reader = new CheckpointManager({ strategy: "file", config: { basePath } });
      try {
        return (await reader.getCheckpointHistory("damaged"))[0]?.status;
      } finally {
        await reader.close();
      }
    };
    expect(await status()).toBe(CheckpointStatus.Completed);
    expect(readdirSync(backups).filter((n) => !n.endsWith(".tmp"))).toEqual([]);

    // The killed repair's lease on the run lasts until it expires (30 s): until then a repair is
    // refused as CAIRN_RUN_LOCKED, as for any run whose holder may still be alive.
    let again = await runCairn(args, { cwd: dir });
    for (let i = 0; i < 60 && again.stderr.includes("CAIRN_RUN_LOCKED"); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      again = await runCairn(args, { cwd: dir });
    }
    // Exit 4: the checkpoint was corrupt and is now quarantined.
    expect(again.code, again.stderr).toBe(4);
    expect(again.stderr).toContain("quarantined");
    expect(await status()).toBe(CheckpointStatus.Expired);
    const left = readdirSync(backups);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/\.json$/);
  },
  TEST_TIMEOUT,
);

it(
  "migrate: a kill while the runs index is built leaves it unused, and migrating again builds it whole",
  async () => {
    const manager = new CheckpointManager({ strategy: "file", config: { basePath, fsync: false } });
    const runs = Array.from({ length: 300 }, (_, i) => `old-${String(i).padStart(3, "0")}`);
    for (const [i, pipelineId] of runs.entries()) {
      await manager.createCheckpoint({
        pipelineId,
        pipelineName: "legacy",
        stageName: "only",
        stageIndex: 0,
        stateData: { i },
        completedStages: ["only"],
        pendingStages: [],
        agentOutputs: {},
        status: "completed",
      });
    }
    await manager.close();
    // The layout of a cairn from before the runs-by-name index.
    await rm(join(basePath, ".runs"), { recursive: true });
    const listed = async () => {
      const result = await runCairn(["list", "--name", "legacy", "--limit", "1000", "--json", ...flags()], {
        cwd: dir,
      });
      expect(result.code, result.stderr).toBe(0);
      return (JSON.parse(result.stdout) as { runs: { pipelineId: string }[] }).runs.map((r) => r.pipelineId);
    };
    const args = ["migrate", ...flags()];
    const killed = await killWhen(start(args), () => readdirSync(basePath).includes(".runs"), [basePath]);
    expect(killed).toBe(true);
    // A reading command builds no index: until one is whole, it asks for migrate (exit 2).
    if (!existsSync(join(basePath, ".runs", ".version"))) {
      const result = await runCairn(["list", "--name", "legacy", ...flags()], { cwd: dir });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain("cairn migrate");
    } else expect((await listed()).sort()).toEqual(runs);

    const again = await runCairn(args, { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect((await listed()).sort()).toEqual(runs);
    expect(readdirSync(join(basePath, ".runs")).sort()).toEqual([".ids", ".version", "legacy"]);
  },
  TEST_TIMEOUT,
);
