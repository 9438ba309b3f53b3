/**
 * One definition of valid and one vocabulary across commands: `chain`, `list`, `stats` and
 * `validate` agree on a hand-edited checkpoint, and a quarantined checkpoint is a handled problem
 * (`validate` reports it and exits 0, or 4 with `--strict`).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { runCairn } from "../support/cli.js";
import { checkpointFile } from "../support/file-store.js";

let dir: string;
let basePath: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cli-vocab-"));
  basePath = join(dir, "checkpoints");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cairn = (...args: string[]) => runCairn([...args, "--base-path", basePath], { cwd: dir });

const STAGES = ["extract", "transform", "load"];

/** Writes checkpoints for the given stages of `etl` (all `completed`); returns their ids. */
async function writeStages(manager: CheckpointManager, from: number, to: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = from; i < to; i++) {
    ids.push(
      await manager.createCheckpoint({
        pipelineId: "etl",
        stageName: STAGES[i] as string,
        stageIndex: i,
        stateData: { total: (i + 1) * 100 },
        completedStages: STAGES.slice(0, i + 1),
        pendingStages: STAGES.slice(i + 1),
        agentOutputs: Object.fromEntries(STAGES.slice(0, i + 1).map((s) => [s, { rows: [s] }])),
        status: "completed",
      }),
    );
  }
  return ids;
}

/** Edits the stored state of a checkpoint, so its checksum no longer matches. */
async function tamper(checkpointId: string): Promise<void> {
  const path = await checkpointFile(basePath, "etl", checkpointId);
  const text = await readFile(path, "utf8");
  expect(text).toContain('"total":300');
  await writeFile(path, text.replace('"total":300', '"total":301'));
}

describe("one definition of valid across commands", () => {
  it("chain, list, stats and validate all call a hand-edited checkpoint invalid", async () => {
    const manager = new CheckpointManager({ strategy: "file", config: { basePath } });
    const ids = await writeStages(manager, 0, 3);
    await manager.close();
    const load = ids[2] as string;
    await tamper(load);

    const validate = await cairn("validate", "--pipeline-id", "etl");
    expect(validate.code).toBe(4);
    expect(validate.stdout).toContain(load);
    expect(validate.stdout).toContain("checksum_mismatch");

    const chain = await cairn("chain", "--pipeline-id", "etl");
    expect(chain.code).toBe(0);
    const chainLine = chain.stdout.split("\n").find((l) => l.includes(load)) ?? "";
    expect(chainLine).toMatch(/^⚠ /);
    expect(chainLine).toContain("invalid (checksum_mismatch)");
    expect(chain.stdout).toContain("3 checkpoints: 2 valid, 1 invalid");

    const list = await cairn("list", "--pipeline-id", "etl");
    expect(list.code).toBe(0);
    expect(list.stdout.split("\n").find((l) => l.includes(load))).toContain("invalid (checksum_mismatch)");
    const listJson = JSON.parse((await cairn("list", "--pipeline-id", "etl", "--json")).stdout) as {
      checkpointId: string;
      check: string;
    }[];
    expect(listJson.map((c) => [c.checkpointId, c.check])).toEqual([
      [load, "invalid"],
      [ids[1], "valid"],
      [ids[0], "valid"],
    ]);

    // Runs: validity is a claim only with --verify (each run's newest checkpoint); never a false one.
    const unverified = await cairn("list");
    expect(unverified.stdout).toContain("Not verified: --verify checks each run's newest checkpoint");
    expect(unverified.stdout).not.toMatch(/\b(valid|invalid)\b/);
    const runs = await cairn("list", "--verify");
    expect(runs.stdout.split("\n").find((l) => l.startsWith("etl"))).toContain("invalid (checksum_mismatch)");
    const runsJson = JSON.parse((await cairn("list", "--verify", "--json")).stdout) as {
      latestCheck: { status: string };
    }[];
    expect(runsJson[0]?.latestCheck.status).toBe("invalid");

    const stats = await cairn("stats", "--verify");
    expect(stats.code).toBe(0);
    expect(stats.stdout).toContain("2 valid, 1 invalid (0 quarantined)");
    const statsJson = JSON.parse((await cairn("stats", "--verify", "--json")).stdout) as { check: unknown };
    expect(statsJson.check).toEqual({ valid: 2, invalid: 1, quarantined: 0 });
    const plain = await cairn("stats");
    expect(plain.stdout).toContain("validity not checked (--verify checks every checkpoint");
    expect(plain.stdout).not.toContain("Corrupt entries: 0");
    expect(JSON.parse((await cairn("stats", "--json")).stdout)).not.toHaveProperty("check");
  }, 120_000);

  it("a quarantined checkpoint is reported, not a failure, after repair and resume (--strict fails)", async () => {
    const manager = new CheckpointManager({ strategy: "file", config: { basePath } });
    const ids = await writeStages(manager, 0, 3);
    const load = ids[2] as string;
    await tamper(load);
    const repair = await cairn("repair", "--checkpoint-id", load, "--backup-dir", join(dir, "backups"));
    expect(repair.code).toBe(4);
    // Resume from the newest valid checkpoint and finish the run.
    const resumed = new CheckpointManager({ strategy: "file", config: { basePath } });
    expect((await resumed.resumePipeline("etl"))?.checkpointId).toBe(ids[1]);
    await writeStages(resumed, 2, 3);
    await resumed.close();
    await manager.close();

    const validate = await cairn("validate", "--pipeline-id", "etl");
    expect(validate.code).toBe(0);
    expect(validate.stdout).toContain(`${load} (quarantined)`);
    expect(validate.stdout).toContain("1 invalid checkpoint (1 quarantined)");
    const json = JSON.parse((await cairn("validate", "--pipeline-id", "etl", "--json")).stdout) as {
      valid: boolean;
      quarantined: number;
      problems: { checkpointId: string; quarantined: boolean }[];
    };
    expect(json.valid).toBe(true);
    expect(json.quarantined).toBe(1);
    expect(json.problems.every((p) => p.checkpointId === load && p.quarantined)).toBe(true);
    expect((await cairn("validate", "--pipeline-id", "etl", "--strict")).code).toBe(4);
    expect((await cairn("validate", "--checkpoint-id", load)).code).toBe(0);
    expect((await cairn("validate", "--checkpoint-id", load, "--strict")).code).toBe(4);

    const chain = await cairn("chain", "--pipeline-id", "etl");
    expect(chain.stdout.split("\n").find((l) => l.includes(load))).toMatch(/^⊘ .*quarantined \(/);
    const stats = JSON.parse((await cairn("stats", "--verify", "--json")).stdout) as { check: unknown };
    expect(stats.check).toEqual({ valid: 3, invalid: 1, quarantined: 1 });
  }, 120_000);
});
