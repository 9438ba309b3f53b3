/**
 * The operator's toolbox, through the built CLI run as a subprocess: store options of the server
 * stores, `migrate`, export and import of whole runs, `monitor`, and progress lines (never
 * drawn here: the tests run without a terminal).
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ProgressLine } from "../../src/cli/progress.js";
import { CheckpointManager } from "../../src/index.js";
import { CLI_PATH, type CliResult, runCairn } from "../support/cli.js";
import { POSTGRES_URL, postgresUp, uniqueName } from "../support/services.js";

const cleanEnv = () => ({ ...process.env, CAIRN_STORE: undefined, CAIRN_DEBUG: undefined });

/** Runs the built CLI; resolves with its exit code and output, whatever the code. */
function cairn(args: string[]): Promise<CliResult> {
  return runCairn(args, { cwd: dir });
}

let dir: string;
let basePath: string;
let dbPath: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-ops-"));
  basePath = join(dir, "checkpoints");
  dbPath = join(dir, "cairn.db");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const files = () => ["--base-path", basePath];
const sqlite = () => ["--db-path", dbPath];
const STAGES = ["extract", "transform", "load"];

/** A run of three checkpoints in the file store; returns their ids, oldest first. */
async function makeRun(pipelineId: string, stages = STAGES.length): Promise<string[]> {
  const manager = new CheckpointManager({ strategy: "file", config: { basePath } });
  const ids: string[] = [];
  try {
    for (const [i, stage] of STAGES.slice(0, stages).entries()) {
      ids.push(
        await manager.createCheckpoint({
          pipelineId,
          pipelineName: "etl",
          stageName: stage,
          stageIndex: i,
          stateData: { total: (i + 1) * 100 },
          completedStages: STAGES.slice(0, i + 1),
          pendingStages: STAGES.slice(i + 1),
          agentOutputs: Object.fromEntries(STAGES.slice(0, i + 1).map((s) => [s, { rows: [s, i] }])),
        }),
      );
    }
  } finally {
    await manager.close();
  }
  return ids;
}

/** Takes the run's lease as a runner would: `monitor` calls a run active only while it is held. */
async function holdLease(pipelineId: string): Promise<void> {
  const manager = new CheckpointManager({ strategy: "file", config: { basePath } });
  try {
    const attempt = await (await manager.getStore()).acquireLease(pipelineId, "test-runner", 600_000);
    expect(attempt.acquired).toBe(true);
  } finally {
    await manager.close();
  }
}

interface Listed {
  checkpointId: string;
  sequence: number;
  checksum: string;
}
const listed = async (args: string[]) =>
  (JSON.parse((await cairn(["list", "--json", ...args])).stdout) as Listed[]).map((m) => [
    m.checkpointId,
    m.sequence,
    m.checksum,
  ]);

describe("store options", () => {
  it("rejects options that do not belong to the chosen strategy (exit 2)", async () => {
    const mismatch = await cairn(["list", "--strategy", "file", "--schema", "x"]);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toContain("--schema applies to the postgres store only");
    expect((await cairn(["list", "--strategy", "redis", "--connection-string", POSTGRES_URL])).code).toBe(2);
    expect((await cairn(["list", "--strategy", "database", "--key-prefix", "p"])).code).toBe(2);
    expect((await cairn(["list", "--store", `sqlite:${dbPath}`, "--table-prefix", "p"])).code).toBe(2);
    expect((await cairn(["list", "--db-path", dbPath, "--redis-url", "redis://127.0.0.1"])).code).toBe(2);
    expect((await cairn(["list", "--table-prefix", "p"])).stderr).toContain("--strategy");
    expect((await cairn(["list", "--redis-url", "redis://127.0.0.1", "--ttl-seconds", "0"])).code).toBe(2);
  });

  it("accepts --table-prefix for sqlite", async () => {
    const result = await cairn(["migrate", "--json", ...sqlite(), "--table-prefix", "ops_"]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      strategy: "sqlite",
      migrations: { appliedNow: [1, 2, 3, 4, 5, 6] },
    });
  });
});

describe("migrate", () => {
  it("applies every version to a fresh sqlite file, then none", async () => {
    const first = await cairn(["migrate", ...sqlite()]);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(dbPath);
    expect(first.stdout).toMatch(/Applied now:\s+1, 2, 3, 4, 5, 6/);
    const again = await cairn(["migrate", "--json", ...sqlite()]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({
      strategy: "sqlite",
      migrations: { appliedNow: [], alreadyPresent: [1, 2, 3, 4, 5, 6], current: 6, latest: 6 },
    });
  });

  it("says there is no schema to migrate for the file store", async () => {
    const result = await cairn(["migrate", ...files()]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("no schema to migrate");
  });

  it.skipIf(!postgresUp)("applies every version to a fresh postgres schema, then none", async () => {
    const schema = uniqueName("cairn_ops");
    const flags = ["--strategy", "postgres", "--connection-string", POSTGRES_URL, "--schema", schema];
    try {
      const first = await cairn(["migrate", "--json", ...flags]);
      expect(first.code).toBe(0);
      const report = JSON.parse(first.stdout) as { location: string; migrations: unknown };
      expect(report.location).toContain(schema);
      expect(report.migrations).toMatchObject({
        appliedNow: [1, 2, 3, 4, 5, 6],
        applied: [1, 2, 3, 4, 5, 6],
      });
      const again = await cairn(["migrate", ...flags]);
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/Applied now:\s+none/);
      expect(again.stdout).toMatch(/Already present:\s+1, 2, 3, 4, 5, 6/);
    } finally {
      const { default: pg } = await import("pg");
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    }
  });
});

describe("export and import of a whole run", () => {
  it("moves a run from a file store to sqlite, refuses a second import, and overwrites when asked", async () => {
    const ids = await makeRun("run-a");
    const output = join(dir, "run.json");
    const exported = await cairn(["export", "--pipeline-id", "run-a", "--output", output, ...files()]);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toContain("3 checkpoints");
    expect(exported.stderr).not.toContain("\r");

    const imported = await cairn(["import", "--input", output, ...sqlite()]);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toContain("Imported run run-a: 3 checkpoints");
    expect(imported.stderr).not.toContain("\r");
    const validate = await cairn(["validate", "--all", ...sqlite()]);
    expect(validate.code).toBe(0);
    expect(validate.stderr).not.toContain("\r");
    const copy = await listed(["--pipeline-id", "run-a", ...sqlite()]);
    expect(copy).toEqual(await listed(["--pipeline-id", "run-a", ...files()]));
    expect(copy.map(([id]) => id)).toEqual([...ids].reverse());

    // A run partly present: the conflict is found before anything is written.
    await cairn(["cleanup", "--pipeline-id", "run-a", "--force", ...sqlite()]);
    const single = join(dir, "one.json");
    expect(
      (await cairn(["export", "--checkpoint-id", ids[0] as string, "--output", single, ...files()])).code,
    ).toBe(0);
    expect((await cairn(["import", "--input", single, ...sqlite()])).code).toBe(0);
    const again = await cairn(["import", "--input", output, ...sqlite()]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain("--overwrite");
    expect((await listed(["--pipeline-id", "run-a", ...sqlite()])).map(([id]) => id)).toEqual([ids[0]]);

    const overwritten = await cairn(["import", "--input", output, "--overwrite", "--json", ...sqlite()]);
    expect(overwritten.code).toBe(0);
    expect(JSON.parse(overwritten.stdout)).toMatchObject({ kind: "run", replaced: 1, checkpoints: 3 });
    expect(await listed(["--pipeline-id", "run-a", ...sqlite()])).toEqual(copy);
  });

  it("refuses to export a run with a tampered checkpoint unless --skip-corrupt", async () => {
    const ids = await makeRun("run-t");
    const folder = join(basePath, "run-t");
    const name = (await readdir(folder)).find((n) => n.includes(ids[1] as string)) as string;
    const text = await readFile(join(folder, name), "utf8");
    await writeFile(join(folder, name), text.replace('"total":200', '"total":999'));
    const output = join(dir, "run.json");

    const refused = await cairn(["export", "--pipeline-id", "run-t", "--output", output, ...files()]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain(ids[1]);
    expect(refused.stderr).toContain("--skip-corrupt");
    await expect(readFile(output)).rejects.toMatchObject({ code: "ENOENT" });

    const skipped = await cairn([
      "export",
      "--pipeline-id",
      "run-t",
      "--output",
      output,
      "--skip-corrupt",
      ...files(),
    ]);
    expect(skipped.code).toBe(0);
    expect(skipped.stdout).toContain("1 invalid checkpoint left out");
    expect(skipped.stderr).toContain(`left out invalid checkpoint ${ids[1]}`);
    expect((await cairn(["import", "--input", output, ...sqlite()])).code).toBe(0);
    expect((await listed(["--pipeline-id", "run-t", ...sqlite()])).map(([id]) => id)).toEqual([
      ids[2],
      ids[0],
    ]);
  });

  it("needs exactly one of --checkpoint-id and --pipeline-id", async () => {
    const output = join(dir, "x.json");
    expect((await cairn(["export", "--output", output, ...files()])).code).toBe(2);
    expect(
      (await cairn(["export", "--checkpoint-id", "a", "--pipeline-id", "b", "--output", output])).code,
    ).toBe(2);
    expect((await cairn(["export", "--checkpoint-id", "a", "--skip-corrupt", "--output", output])).code).toBe(
      2,
    );
    expect((await cairn(["export", "--pipeline-id", "nope", "--output", output, ...files()])).code).toBe(3);
  });
});

describe("monitor", () => {
  it("leaves a quarantined (or failed) run out of the active runs and shows each active run's current stage", async () => {
    await makeRun("run-live", 2);
    await holdLease("run-live");
    const stopped = await makeRun("run-quarantined", 2);
    const manager = new CheckpointManager({ strategy: "file", config: { basePath } });
    await manager.updateCheckpointStatus(
      stopped[1] as string,
      "expired",
      "quarantined by cairn repair: checksum",
    );
    await manager.close();

    const json = JSON.parse((await cairn(["monitor", "--once", "--json", ...files()])).stdout) as {
      runs: { pipelineId: string }[];
      active: { pipelineId: string; currentStage: string | null }[];
    };
    expect(json.runs.map((r) => r.pipelineId).sort()).toEqual(["run-live", "run-quarantined"]);
    expect(json.active).toEqual([expect.objectContaining({ pipelineId: "run-live", currentStage: "load" })]);
    const once = await cairn(["monitor", "--once", ...files()]);
    expect(once.stdout).toContain("Active runs (1):");
    expect(once.stdout).toMatch(/run-live: current stage load, after transform \(index 1, #2\)/);
  });

  it("--once prints the runs and the latest checkpoint of each active one; --json as a document", async () => {
    const ids = await makeRun("run-live", 2);
    await holdLease("run-live");
    await makeRun("run-other");
    const once = await cairn(["monitor", "--once", ...files()]);
    expect(once.code).toBe(0);
    expect(once.stdout).toContain("LATEST STAGE");
    expect(once.stdout).toMatch(/run-live\s+etl\s+in_progress\s+2\/3\s+2\s.*transform/);
    expect(once.stdout).toContain(`checkpoint ${ids[1]}`);
    // Unfinished but nobody holds its lease: in the table as paused, not among the active runs.
    expect(once.stdout).toMatch(/run-other\s+etl\s+paused\s+3\/3/);
    expect(once.stdout).toContain("Active runs (1):");
    expect(once.stdout).not.toContain("\x1b[");

    const json = await cairn(["monitor", "--once", "--json", "--pipeline-id", "run-live", ...files()]);
    expect(json.code).toBe(0);
    const snapshot = JSON.parse(json.stdout) as { runs: { pipelineId: string }[]; active: unknown[] };
    expect(snapshot.runs.map((r) => r.pipelineId)).toEqual(["run-live"]);
    expect(snapshot.active).toEqual([expect.objectContaining({ pipelineId: "run-live" })]);

    expect((await cairn(["monitor", "--once", "--pipeline-id", "nope", ...files()])).code).toBe(3);
    expect((await cairn(["monitor", "--json", ...files()])).code).toBe(2);
    expect((await cairn(["monitor", "--refresh", "0", ...files()])).code).toBe(2);
  });

  it("prints a timestamped block per refresh and stops with exit 0 on SIGINT", async () => {
    await makeRun("run-live", 2);
    const child = spawn(process.execPath, [CLI_PATH, "monitor", "--refresh", "0.2", ...files()], {
      cwd: dir,
      env: cleanEnv(),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const deadline = Date.now() + 15_000;
    while ((stdout.match(/^--- \d{4}-/gm) ?? []).length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    expect((stdout.match(/^--- \d{4}-/gm) ?? []).length).toBeGreaterThanOrEqual(2);
    expect(stdout).toContain("run-live");
    expect(stdout).not.toContain("\x1b[");
    expect(stderr).toBe("");
  });
});

describe("progress lines", () => {
  it("are never drawn when stderr is not a terminal", async () => {
    await makeRun("run-a");
    await makeRun("run-b");
    const output = join(dir, "run.json");
    for (const args of [
      ["validate", "--all", ...files()],
      ["export", "--pipeline-id", "run-a", "--output", output, ...files()],
      ["import", "--input", output, ...sqlite()],
      ["cleanup", "--retention-days", "0", "--dry-run", ...files()],
    ]) {
      const result = await cairn(args);
      expect(result.code, args.join(" ")).toBe(0);
      expect(result.stderr, args.join(" ")).not.toContain("\r");
      expect(result.stderr, args.join(" ")).toBe("");
    }
  });

  it("redraw in place on a terminal, throttled, and erase themselves; nothing with --json", () => {
    const writes: string[] = [];
    let clock = 0;
    const tty = { isTTY: true, columns: 40, write: (text: string) => writes.push(text) };
    const line = new ProgressLine(tty, false, 100, () => clock);
    line.count("validating", 0, 3, "checkpoints");
    clock = 50;
    line.count("validating", 1, 3, "checkpoints");
    clock = 150;
    line.count("validating", 2, 3, "checkpoints");
    line.count("validating", 3, 3, "checkpoints");
    line.clear();
    expect(writes).toEqual([
      "\rvalidating 0/3 checkpoints…\x1b[K",
      "\rvalidating 2/3 checkpoints…\x1b[K",
      "\rvalidating 3/3 checkpoints…\x1b[K",
      "\r\x1b[K",
    ]);

    const silent: string[] = [];
    for (const [stream, json] of [
      [{ isTTY: true, write: (t: string) => silent.push(t) }, true],
      [{ isTTY: false, write: (t: string) => silent.push(t) }, false],
    ] as const) {
      const off = new ProgressLine(stream, json);
      off.count("x", 1, 2, "y");
      off.clear();
      expect(off.enabled).toBe(false);
    }
    expect(silent).toEqual([]);
  });
});
