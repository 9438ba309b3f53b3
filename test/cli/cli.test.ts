import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, type CheckpointManagerOptions } from "../../src/index.js";
import { type CliResult, runCairn } from "../support/cli.js";
import { checkpointFile as fileOf } from "../support/file-store.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

/** Runs the built CLI; resolves with its exit code and output, whatever the code. */
function cairn(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<CliResult> {
  return runCairn(args, { cwd: options.cwd ?? dir, env: options.env ?? {} });
}

let dir: string;
let basePath: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cli-"));
  basePath = join(dir, "checkpoints");
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes a three-stage run with two checkpoints; returns their ids, oldest first. */
async function makeRun(
  pipelineId: string,
  options: CheckpointManagerOptions = { strategy: "file", config: { basePath } },
): Promise<string[]> {
  const manager = new CheckpointManager(options);
  try {
    const first = await manager.createCheckpoint({
      pipelineId,
      stageName: "extract",
      stageIndex: 0,
      stateData: { source: "orders.csv", attempt: 1 },
      completedStages: ["extract"],
      pendingStages: ["transform", "load"],
      agentOutputs: { extract: { rows: [1, 2, 3] } },
    });
    const second = await manager.createCheckpoint({
      pipelineId,
      stageName: "transform",
      stageIndex: 1,
      stateData: { source: "orders.csv", attempt: 1 },
      completedStages: ["extract", "transform"],
      pendingStages: ["load"],
      agentOutputs: { extract: { rows: [1, 2, 3] }, transform: { total: 6 } },
    });
    return [first, second];
  } finally {
    await manager.close();
  }
}

/** The file of a checkpoint in the file store: `<basePath>/<run>/<sequence>-<id>.json`. */
function checkpointFile(pipelineId: string, checkpointId: string): Promise<string> {
  return fileOf(basePath, pipelineId, checkpointId);
}

const store = () => ["--base-path", basePath];

describe("help, version and usage errors", () => {
  it("prints help for the program and for each command", async () => {
    const top = await cairn(["--help"]);
    expect(top.code).toBe(0);
    for (const name of ["list", "inspect", "validate", "stats", "export", "import", "cleanup", "chain"]) {
      expect(top.stdout).toContain(name);
    }
    expect(top.stdout).toContain("Exit codes");
    const inspect = await cairn(["inspect", "--help"]);
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).toContain("--checkpoint-id");
    expect(inspect.stdout).toContain("$ cairn inspect");
  });

  it("prints the version from package.json", async () => {
    const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { version: string };
    const result = await cairn(["--version"]);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(pkg.version);
  });

  it("exits 2 on an unknown flag, a missing required flag, an unknown command or no command", async () => {
    const unknownFlag = await cairn(["list", "--bogus", ...store()]);
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr).toContain("--bogus");
    const missing = await cairn(["inspect", ...store()]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--checkpoint-id");
    expect((await cairn(["frobnicate"])).code).toBe(2);
    expect((await cairn([])).code).toBe(2);
  });

  it("rejects conflicting store flags up front", async () => {
    const both = await cairn(["list", "--store", `file:${basePath}`, "--strategy", "file"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^cairn: --store cannot be combined with --strategy/);
    expect((await cairn(["list", "--strategy", "sqlite", "--base-path", basePath])).code).toBe(2);
    expect((await cairn(["list", "--store", "nosuch:x"])).code).toBe(2);
  });

  it("needs exactly one scope for validate and one mode for cleanup", async () => {
    expect((await cairn(["validate", ...store()])).code).toBe(2);
    expect((await cairn(["validate", "--all", "--pipeline-id", "p", ...store()])).code).toBe(2);
    expect((await cairn(["cleanup", ...store()])).code).toBe(2);
    expect((await cairn(["cleanup", "--retention-days", "1", "--pipeline-id", "p", ...store()])).code).toBe(
      2,
    );
    expect((await cairn(["cleanup", "--retention-days", "-3", ...store()])).code).toBe(2);
  });

  it("treats an invalid name as a usage error and prints no stack trace", async () => {
    const result = await cairn(["inspect", "--checkpoint-id", "../etc", ...store()]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("CAIRN_INVALID_NAME");
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("list, inspect, chain and stats", () => {
  it("inspect of an unknown id exits 3 with a message on stderr", async () => {
    await makeRun("run-a");
    const result = await cairn(["inspect", "--checkpoint-id", "no-such-checkpoint", ...store()]);
    expect(result.code).toBe(3);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/^cairn: .*no-such-checkpoint.*CAIRN_NOT_FOUND/);
  });

  it("lists runs as a table and as JSON, and a run's checkpoints newest first", async () => {
    const [first, second] = await makeRun("run-a");
    const table = await cairn(["list", ...store()]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/PIPELINE ID\s+NAME\s+STATUS/);
    // Unfinished and no runner holds its lease.
    expect(table.stdout).toMatch(/run-a\s+run-a\s+paused\s+2\/3\s+2/);

    const json = await cairn(["list", "--json", ...store()]);
    expect(json.code).toBe(0);
    const runs = JSON.parse(json.stdout) as {
      pipelineId: string;
      checkpointCount: number;
      lastTimestamp: string;
    }[];
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ pipelineId: "run-a", checkpointCount: 2 });
    expect(runs[0]?.lastTimestamp).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);

    const history = await cairn(["list", "--pipeline-id", "run-a", ...store()]);
    expect(history.code).toBe(0);
    expect(history.stdout.indexOf(second as string)).toBeLessThan(history.stdout.indexOf(first as string));
    expect(history.stdout).toMatch(/SEQ\s+STAGE\s+STATUS\s+TIME\s+SIZE\s+CHECK\s+CHECKPOINT ID/);

    expect((await cairn(["list", "--pipeline-id", "run-zzz", ...store()])).code).toBe(3);
  });

  it("inspect shows metadata, stages, state keys, outputs, parent and children", async () => {
    const [first, second] = await makeRun("run-a");
    const result = await cairn(["inspect", "--checkpoint-id", first as string, ...store()]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Completed stages: extract");
    expect(result.stdout).toContain("Pending stages:   transform, load");
    expect(result.stdout).toContain("State keys:       attempt, source");
    expect(result.stdout).toMatch(/extract\s+\d+ B/);
    expect(result.stdout).toContain(`Children: ${second}`);
    expect(result.stdout).toContain("Validation: valid");

    const json = await cairn(["inspect", "--checkpoint-id", second as string, "--json", ...store()]);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      readable: true,
      completedStages: ["extract", "transform"],
      pendingStages: ["load"],
      parentCheckpointId: first,
      parentInStore: true,
      children: [],
      validation: { valid: true, problems: [] },
    });
    expect((report.outputs as { stage: string }[]).map((o) => o.stage)).toEqual(["extract", "transform"]);
  });

  it("numbers a checkpoint the same way in every command: #sequence, and the stage by its index", async () => {
    const [, second] = await makeRun("run-n");
    // As a runner would: monitor shows a run's current checkpoint only while its lease is held.
    const runner = new CheckpointManager({ strategy: "file", config: { basePath } });
    expect((await (await runner.getStore()).acquireLease("run-n", "test-runner", 600_000)).acquired).toBe(
      true,
    );
    await runner.close();
    const outputs = await Promise.all([
      cairn(["inspect", "--checkpoint-id", second as string, ...store()]),
      cairn(["chain", "--pipeline-id", "run-n", ...store()]),
      cairn(["report", "--pipeline-id", "run-n", ...store()]),
      cairn(["monitor", "--once", ...store()]),
      cairn([
        "compare",
        "--checkpoint-id",
        second as string,
        "--checkpoint-id",
        second as string,
        ...store(),
      ]),
    ]);
    for (const { stdout } of outputs) {
      // transform is stage index 1 and the run's checkpoint #2: `#` never means the index.
      expect(stdout).toMatch(/transform[\s\S]*#2\b|#2\b[\s\S]*transform/);
      expect(stdout).not.toMatch(/transform \(#1/);
    }
  });

  it("prints the chain and the statistics", async () => {
    const [first] = await makeRun("run-a");
    const chain = await cairn(["chain", "--pipeline-id", "run-a", ...store()]);
    expect(chain.code).toBe(0);
    expect(chain.stdout).toContain("Checkpoint chain of run-a (2 checkpoints: 2 valid)");
    expect(chain.stdout).toContain(first);

    const stats = await cairn(["stats", ...store()]);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toContain("n/a (no resumed runs)");
    expect(stats.stdout).toMatch(/Stored: +\S+ \S+ \(each output once\)/);
    const json = await cairn(["stats", "--json", ...store()]);
    const parsed = JSON.parse(json.stdout);
    expect(parsed).toMatchObject({ totalCheckpoints: 2, totalPipelines: 1, resumeSuccessRate: null });
    expect(parsed.storedDataSize).toBeGreaterThan(0);
    expect(parsed.storedDataSize).toBeLessThanOrEqual(parsed.totalDataSize);
  });

  it("honours CAIRN_STORE and defaults to .cairn/checkpoints", async () => {
    await makeRun("run-env");
    const fromEnv = await cairn(["list", "--json"], { env: { CAIRN_STORE: `file:${basePath}` } });
    expect(fromEnv.code).toBe(0);
    expect((JSON.parse(fromEnv.stdout) as { pipelineId: string }[]).map((r) => r.pipelineId)).toEqual([
      "run-env",
    ]);

    await makeRun("run-default", { strategy: "file", config: { basePath: join(dir, ".cairn/checkpoints") } });
    const byDefault = await cairn(["list", "--json"], { cwd: dir });
    expect((JSON.parse(byDefault.stdout) as { pipelineId: string }[]).map((r) => r.pipelineId)).toEqual([
      "run-default",
    ]);

    const badEnv = await cairn(["list"], { env: { CAIRN_STORE: "nosuch:x" } });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toContain("CAIRN_STORE");
  });
});

describe("validate", () => {
  it("exits 4 naming a hand-edited checkpoint, and 0 for an untouched run", async () => {
    const [first] = await makeRun("run-edited");
    await makeRun("run-clean");
    const path = await checkpointFile("run-edited", first as string);
    const text = await readFile(path, "utf8");
    const bodyStart = text.indexOf('"body":');
    expect(text.indexOf("orders.csv", bodyStart)).toBeGreaterThan(bodyStart);
    await writeFile(
      path,
      text.slice(0, bodyStart) + text.slice(bodyStart).replace("orders.csv", "ORDERS.csv"),
    );

    const edited = await cairn(["validate", "--pipeline-id", "run-edited", ...store()]);
    expect(edited.code).toBe(4);
    expect(edited.stdout).toContain(first);
    expect(edited.stdout).toContain("checksum_mismatch");

    const clean = await cairn(["validate", "--pipeline-id", "run-clean", ...store()]);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain("all valid");

    const json = await cairn(["validate", "--all", "--json", ...store()]);
    expect(json.code).toBe(4);
    const report = JSON.parse(json.stdout) as { valid: boolean; problems: { checkpointId: string }[] };
    expect(report.valid).toBe(false);
    expect(report.problems.map((p) => p.checkpointId)).toEqual([first]);

    const inspect = await cairn(["inspect", "--checkpoint-id", first as string, ...store()]);
    expect(inspect.code).toBe(4);
    expect(inspect.stdout).toContain("Stage:          extract (index 0)");
    expect(inspect.stdout).toContain("checksum_mismatch");
    // The record parses; its content is withheld because the checksum does not match, and it says so.
    expect(inspect.stdout).toContain("Completed stages: (not shown: checksum mismatch)");
    expect(inspect.stdout).toContain("Outputs:          (not shown: checksum mismatch)");
    expect(inspect.stdout).not.toContain("(unreadable)");
  });

  it("exits 4 when a garbage file sits in the run folder", async () => {
    await makeRun("run-a");
    await writeFile(join(basePath, "run-a", "notes.txt"), "not a checkpoint");
    const result = await cairn(["validate", "--pipeline-id", "run-a", ...store()]);
    expect(result.code).toBe(4);
    expect(result.stdout).toContain("notes.txt");
    expect(result.stderr).toContain("validation found 1 problem");
  });

  it("validates a single checkpoint, and exits 3 for an unknown run", async () => {
    const [, second] = await makeRun("run-a");
    expect((await cairn(["validate", "--checkpoint-id", second as string, ...store()])).code).toBe(0);
    expect((await cairn(["validate", "--pipeline-id", "nope", ...store()])).code).toBe(3);
  });
});

describe("export, import and cleanup", () => {
  it("moves a checkpoint from a file store to a sqlite store", async () => {
    const [, second] = await makeRun("run-a");
    const exportPath = join(dir, "export.json");
    const dbPath = join(dir, "cairn.db");
    const exported = await cairn([
      "export",
      "--checkpoint-id",
      second as string,
      "--output",
      exportPath,
      ...store(),
    ]);
    expect(exported.code).toBe(0);

    const imported = await cairn(["import", "--input", exportPath, "--store", `sqlite:${dbPath}`]);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toContain(second);

    const validate = await cairn(["validate", "--all", "--store", `sqlite:${dbPath}`]);
    expect(validate.code).toBe(0);

    const source = JSON.parse(
      (await cairn(["inspect", "--checkpoint-id", second as string, "--json", ...store()])).stdout,
    ) as { metadata: { checksum: string } };
    const inspected = await cairn([
      "inspect",
      "--checkpoint-id",
      second as string,
      "--json",
      "--db-path",
      dbPath,
    ]);
    expect(inspected.code).toBe(0);
    const copy = JSON.parse(inspected.stdout) as Record<string, unknown> & { metadata: { checksum: string } };
    expect(copy.metadata.checksum).toBe(source.metadata.checksum);
    expect(copy).toMatchObject({ completedStages: ["extract", "transform"], parentInStore: false });

    const again = await cairn(["import", "--input", exportPath, "--store", `sqlite:${dbPath}`]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain("--overwrite");
    const overwritten = await cairn([
      "import",
      "--input",
      exportPath,
      "--overwrite",
      "--store",
      `sqlite:${dbPath}`,
    ]);
    expect(overwritten.code).toBe(0);
  });

  it("cleanup --retention-days removes old checkpoints, and nothing with --dry-run", async () => {
    const old = await makeRun("run-old", {
      strategy: "file",
      config: { basePath },
      clock: () => new Date("2020-01-01T00:00:00Z"),
    });
    await makeRun("run-new");

    // Both runs are unfinished: only --force lets retention touch them (no question off a terminal).
    const dry = await cairn(["cleanup", "--retention-days", "30", "--dry-run", "--force", ...store()]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("Would remove 2 checkpoints");
    for (const id of old) expect(dry.stdout).toContain(id);
    expect(dry.stdout).toContain("dry run");
    const stillThere = JSON.parse((await cairn(["stats", "--json", ...store()])).stdout) as {
      totalCheckpoints: number;
    };
    expect(stillThere.totalCheckpoints).toBe(4);

    const real = await cairn(["cleanup", "--retention-days", "30", "--json", "--force", ...store()]);
    expect(real.code).toBe(0);
    const report = JSON.parse(real.stdout) as { dryRun: boolean; removedRuns: string[]; cutoff: string };
    expect(report).toMatchObject({ dryRun: false, removedRuns: ["run-old"] });
    const runs = JSON.parse((await cairn(["list", "--json", ...store()])).stdout) as { pipelineId: string }[];
    expect(runs.map((r) => r.pipelineId)).toEqual(["run-new"]);
  });

  it("cleanup --pipeline-id keeps an unfinished run unless --force", async () => {
    await makeRun("run-a");
    const refused = await cairn(["cleanup", "--pipeline-id", "run-a", ...store()]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("--force");
    const forced = await cairn(["cleanup", "--pipeline-id", "run-a", "--force", ...store()]);
    expect(forced.code).toBe(0);
    expect((await cairn(["list", "--pipeline-id", "run-a", ...store()])).code).toBe(3);
  });

  it("cleanup of several runs reports refused and missing runs apart, on stderr", async () => {
    await makeRun("run-a");
    await makeRun("run-b");
    const ids = ["--pipeline-id", "run-a", "--pipeline-id", "run-b", "--pipeline-id", "run-x"];
    const refused = await cairn(["cleanup", ...ids, ...store()]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe("");
    const lines = refused.stderr.trim().split("\n");
    expect(lines).toEqual([
      expect.stringMatching(/^cairn: refused to delete run run-a: the run has not finished; .*--force/),
      expect.stringMatching(/^cairn: refused to delete run run-b: /),
      'cairn: no pipeline run with id "run-x" in the store',
    ]);
    const forced = await cairn(["cleanup", ...ids, "--force", "--json", ...store()]);
    expect(forced.code).toBe(3);
    expect(JSON.parse(forced.stdout)).toEqual({
      dryRun: false,
      deleted: [
        { pipelineId: "run-a", checkpoints: 2, finished: false },
        { pipelineId: "run-b", checkpoints: 2, finished: false },
      ],
      refused: [],
      missing: ["run-x"],
      force: true,
    });
    expect(forced.stderr.trim()).toBe('cairn: no pipeline run with id "run-x" in the store');
  });
});
